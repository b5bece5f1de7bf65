"""Bad bytes and bad requests cost the sender a Kafka error code or its connection, nothing more.

After each abuse the broker must still answer other clients and still hold every message it
acknowledged before.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

import pytest
from broker_wire import WireClient, batch_of, fetch_values, produce_request

from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.protocol import ErrorCode
from streamsource.kafka.protocol.messages.api_versions import (
    ApiVersionsRequest,
    ApiVersionsResponse,
)
from streamsource.kafka.protocol.messages.metadata import MetadataRequest
from streamsource.kafka.protocol.messages.topics import CreateTopicsRequest


def still_serving(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        response = client.request(ApiVersionsRequest(), 3)
    assert response.error_code == ErrorCode.NONE


@pytest.fixture
def acked(broker: EmbeddedBroker) -> list[bytes]:
    """Three messages the broker acknowledged (acks=all) on topic "safe" before the abuse."""
    values = [b"one", b"two", b"three"]
    with WireClient(broker.bootstrap) as client:
        for value in values:
            response = client.request(produce_request("safe", batch_of(value)), 9)
            assert response.responses[0].partition_responses[0].error_code == ErrorCode.NONE
    return values


def assert_nothing_lost(broker: EmbeddedBroker, acked: list[bytes]) -> None:
    still_serving(broker)
    assert fetch_values(broker.bootstrap, "safe") == acked


def test_truncated_frame_then_disconnect(broker: EmbeddedBroker, acked: list[bytes]) -> None:
    with WireClient(broker.bootstrap) as client:
        client.send_raw(struct.pack(">i", 100) + b"\x00\x12\x00\x00partial")
    assert_nothing_lost(broker, acked)


@pytest.mark.parametrize("size", [2**31 - 1, 200 * 1024 * 1024, -1, -(2**31)])
def test_oversized_or_negative_size_prefix_closes_that_connection(
    broker: EmbeddedBroker, acked: list[bytes], size: int
) -> None:
    with WireClient(broker.bootstrap) as bad, WireClient(broker.bootstrap) as good:
        bad.send_raw(struct.pack(">i", size))
        assert bad.is_closed_by_broker()
        assert good.request(ApiVersionsRequest(), 0).error_code == ErrorCode.NONE
    assert_nothing_lost(broker, acked)


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(broker: EmbeddedBroker, acked: list[bytes], seed: int) -> None:
    noise = random.Random(seed).randbytes(4096)
    with WireClient(broker.bootstrap, timeout=5) as client:
        client.send_raw(noise)
    assert_nothing_lost(broker, acked)


def test_random_bodies_behind_valid_frames(broker: EmbeddedBroker, acked: list[bytes]) -> None:
    rng = random.Random(42)
    for _ in range(5):
        for api_key in (0, 1, 2, 3, 8, 9, 11, 12, 13, 14, 19, 20, 22, 32):
            body = struct.pack(">hhi", api_key, rng.randrange(0, 6), 7) + rng.randbytes(60)
            with WireClient(broker.bootstrap, timeout=2) as client:
                client.send_raw(struct.pack(">i", len(body)) + body)
                # whatever it decodes to, the broker answers, closes, or (a join or a fetch
                # that happens to decode) waits; it never dies or stops serving others
                try:
                    frame = client.recv_frame()
                except TimeoutError:
                    continue
                if frame is not None:
                    assert struct.unpack_from(">i", frame)[0] == 7
    assert_nothing_lost(broker, acked)


def test_unknown_api_key_closes_the_connection(broker: EmbeddedBroker, acked: list[bytes]) -> None:
    with WireClient(broker.bootstrap) as client:
        body = struct.pack(">hhi", 999, 0, 1) + struct.pack(">h", -1)
        client.send_raw(struct.pack(">i", len(body)) + body)
        assert client.is_closed_by_broker()
    assert_nothing_lost(broker, acked)


def test_unsupported_api_versions_version_gets_error_35_with_v0_body(
    broker: EmbeddedBroker,
) -> None:
    with WireClient(broker.bootstrap) as client:
        header = struct.pack(">hhi", 18, 99, 5) + struct.pack(">h", 4) + b"test"
        client.send_raw(struct.pack(">i", len(header)) + header)
        frame = client.recv_frame()
    assert frame is not None
    from streamsource.kafka.protocol import decode_response

    correlation_id, response = decode_response(18, 0, frame)
    assert correlation_id == 5
    assert isinstance(response, ApiVersionsResponse)
    assert response.error_code == ErrorCode.UNSUPPORTED_VERSION
    versions = {v.api_key: (v.min_version, v.max_version) for v in response.api_keys}
    assert versions[18] == (0, 3)
    assert versions[0] == (0, 9)
    assert versions[1] == (0, 12)
    # every API from v0, but WriteTxnMarkers, whose v0 Kafka 4.0 removed
    assert all(low == (1 if key == 27 else 0) for key, (low, _) in versions.items())


def test_unsupported_version_of_another_api_closes_the_connection(
    broker: EmbeddedBroker, acked: list[bytes]
) -> None:
    with WireClient(broker.bootstrap) as client:
        body = struct.pack(">hhi", 3, 99, 1) + struct.pack(">h", -1) + b"\x00" * 8
        client.send_raw(struct.pack(">i", len(body)) + body)
        assert client.is_closed_by_broker()
    assert_nothing_lost(broker, acked)


def test_corrupt_crc_is_refused_and_nothing_is_appended(
    broker: EmbeddedBroker, acked: list[bytes]
) -> None:
    corrupt = bytearray(batch_of(b"tampered"))
    corrupt[-3] ^= 0xFF  # flip bits inside the value: the CRC-32C no longer matches
    with WireClient(broker.bootstrap) as client:
        response = client.request(produce_request("safe", bytes(corrupt)), 9)
        result = response.responses[0].partition_responses[0]
        assert result.error_code == ErrorCode.CORRUPT_MESSAGE
        # the same connection keeps working
        after = client.request(produce_request("safe", batch_of(b"four")), 9)
        assert after.responses[0].partition_responses[0].base_offset == len(acked)
    assert fetch_values(broker.bootstrap, "safe") == [*acked, b"four"]


def test_truncated_batch_is_corrupt_message(broker: EmbeddedBroker, acked: list[bytes]) -> None:
    batch = batch_of(b"cut short")
    with WireClient(broker.bootstrap) as client:
        response = client.request(produce_request("safe", batch[:-5]), 9)
    assert response.responses[0].partition_responses[0].error_code == ErrorCode.CORRUPT_MESSAGE
    assert_nothing_lost(broker, acked)


@pytest.mark.parametrize("name", ["", ".", "..", "a" * 250, "bad name", "bad/name", "é"])
def test_invalid_topic_names_are_refused(broker: EmbeddedBroker, name: str) -> None:
    with WireClient(broker.bootstrap) as client:
        created = client.request(
            CreateTopicsRequest(
                topics=[
                    CreateTopicsRequest.CreatableTopic(
                        name=name, num_partitions=1, replication_factor=1
                    )
                ]
            ),
            5,
        )
        assert created.topics[0].error_code == ErrorCode.INVALID_TOPIC_EXCEPTION
        produced = client.request(produce_request(name, batch_of(b"x")), 9)
        assert (
            produced.responses[0].partition_responses[0].error_code
            == ErrorCode.INVALID_TOPIC_EXCEPTION
        )
        if name:
            metadata = client.request(
                MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=name)]), 9
            )
            assert metadata.topics[0].error_code == ErrorCode.INVALID_TOPIC_EXCEPTION
    assert name not in broker.broker.topics.topics


def test_produce_to_missing_topic_with_auto_create_off(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = broker_factory(auto_create_topics=False)
    with WireClient(broker.bootstrap) as client:
        response = client.request(produce_request("nowhere", batch_of(b"x")), 9)
        assert (
            response.responses[0].partition_responses[0].error_code
            == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
        metadata = client.request(
            MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="nowhere")]), 9
        )
        assert metadata.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert "nowhere" not in broker.broker.topics.topics


def test_produce_to_missing_partition(broker: EmbeddedBroker, acked: list[bytes]) -> None:
    with WireClient(broker.bootstrap) as client:
        response = client.request(produce_request("safe", batch_of(b"x"), partition=7), 9)
    result = response.responses[0].partition_responses[0]
    assert result.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert_nothing_lost(broker, acked)


def test_acks_zero_gets_no_response_and_pipelined_requests_stay_in_order(
    broker: EmbeddedBroker,
) -> None:
    with WireClient(broker.bootstrap) as client:
        client.send(produce_request("quiet", batch_of(b"fire and forget"), acks=0), 9)
        second = client.send(ApiVersionsRequest(), 3)
        third = client.send(MetadataRequest(topics=None), 9)
        frames = [client.recv_frame(), client.recv_frame()]
    assert [struct.unpack_from(">i", f)[0] for f in frames if f] == [second, third]
    assert fetch_values(broker.bootstrap, "quiet") == [b"fire and forget"]


def test_invalid_acks_value(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        response = client.request(produce_request("acks", batch_of(b"x"), acks=2), 9)
    assert (
        response.responses[0].partition_responses[0].error_code == ErrorCode.INVALID_REQUIRED_ACKS
    )
