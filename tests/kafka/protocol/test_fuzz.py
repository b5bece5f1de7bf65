"""Hostile bytes: the decoders raise only our protocol errors, and never allocate on a lie."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_strategies import message

from streamsource.errors import KafkaProtocolError
from streamsource.kafka.protocol import (
    REQUESTS,
    RESPONSES,
    SUPPORTED_VERSIONS,
    FrameDecoder,
    FrameError,
    InvalidRequest,
    InvalidResponse,
    RequestHeader,
    UnsupportedVersion,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)

CASES = [
    (api_key, version)
    for api_key, (low, high) in sorted(SUPPORTED_VERSIONS.items())
    for version in range(low, high + 1)
]
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))


def _decode_request_or_our_error(frame: bytes) -> None:
    try:
        decode_request(frame)
    except (InvalidRequest, UnsupportedVersion):
        pass


def _mutate(frame: bytes, data: Any) -> bytes:
    buf = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "truncate", "insert", "overwrite"]))
        at = data.draw(st.integers(0, max(len(buf) - 1, 0)))
        if action == "flip" and buf:
            buf[at] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "truncate":
            del buf[at:]
        elif action == "insert":
            buf[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        elif buf:
            value = data.draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF]))
            buf[at : at + 4] = bytes([value]) * len(buf[at : at + 4])
    return bytes(buf)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_protocol_errors(frame: bytes) -> None:
    _decode_request_or_our_error(frame)


@FUZZ
@given(
    st.sampled_from(sorted(SUPPORTED_VERSIONS)),
    st.integers(-2, 20),
    st.binary(max_size=120),
)
def test_random_bodies_behind_a_valid_header_raise_only_protocol_errors(
    api_key: int, version: int, body: bytes
) -> None:
    _decode_request_or_our_error(struct.pack(">hhih", api_key, version, 7, 0) + body)


@pytest.mark.parametrize("case", CASES[::3], ids=str)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_requests_raise_only_protocol_errors(case: tuple[int, int], data: Any) -> None:
    api_key, version = case
    request = data.draw(message(REQUESTS[api_key], version))
    frame = encode_request(RequestHeader(api_key, version, 1, "fuzz"), request)[4:]
    _decode_request_or_our_error(_mutate(frame, data))


@pytest.mark.parametrize("case", CASES[1::3], ids=str)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_responses_raise_only_protocol_errors(case: tuple[int, int], data: Any) -> None:
    api_key, version = case
    response = data.draw(message(RESPONSES[api_key], version))
    frame = encode_response(RequestHeader(api_key, version, 1, None), response)[4:]
    try:
        decode_response(api_key, version, _mutate(frame, data))
    except InvalidResponse:
        pass


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=8), st.integers(0, 64))
def test_frame_decoder_on_random_streams(chunks: list[bytes], max_size: int) -> None:
    decoder = FrameDecoder(max_size)
    try:
        for chunk in chunks:
            for frame in decoder.feed(chunk):
                assert len(frame) <= max_size
    except FrameError:
        pass


@pytest.mark.parametrize(
    "body",
    [
        # Produce v3: transactional id null, acks, timeout, then a topic_data count of 2**31-1
        struct.pack(">hhii", -1, 1, 1000, 0x7FFFFFFF),
        # Produce v3 with a record-set size far beyond the frame
        struct.pack(">hhii", -1, 1, 1000, 1)
        + struct.pack(">h", 1)
        + b"t"
        + struct.pack(">iii", 1, 0, 0x7FFFFFF0),
        # a string length beyond the frame
        struct.pack(">h", 0x7FFF) + b"abc",
        # a negative array count other than -1
        struct.pack(">hhii", -1, 1, 1000, -5),
    ],
)
def test_lying_lengths_are_rejected_before_allocating(body: bytes) -> None:
    frame = struct.pack(">hhih", 0, 3, 42, 0) + body

    with pytest.raises(InvalidRequest) as caught:
        decode_request(frame)

    assert caught.value.header == RequestHeader(0, 3, 42, "")
    assert isinstance(caught.value, KafkaProtocolError)


def test_compact_lengths_beyond_the_frame_are_rejected() -> None:
    # Metadata v12 (flexible): topics array with a huge compact count
    frame = struct.pack(">hhih", 3, 12, 5, -1) + b"\x00" + b"\xff\xff\xff\xff\x07"
    with pytest.raises(InvalidRequest):
        decode_request(frame)


def test_non_canonical_empty_tag_sections_are_accepted() -> None:
    # 0x80 0x00 is an over-long varint zero: "no tagged fields", spelled in two bytes.
    from streamsource.kafka.protocol import FetchResponse, HeartbeatRequest

    request = HeartbeatRequest(group_id="g", generation_id=1, member_id="m")
    frame = encode_request(RequestHeader(12, 4, 3, "c"), request)[4:]
    assert frame.endswith(b"\x00")
    _, decoded = decode_request(frame[:-1] + b"\x80\x00")
    assert decoded == request

    response = FetchResponse(
        responses=[
            FetchResponse.FetchableTopicResponse(
                topic="t", partitions=[FetchResponse.PartitionData(records=b"r")]
            )
        ]
    )
    frame = encode_response(RequestHeader(1, 12, 3, None), response)[4:]
    # partition's tag section comes right after its records: b"...\x02r\x00"
    at = frame.index(b"\x02r") + 2
    _, decoded = decode_response(1, 12, frame[:at] + b"\x80\x00" + frame[at + 1 :])
    assert decoded == response
