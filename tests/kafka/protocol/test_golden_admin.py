"""Golden bytes of the admin APIs: requests real admin clients sent, captured by a TCP proxy
in front of the broker (client id "golden", topic "my-topic", group "my-group").

Each must decode to the values the client was asked for and re-encode to the same bytes.
"""

from __future__ import annotations

import pytest

from streamsource.kafka.protocol import RequestHeader, decode_request, encode_request
from streamsource.kafka.protocol.messages.cluster import DescribeClusterRequest
from streamsource.kafka.protocol.messages.delete_groups import DeleteGroupsRequest
from streamsource.kafka.protocol.messages.partitions import (
    CreatePartitionsRequest,
    DeleteRecordsRequest,
)

# confluent-kafka 2.16 (librdkafka 2.16): create_partitions(my-topic -> 2),
# delete_records(my-topic/0 before 3), delete_consumer_groups([my-group]).
RDKAFKA_CREATE_PARTITIONS_V2 = (
    "00250002000000040006676f6c64656e0002096d792d746f7069630000000200000000ea600000"
)
RDKAFKA_DELETE_RECORDS_V2 = (
    "00150002000000060006676f6c64656e0002096d792d746f7069630200000000000000000000000300000000ea6000"
)
RDKAFKA_DELETE_GROUPS_V2 = "002a0002000000080006676f6c64656e0002096d792d67726f757000"
# kafka-python 3.0.12: describe_cluster(), create_partitions({my-topic: 3}),
# delete_records({my-topic/0: 4}), delete_groups([my-group]).
KAFKA_PYTHON_DESCRIBE_CLUSTER_V2 = "003c0002000000020006676f6c64656e0001010100"
KAFKA_PYTHON_CREATE_PARTITIONS_V3 = (
    "00250003000000040006676f6c64656e0002096d792d746f706963000000030000000075300000"
)
KAFKA_PYTHON_DELETE_RECORDS_V2 = (
    "00150002000000060006676f6c64656e0002096d792d746f7069630200000000000000000000000400000000752f00"
)


def _roundtrip(hex_frame: str) -> tuple[RequestHeader, object]:
    frame = bytes.fromhex(hex_frame)
    header, request = decode_request(frame)
    assert header.client_id == "golden"
    assert encode_request(header, request)[4:] == frame  # byte-for-byte the client's encoding
    return header, request


@pytest.mark.parametrize(
    ("hex_frame", "version", "count", "timeout_ms"),
    [
        (RDKAFKA_CREATE_PARTITIONS_V2, 2, 2, 60_000),
        (KAFKA_PYTHON_CREATE_PARTITIONS_V3, 3, 3, 30_000),
    ],
)
def test_create_partitions_requests(
    hex_frame: str, version: int, count: int, timeout_ms: int
) -> None:
    header, request = _roundtrip(hex_frame)
    assert (header.api_key, header.api_version) == (37, version)
    assert isinstance(request, CreatePartitionsRequest)
    assert [(t.name, t.count, t.assignments) for t in request.topics] == [("my-topic", count, None)]
    assert (request.timeout_ms, request.validate_only) == (timeout_ms, False)


@pytest.mark.parametrize(
    ("hex_frame", "offset"), [(RDKAFKA_DELETE_RECORDS_V2, 3), (KAFKA_PYTHON_DELETE_RECORDS_V2, 4)]
)
def test_delete_records_requests(hex_frame: str, offset: int) -> None:
    header, request = _roundtrip(hex_frame)
    assert (header.api_key, header.api_version) == (21, 2)
    assert isinstance(request, DeleteRecordsRequest)
    assert [
        (t.name, [(p.partition_index, p.offset) for p in t.partitions]) for t in request.topics
    ] == [("my-topic", [(0, offset)])]


def test_delete_groups_request() -> None:
    header, request = _roundtrip(RDKAFKA_DELETE_GROUPS_V2)
    assert (header.api_key, header.api_version) == (42, 2)
    assert isinstance(request, DeleteGroupsRequest)
    assert request.groups_names == ["my-group"]


def test_describe_cluster_request() -> None:
    header, request = _roundtrip(KAFKA_PYTHON_DESCRIBE_CLUSTER_V2)
    assert (header.api_key, header.api_version) == (60, 2)
    assert request == DescribeClusterRequest(
        include_cluster_authorized_operations=True, endpoint_type=1, include_fenced_brokers=True
    )
