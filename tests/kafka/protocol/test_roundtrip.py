"""Every request and response, at every version, survives encode -> decode unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_strategies import message
from wire_records import one_buffer

from streamsource.kafka.protocol import (
    REQUESTS,
    RESPONSES,
    SUPPORTED_VERSIONS,
    FetchResponse,
    ProduceRequest,
    RequestHeader,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    encode_response_chunks,
)
from streamsource.kafka.protocol.api import ApiKey

CASES = [
    (api_key, version)
    for api_key, (low, high) in sorted(SUPPORTED_VERSIONS.items())
    for version in range(low, high + 1)
]
FAST = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))


def _ids(case: tuple[int, int]) -> str:
    return f"{REQUESTS[case[0]].__name__[:-7]}-v{case[1]}"


@pytest.mark.parametrize("case", CASES, ids=_ids)
@FAST
@given(data=st.data())
def test_request_roundtrip(case: tuple[int, int], data: Any) -> None:
    api_key, version = case
    request = data.draw(message(REQUESTS[api_key], version))
    client_id = data.draw(st.none() | st.text(max_size=10))
    header = RequestHeader(api_key, version, data.draw(st.integers(-(2**31), 2**31 - 1)), client_id)

    frame = encode_request(header, request)

    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    decoded_header, decoded = decode_request(frame[4:])
    assert decoded_header == header
    assert decoded == request


@pytest.mark.parametrize("case", CASES, ids=_ids)
@FAST
@given(data=st.data())
def test_response_roundtrip(case: tuple[int, int], data: Any) -> None:
    api_key, version = case
    response = data.draw(message(RESPONSES[api_key], version))
    header = RequestHeader(api_key, version, data.draw(st.integers(-(2**31), 2**31 - 1)), "c")

    frame = encode_response(header, response)

    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    correlation_id, decoded = decode_response(api_key, version, frame[4:])
    assert correlation_id == header.correlation_id
    assert decoded == response


# APIs whose v0 Kafka itself no longer speaks (4.0 removed WriteTxnMarkers v0)
FIRST_VERSIONS = {ApiKey.WRITE_TXN_MARKERS: 1}


def test_every_advertised_api_has_both_schemas_starting_at_zero() -> None:
    for api_key, (low, high) in SUPPORTED_VERSIONS.items():
        assert low == FIRST_VERSIONS.get(api_key, 0)
        assert REQUESTS[api_key].VERSIONS.high == high == RESPONSES[api_key].VERSIONS.high


def test_large_records_are_passed_through_as_their_own_chunk() -> None:
    big = bytes(range(256)) * 64  # 16 KiB, above the copy threshold
    response = FetchResponse(
        responses=[
            FetchResponse.FetchableTopicResponse(
                topic="t",
                partitions=[
                    FetchResponse.PartitionData(partition_index=0, high_watermark=5, records=big),
                    FetchResponse.PartitionData(partition_index=1, records=[big, b"tail"]),
                ],
            )
        ]
    )
    for version in (0, 4, 11, 12):
        header = RequestHeader(1, version, 99, None)
        chunks = encode_response_chunks(header, response)

        assert any(chunk is big for chunk in chunks)  # not copied
        frame = b"".join(chunks)
        assert frame == encode_response(header, response)
        _, decoded = decode_response(1, version, frame[4:])
        assert isinstance(decoded, FetchResponse)
        parts = decoded.responses[0].partitions
        assert one_buffer(parts[0].records) == big
        assert one_buffer(parts[1].records) == big + b"tail"


def test_produce_records_are_views_into_the_frame() -> None:
    request = ProduceRequest(
        acks=-1,
        timeout_ms=1000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name="events",
                partition_data=[ProduceRequest.PartitionProduceData(index=0, records=b"x" * 100)],
            )
        ],
    )
    frame = encode_request(RequestHeader(0, 9, 1, "p"), request)[4:]

    _, decoded = decode_request(frame)

    assert isinstance(decoded, ProduceRequest)
    records = decoded.topic_data[0].partition_data[0].records
    assert isinstance(records, memoryview)
    assert records.obj is frame
    assert records == b"x" * 100
