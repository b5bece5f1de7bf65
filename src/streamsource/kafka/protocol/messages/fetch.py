"""Fetch (key 1). Response ``records`` may be bytes or a list of chunks, written as-is.

``FetchRequest.max_bytes`` does not exist before v3 and then defaults to 2**31-1 (no limit).
"""

from __future__ import annotations

from streamsource.kafka.protocol.schema import (
    ARRAY,
    INT8,
    INT16,
    INT32,
    INT64,
    RECORDS,
    STRING,
    STRUCT,
    Array,
    Message,
    Records,
    Struct,
    field,
)


class FetchRequest(Message, api_key=1, versions="0-12", flexible="12+"):
    """Fetch request, versions 0-12 (API key 1)."""

    class FetchTopic(Struct):
        topic: str = field(STRING)
        partitions: list[FetchRequest.FetchPartition] = field(ARRAY)

    class FetchPartition(Struct):
        partition: int = field(INT32)
        current_leader_epoch: int = field(INT32, "9+", default=-1)
        fetch_offset: int = field(INT64)
        last_fetched_epoch: int = field(INT32, "12+", default=-1)
        log_start_offset: int = field(INT64, "5+", default=-1)
        partition_max_bytes: int = field(INT32)

    class ForgottenTopic(Struct):
        topic: str = field(STRING, "7+")
        partitions: list[int] = field(Array(INT32), "7+")

    cluster_id: str | None = field(STRING, "12+", nullable="12+", tag=0, default=None)
    replica_id: int = field(INT32, default=-1)
    max_wait_ms: int = field(INT32)
    min_bytes: int = field(INT32)
    max_bytes: int = field(INT32, "3+", default=2147483647)
    isolation_level: int = field(INT8, "4+")
    session_id: int = field(INT32, "7+")
    session_epoch: int = field(INT32, "7+", default=-1)
    topics: list[FetchRequest.FetchTopic] = field(ARRAY)
    forgotten_topics_data: list[FetchRequest.ForgottenTopic] = field(ARRAY, "7+")
    rack_id: str = field(STRING, "11+")


class FetchResponse(Message, api_key=1, versions="0-12", flexible="12+"):
    """Fetch response, versions 0-12 (API key 1)."""

    class FetchableTopicResponse(Struct):
        topic: str = field(STRING)
        partitions: list[FetchResponse.PartitionData] = field(ARRAY)

    class PartitionData(Struct):
        partition_index: int = field(INT32)
        error_code: int = field(INT16)
        high_watermark: int = field(INT64)
        last_stable_offset: int = field(INT64, "4+", default=-1)
        log_start_offset: int = field(INT64, "5+", default=-1)
        diverging_epoch: FetchResponse.EpochEndOffset = field(STRUCT, "12+", tag=0)
        current_leader: FetchResponse.LeaderIdAndEpoch = field(STRUCT, "12+", tag=1)
        snapshot_id: FetchResponse.SnapshotId = field(STRUCT, "12+", tag=2)
        aborted_transactions: list[FetchResponse.AbortedTransaction] | None = field(
            ARRAY, "4+", nullable="4+"
        )
        preferred_read_replica: int = field(INT32, "11+", default=-1)
        records: Records | None = field(RECORDS, nullable="0+")

    class EpochEndOffset(Struct):
        epoch: int = field(INT32, "12+", default=-1)
        end_offset: int = field(INT64, "12+", default=-1)

    class LeaderIdAndEpoch(Struct):
        leader_id: int = field(INT32, "12+", default=-1)
        leader_epoch: int = field(INT32, "12+", default=-1)

    class SnapshotId(Struct):
        end_offset: int = field(INT64, default=-1)
        epoch: int = field(INT32, default=-1)

    class AbortedTransaction(Struct):
        producer_id: int = field(INT64, "4+")
        first_offset: int = field(INT64, "4+")

    throttle_time_ms: int = field(INT32, "1+")
    error_code: int = field(INT16, "7+")
    session_id: int = field(INT32, "7+")
    responses: list[FetchResponse.FetchableTopicResponse] = field(ARRAY)
