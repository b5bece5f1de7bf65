"""Golden bytes of the admin APIs: requests real admin clients sent, captured by a TCP proxy
in front of the broker (client id "golden", topic "my-topic", group "my-group").

Each must decode to the values the client was asked for and re-encode to the same bytes.
"""

from __future__ import annotations

import pytest

from streamsource.kafka.protocol import (
    RequestHeader,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from streamsource.kafka.protocol.messages.cluster import DescribeClusterRequest
from streamsource.kafka.protocol.messages.delete_groups import DeleteGroupsRequest
from streamsource.kafka.protocol.messages.log_dirs import (
    DescribeLogDirsRequest,
    DescribeLogDirsResponse,
)
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
# kafka-python 3.0.12: describe_log_dirs({my-topic: [0]}) (its describe_log_dirs() with no
# argument sends the same, every topic and partition named, never null)
KAFKA_PYTHON_DESCRIBE_LOG_DIRS_V4 = (
    "00230004000000020006676f6c64656e0002096d792d746f70696302000000000000"
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


def test_describe_log_dirs_request() -> None:
    header, request = _roundtrip(KAFKA_PYTHON_DESCRIBE_LOG_DIRS_V4)
    assert (header.api_key, header.api_version) == (35, 4)
    assert request == DescribeLogDirsRequest(
        topics=[DescribeLogDirsRequest.DescribableLogDirTopic(topic="my-topic", partitions=[0])]
    )


def _log_dirs_answer() -> DescribeLogDirsResponse:
    partition = DescribeLogDirsResponse.DescribeLogDirsPartition(
        partition_index=0, partition_size=69, offset_lag=0, is_future_key=False
    )
    topic = DescribeLogDirsResponse.DescribeLogDirsTopic(name="t", partitions=[partition])
    result = DescribeLogDirsResponse.DescribeLogDirsResult(
        log_dir="/data", topics=[topic], total_bytes=1000, usable_bytes=500
    )
    return DescribeLogDirsResponse(results=[result])


def test_describe_log_dirs_v0_response_bytes() -> None:
    expected = (
        "00000007"  # correlation id
        "00000000"  # throttle_time_ms
        "00000001" "0000" "0005" + b"/data".hex()  # one log dir, no error
        + "00000001" "0001" + b"t".hex()  # one topic
        + "00000001" "00000000"  # partition 0
        "0000000000000045"  # 69 bytes
        "0000000000000000"  # offset lag
        "00"  # not a future log; no volume sizes before v4
    )  # fmt: skip
    frame = encode_response(RequestHeader(35, 0, 7, "golden"), _log_dirs_answer())
    assert frame[4:].hex() == expected
    decoded = decode_response(35, 0, frame[4:])[1]
    assert isinstance(decoded, DescribeLogDirsResponse)
    assert decoded.results[0].topics == _log_dirs_answer().results[0].topics
    assert (decoded.results[0].total_bytes, decoded.results[0].usable_bytes) == (-1, -1)


def test_describe_log_dirs_v4_response_bytes() -> None:
    expected = (
        "00000007" "00"  # correlation id, header tags
        "00000000" "0000"  # throttle_time_ms, error code (v3+)
        "02" "0000" "06" + b"/data".hex()  # one log dir (compact), no error
        + "02" "02" + b"t".hex()  # one topic
        + "02" "00000000"  # partition 0
        "0000000000000045"  # 69 bytes
        "0000000000000000"  # offset lag
        "00" "00"  # not a future log; partition tags
        "00"  # topic tags
        "00000000000003e8"  # total bytes 1000 (v4+)
        "00000000000001f4"  # usable bytes 500 (v4+)
        "00" "00"  # log dir tags, body tags
    )  # fmt: skip
    frame = encode_response(RequestHeader(35, 4, 7, "golden"), _log_dirs_answer())
    assert frame[4:].hex() == expected
    assert decode_response(35, 4, frame[4:])[1] == _log_dirs_answer()
