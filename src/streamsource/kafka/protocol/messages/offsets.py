"""OffsetCommit (key 8) and OffsetFetch (key 9).

OffsetFetch v8 batches several groups (``groups``); earlier versions name one ``group_id``.
OffsetFetch ``topics`` is ``None`` (v2+) for "every partition the group committed".
"""

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


class OffsetCommitRequest(Message, api_key=8, versions="0-9", flexible="8+"):
    """OffsetCommit request, versions 0-9 (API key 8).

    v9 has v8's layout; it is what consumers of a KIP-848 group send, ``generation_id``
    then carrying the member epoch (Kafka's ``GenerationIdOrMemberEpoch``).
    """

    class OffsetCommitRequestTopic(Struct):
        name: str = field(STRING)
        partitions: list[OffsetCommitRequest.OffsetCommitRequestPartition] = field(ARRAY)

    class OffsetCommitRequestPartition(Struct):
        partition_index: int = field(INT32)
        committed_offset: int = field(INT64)
        committed_leader_epoch: int = field(INT32, "6+", default=-1)
        commit_timestamp: int = field(INT64, "1-1", default=-1)
        committed_metadata: str | None = field(STRING, nullable="0+")

    group_id: str = field(STRING)
    generation_id: int = field(INT32, "1+", default=-1)
    member_id: str = field(STRING, "1+")
    group_instance_id: str | None = field(STRING, "7+", nullable="7+", default=None)
    retention_time_ms: int = field(INT64, "2-4", default=-1)
    topics: list[OffsetCommitRequest.OffsetCommitRequestTopic] = field(ARRAY)


class OffsetCommitResponse(Message, api_key=8, versions="0-9", flexible="8+"):
    """OffsetCommit response, versions 0-9 (API key 8; v9 may answer STALE_MEMBER_EPOCH)."""

    class OffsetCommitResponseTopic(Struct):
        name: str = field(STRING)
        partitions: list[OffsetCommitResponse.OffsetCommitResponsePartition] = field(ARRAY)

    class OffsetCommitResponsePartition(Struct):
        partition_index: int = field(INT32)
        error_code: int = field(INT16)

    throttle_time_ms: int = field(INT32, "3+")
    topics: list[OffsetCommitResponse.OffsetCommitResponseTopic] = field(ARRAY)


class OffsetFetchRequest(Message, api_key=9, versions="0-8", flexible="6+"):
    """OffsetFetch request, versions 0-8 (API key 9)."""

    class OffsetFetchRequestTopic(Struct):
        name: str = field(STRING, "0-7")
        partition_indexes: list[int] = field(Array(INT32), "0-7")

    class OffsetFetchRequestGroup(Struct):
        group_id: str = field(STRING, "8+")
        topics: list[OffsetFetchRequest.OffsetFetchRequestTopics] | None = field(
            ARRAY, "8+", nullable="8+"
        )

    class OffsetFetchRequestTopics(Struct):
        name: str = field(STRING, "8+")
        partition_indexes: list[int] = field(Array(INT32), "8+")

    group_id: str = field(STRING, "0-7")
    topics: list[OffsetFetchRequest.OffsetFetchRequestTopic] | None = field(
        ARRAY, "0-7", nullable="2-7"
    )
    groups: list[OffsetFetchRequest.OffsetFetchRequestGroup] = field(ARRAY, "8+")
    require_stable: bool = field(BOOL, "7+")


class OffsetFetchResponse(Message, api_key=9, versions="0-8", flexible="6+"):
    """OffsetFetch response, versions 0-8 (API key 9)."""

    class OffsetFetchResponseTopic(Struct):
        name: str = field(STRING, "0-7")
        partitions: list[OffsetFetchResponse.OffsetFetchResponsePartition] = field(ARRAY, "0-7")

    class OffsetFetchResponsePartition(Struct):
        partition_index: int = field(INT32, "0-7")
        committed_offset: int = field(INT64, "0-7")
        committed_leader_epoch: int = field(INT32, "5-7", default=-1)
        metadata: str | None = field(STRING, "0-7", nullable="0-7")
        error_code: int = field(INT16, "0-7")

    class OffsetFetchResponseGroup(Struct):
        group_id: str = field(STRING, "8+")
        topics: list[OffsetFetchResponse.OffsetFetchResponseTopics] = field(ARRAY, "8+")
        error_code: int = field(INT16, "8+")

    class OffsetFetchResponseTopics(Struct):
        name: str = field(STRING, "8+")
        partitions: list[OffsetFetchResponse.OffsetFetchResponsePartitions] = field(ARRAY, "8+")

    class OffsetFetchResponsePartitions(Struct):
        partition_index: int = field(INT32, "8+")
        committed_offset: int = field(INT64, "8+")
        committed_leader_epoch: int = field(INT32, "8+", default=-1)
        metadata: str | None = field(STRING, "8+", nullable="8+")
        error_code: int = field(INT16, "8+")

    throttle_time_ms: int = field(INT32, "3+")
    topics: list[OffsetFetchResponse.OffsetFetchResponseTopic] = field(ARRAY, "0-7")
    error_code: int = field(INT16, "2-7")
    groups: list[OffsetFetchResponse.OffsetFetchResponseGroup] = field(ARRAY, "8+")
