"""The partition admin APIs: CreatePartitions (key 37) grows a topic; DeleteRecords (key 21)
moves a partition's log start offset forward."""

from __future__ import annotations

from streamsource.kafka.protocol.schema import (
    ARRAY,
    BOOL,
    INT16,
    INT32,
    INT64,
    STRING,
    Array,
    Message,
    Struct,
    field,
)


class CreatePartitionsRequest(Message, api_key=37, versions="0-3", flexible="2+"):
    """CreatePartitions request, versions 0-3 (API key 37)."""

    class CreatePartitionsTopic(Struct):
        name: str = field(STRING)
        count: int = field(INT32)
        # one entry (the replicas' broker ids) per NEW partition; null: the broker decides
        assignments: list[CreatePartitionsRequest.CreatePartitionsAssignment] | None = field(
            ARRAY, nullable="0+", default=None
        )

    class CreatePartitionsAssignment(Struct):
        broker_ids: list[int] = field(Array(INT32))

    topics: list[CreatePartitionsRequest.CreatePartitionsTopic] = field(ARRAY)
    timeout_ms: int = field(INT32)
    validate_only: bool = field(BOOL)


class CreatePartitionsResponse(Message, api_key=37, versions="0-3", flexible="2+"):
    """CreatePartitions response, versions 0-3 (API key 37)."""

    class CreatePartitionsTopicResult(Struct):
        name: str = field(STRING)
        error_code: int = field(INT16)
        error_message: str | None = field(STRING, nullable="0+", default=None)

    throttle_time_ms: int = field(INT32)
    results: list[CreatePartitionsResponse.CreatePartitionsTopicResult] = field(ARRAY)


class DeleteRecordsRequest(Message, api_key=21, versions="0-2", flexible="2+"):
    """DeleteRecords request, versions 0-2 (API key 21). Offset -1: up to the high watermark."""

    class DeleteRecordsTopic(Struct):
        name: str = field(STRING)
        partitions: list[DeleteRecordsRequest.DeleteRecordsPartition] = field(ARRAY)

    class DeleteRecordsPartition(Struct):
        partition_index: int = field(INT32)
        offset: int = field(INT64)

    topics: list[DeleteRecordsRequest.DeleteRecordsTopic] = field(ARRAY)
    timeout_ms: int = field(INT32)


class DeleteRecordsResponse(Message, api_key=21, versions="0-2", flexible="2+"):
    """DeleteRecords response, versions 0-2 (API key 21): each partition's new log start."""

    class DeleteRecordsTopicResult(Struct):
        name: str = field(STRING)
        partitions: list[DeleteRecordsResponse.DeleteRecordsPartitionResult] = field(ARRAY)

    class DeleteRecordsPartitionResult(Struct):
        partition_index: int = field(INT32)
        low_watermark: int = field(INT64, default=-1)
        error_code: int = field(INT16)

    throttle_time_ms: int = field(INT32)
    topics: list[DeleteRecordsResponse.DeleteRecordsTopicResult] = field(ARRAY)
