"""DescribeLogDirs (key 35): the bytes each partition's log takes in each log directory."""

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


class DescribeLogDirsRequest(Message, api_key=35, versions="0-4", flexible="2+"):
    """DescribeLogDirs request, versions 0-4 (API key 35); ``topics`` null means all."""

    class DescribableLogDirTopic(Struct):
        topic: str = field(STRING)
        partitions: list[int] = field(Array(INT32))

    topics: list[DescribeLogDirsRequest.DescribableLogDirTopic] | None = field(ARRAY, nullable="0+")


class DescribeLogDirsResponse(Message, api_key=35, versions="0-4", flexible="2+"):
    """DescribeLogDirs response, versions 0-4 (API key 35); v3 adds the top-level error,
    v4 the volume's total and usable bytes."""

    class DescribeLogDirsResult(Struct):
        error_code: int = field(INT16)
        log_dir: str = field(STRING)
        topics: list[DescribeLogDirsResponse.DescribeLogDirsTopic] = field(ARRAY)
        total_bytes: int = field(INT64, "4+", default=-1)
        usable_bytes: int = field(INT64, "4+", default=-1)

    class DescribeLogDirsTopic(Struct):
        name: str = field(STRING)
        partitions: list[DescribeLogDirsResponse.DescribeLogDirsPartition] = field(ARRAY)

    class DescribeLogDirsPartition(Struct):
        partition_index: int = field(INT32)
        partition_size: int = field(INT64)
        offset_lag: int = field(INT64)
        is_future_key: bool = field(BOOL)

    throttle_time_ms: int = field(INT32)
    error_code: int = field(INT16, "3+")
    results: list[DescribeLogDirsResponse.DescribeLogDirsResult] = field(ARRAY)
