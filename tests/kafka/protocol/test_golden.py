"""Golden bytes: frames real clients sent (captured from a socket), and hand-built responses.

The request frames below were recorded by pointing each client at a small socket server
that answered with this codec; they are kept as hex so the test needs no client. Each
must decode to the expected values and re-encode to exactly the same bytes.
"""

from __future__ import annotations

import struct
import uuid

import pytest
from wire_records import one_buffer

from streamsource.kafka.protocol import (
    ApiVersionsRequest,
    FetchRequest,
    FetchResponse,
    MetadataRequest,
    MetadataResponse,
    ProduceRequest,
    ProduceResponse,
    RequestHeader,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)

KAFKA_GO = "gowriter@vm (github.com/segmentio/kafka-go)"

# librdkafka 2.16 (confluent-kafka 2.16): ApiVersions v3, Metadata v12, Produce v9.
RDKAFKA_API_VERSIONS_V3 = (
    "00120003000000010006676f6c64656e0017636f6e666c75656e742d6b61666b612d707974686f6e16322e"
    "31362e312d72646b61666b612d322e31362e3000"
)
RDKAFKA_METADATA_V12 = (
    "0003000c000000020006676f6c64656e000200000000000000000000000000000000096d792d746f70696300010000"
)
RDKAFKA_PRODUCE_V9 = (
    "00000009000000020006676f6c64656e000000010000753002096d792d746f70696302000000004700000000"
    "000000000000003a0000000002e99b8dd80000000000000000018bcfe568000000018bcfe56800ffffffff"
    "ffffffffffffffffffff0000000110000000026b027600000000"
)
# kafka-python 3.0.12: ApiVersions v4 first (answered "unsupported"), then v3; Metadata v12.
KAFKA_PYTHON_API_VERSIONS_V4 = (
    "00120004000000010006676f6c64656e000d6b61666b612d707974686f6e07332e302e313200"
)
KAFKA_PYTHON_API_VERSIONS_V3 = (
    "00120003000000020006676f6c64656e000d6b61666b612d707974686f6e07332e302e313200"
)
KAFKA_PYTHON_METADATA_V12 = "0003000c000000030006676f6c64656e0001010000"
# kcat 1.7 on librdkafka 2.0.2: Metadata v4, Produce v7 (acks=all).
KCAT_METADATA_V4 = "00030004000000030006676f6c64656e0000000100086d792d746f70696301"
KCAT_PRODUCE_V7 = (
    "00000007000000040006676f6c64656effffffff000075300000000100086d792d746f706963000000010000"
    "00000000004600000000000000000000003a00000000022a62e7be000000000000000001a216186852000001"
    "a216186852ffffffffffffffffffffffffffff0000000110000000026b027600"
)
# aiokafka: ApiVersions v0, Metadata v5.
AIOKAFKA_API_VERSIONS_V0 = "00120000000000010006676f6c64656e"
AIOKAFKA_METADATA_V5 = "00030005000000020006676f6c64656e0000000001"
# segmentio/kafka-go 0.2.1 (Debian): Metadata v1, then Produce v2 carrying a magic-1 message set.
KAFKA_GO_METADATA_V1 = (
    "0003000100000001002b676f77726974657240766d20286769746875622e636f6d2f7365676d656e74696f"
    "2f6b61666b612d676f290000000100086d792d746f706963"
)
KAFKA_GO_PRODUCE_V2 = (
    "0000000200000001002b676f77726974657240766d20286769746875622e636f6d2f7365676d656e74696f"
    "2f6b61666b612d676f29ffff000023270000000100086d792d746f70696300000001000000000000002c0000"
    "000000000000000000209ca1589e0100000001a216185980000000046b6579310000000676616c756531"
)


def _roundtrip(hex_frame: str) -> tuple[RequestHeader, object]:
    frame = bytes.fromhex(hex_frame)
    header, request = decode_request(frame)
    assert encode_request(header, request)[4:] == frame  # byte-for-byte the client's encoding
    return header, request


@pytest.mark.parametrize(
    ("hex_frame", "version", "software"),
    [
        (RDKAFKA_API_VERSIONS_V3, 3, ("confluent-kafka-python", "2.16.1-rdkafka-2.16.0")),
        (KAFKA_PYTHON_API_VERSIONS_V3, 3, ("kafka-python", "3.0.12")),
        (AIOKAFKA_API_VERSIONS_V0, 0, ("", "")),
    ],
)
def test_api_versions_requests(hex_frame: str, version: int, software: tuple[str, str]) -> None:
    header, request = _roundtrip(hex_frame)
    assert header.api_key == 18 and header.api_version == version
    assert header.client_id == "golden"
    assert isinstance(request, ApiVersionsRequest)
    assert (request.client_software_name, request.client_software_version) == software


def test_api_versions_v4_is_unsupported_but_answerable() -> None:
    from streamsource.kafka.protocol import UnsupportedVersion

    with pytest.raises(UnsupportedVersion) as caught:
        decode_request(bytes.fromhex(KAFKA_PYTHON_API_VERSIONS_V4))
    assert caught.value.header == RequestHeader(18, 4, 1, "golden")


@pytest.mark.parametrize(
    ("hex_frame", "version", "topics", "auto_create"),
    [
        (RDKAFKA_METADATA_V12, 12, ["my-topic"], True),
        (KAFKA_PYTHON_METADATA_V12, 12, [], True),
        (KCAT_METADATA_V4, 4, ["my-topic"], True),
        (AIOKAFKA_METADATA_V5, 5, [], True),
        (KAFKA_GO_METADATA_V1, 1, ["my-topic"], True),
    ],
)
def test_metadata_requests(
    hex_frame: str, version: int, topics: list[str], auto_create: bool
) -> None:
    header, request = _roundtrip(hex_frame)
    assert header.api_version == version
    assert isinstance(request, MetadataRequest)
    assert request.topics is not None
    assert [t.name for t in request.topics] == topics
    assert request.allow_auto_topic_creation is auto_create
    if version >= 10:
        assert all(t.topic_id == uuid.UUID(int=0) for t in request.topics)


@pytest.mark.parametrize(
    ("hex_frame", "version", "acks", "timeout"),
    [
        (RDKAFKA_PRODUCE_V9, 9, 1, 30000),
        (KCAT_PRODUCE_V7, 7, -1, 30000),
        (KAFKA_GO_PRODUCE_V2, 2, -1, 8999),
    ],
)
def test_produce_requests(hex_frame: str, version: int, acks: int, timeout: int) -> None:
    header, request = _roundtrip(hex_frame)
    assert header.api_version == version
    assert isinstance(request, ProduceRequest)
    assert (request.acks, request.timeout_ms, request.transactional_id) == (acks, timeout, None)
    [topic] = request.topic_data
    [partition] = topic.partition_data
    assert topic.name == "my-topic" and partition.index == 0
    records = partition.records
    assert isinstance(records, memoryview)
    magic = records[16]
    assert magic == (1 if header.client_id == KAFKA_GO else 2)


def test_kafka_go_message_set_is_passed_through_untouched() -> None:
    _, request = decode_request(bytes.fromhex(KAFKA_GO_PRODUCE_V2))
    assert isinstance(request, ProduceRequest)
    records = one_buffer(request.topic_data[0].partition_data[0].records)
    # offset 0, size 32, crc, magic 1, attributes 0, timestamp, key "key1", value "value1"
    offset, size, _crc, magic, attributes = struct.unpack_from(">qiIbb", records)
    assert (offset, size, magic, attributes) == (0, 32, 1, 0)
    assert records.endswith(b"\x00\x00\x00\x04key1\x00\x00\x00\x06value1")


def test_produce_v2_response_bytes() -> None:
    response = ProduceResponse(
        responses=[
            ProduceResponse.TopicProduceResponse(
                name="my-topic",
                partition_responses=[
                    ProduceResponse.PartitionProduceResponse(index=0, error_code=0, base_offset=41)
                ],
            )
        ],
        throttle_time_ms=0,
    )
    expected = (
        "00000001"  # correlation id
        "00000001"
        "0008"
        + b"my-topic".hex()  # one topic
        + "00000001"
        "00000000"
        "0000"
        "0000000000000029"  # partition 0, no error, offset 41
        "ffffffffffffffff"  # log_append_time_ms (v2+): -1
        "00000000"  # throttle_time_ms (v1+)
    )
    frame = encode_response(RequestHeader(0, 2, 1, KAFKA_GO), response)
    assert frame[4:].hex() == expected
    assert decode_response(0, 2, frame[4:])[1] == response


def test_metadata_v1_response_bytes() -> None:
    response = MetadataResponse(
        brokers=[MetadataResponse.MetadataResponseBroker(node_id=0, host="127.0.0.1", port=9092)],
        controller_id=0,
        topics=[
            MetadataResponse.MetadataResponseTopic(
                name="my-topic",
                partitions=[
                    MetadataResponse.MetadataResponsePartition(
                        partition_index=0, leader_id=0, replica_nodes=[0], isr_nodes=[0]
                    )
                ],
            )
        ],
    )
    expected = (
        "00000007"  # correlation id
        "00000001"
        "00000000"
        "0009" + b"127.0.0.1".hex() + "00002384"
        "ffff"  # broker, rack null
        "00000000"  # controller id (v1+)
        "00000001"
        "0000"
        "0008" + b"my-topic".hex() + "00"  # topic, not internal (v1+)
        "00000001"
        "0000"
        "00000000"
        "00000000"  # partition 0, leader 0
        "00000001"
        "00000000"
        "00000001"
        "00000000"  # replicas [0], isr [0]
    )
    frame = encode_response(RequestHeader(3, 1, 7, KAFKA_GO), response)
    assert frame[4:].hex() == expected


def test_fetch_v2_request_and_response_bytes() -> None:
    request_hex = (
        "0001"
        "0002"
        "00000003"
        "0002"
        + b"go".hex()  # header v1
        + "ffffffff"
        "000001f4"
        "00000001"  # replica -1, max wait 500, min bytes 1
        "00000001"
        "0008"
        + b"my-topic".hex()  # one topic
        + "00000001"
        "00000000"
        "000000000000000a"
        "00100000"  # partition 0 at offset 10, 1 MiB
    )
    header, request = decode_request(bytes.fromhex(request_hex))
    assert header == RequestHeader(1, 2, 3, "go")
    assert isinstance(request, FetchRequest)
    assert request.max_bytes == 0x7FFFFFFF  # absent before v3: no limit
    [partition] = request.topics[0].partitions
    assert (partition.fetch_offset, partition.partition_max_bytes) == (10, 1 << 20)

    message_set = bytes.fromhex("000000000000000a0000000e") + b"\x00" * 14
    response = FetchResponse(
        responses=[
            FetchResponse.FetchableTopicResponse(
                topic="my-topic",
                partitions=[
                    FetchResponse.PartitionData(
                        partition_index=0, high_watermark=11, records=message_set
                    )
                ],
            )
        ]
    )
    expected = (
        "00000003"
        "00000000"  # correlation id, throttle (v1+)
        "00000001"
        "0008" + b"my-topic".hex() + "00000001"
        "00000000"
        "0000"
        "000000000000000b"  # partition 0, no error, hw 11
         + f"{len(message_set):08x}" + message_set.hex()
    )
    assert encode_response(header, response)[4:].hex() == expected


def test_fetch_v12_response_writes_only_non_default_tags() -> None:
    response = FetchResponse(
        responses=[
            FetchResponse.FetchableTopicResponse(
                topic="t",
                partitions=[FetchResponse.PartitionData(partition_index=0, records=None)],
            )
        ]
    )
    plain = encode_response(RequestHeader(1, 12, 1, None), response)
    diverging = response.responses[0].partitions[0]
    diverging.current_leader = FetchResponse.LeaderIdAndEpoch(leader_id=0, leader_epoch=0)
    tagged = encode_response(RequestHeader(1, 12, 1, None), response)

    # current_leader (tag 1) = {0, 0} adds: 1 tag count byte already there -> count 1,
    # tag 1, size 9 (int32 + int32 + empty tags)
    assert len(tagged) == len(plain) + 11
    assert decode_response(1, 12, tagged[4:])[1] == response
