"""ListOffsets (key 2): offsets by timestamp (-1 latest, -2 earliest).

Version 0 answers with ``old_style_offsets`` (a list) instead of ``timestamp``/``offset``.
"""

from __future__ import annotations

from streamsource.kafka.protocol.schema import (
    ARRAY,
    INT8,
    INT16,
    INT32,
    INT64,
    STRING,
    Array,
    Message,
    Struct,
    field,
)


class ListOffsetsRequest(Message, api_key=2, versions="0-7", flexible="6+"):
    """ListOffsets request, versions 0-7 (API key 2)."""

    class ListOffsetsTopic(Struct):
        name: str = field(STRING)
        partitions: list[ListOffsetsRequest.ListOffsetsPartition] = field(ARRAY)

    class ListOffsetsPartition(Struct):
        partition_index: int = field(INT32)
        current_leader_epoch: int = field(INT32, "4+", default=-1)
        timestamp: int = field(INT64)
        max_num_offsets: int = field(INT32, "0-0", default=1)

    replica_id: int = field(INT32)
    isolation_level: int = field(INT8, "2+")
    topics: list[ListOffsetsRequest.ListOffsetsTopic] = field(ARRAY)


class ListOffsetsResponse(Message, api_key=2, versions="0-7", flexible="6+"):
    """ListOffsets response, versions 0-7 (API key 2)."""

    class ListOffsetsTopicResponse(Struct):
        name: str = field(STRING)
        partitions: list[ListOffsetsResponse.ListOffsetsPartitionResponse] = field(ARRAY)

    class ListOffsetsPartitionResponse(Struct):
        partition_index: int = field(INT32)
        error_code: int = field(INT16)
        old_style_offsets: list[int] = field(Array(INT64), "0-0")
        timestamp: int = field(INT64, "1+", default=-1)
        offset: int = field(INT64, "1+", default=-1)
        leader_epoch: int = field(INT32, "4+", default=-1)

    throttle_time_ms: int = field(INT32, "2+")
    topics: list[ListOffsetsResponse.ListOffsetsTopicResponse] = field(ARRAY)
