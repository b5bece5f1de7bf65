"""ListOffsets: earliest (-2), latest (-1), max timestamp (-3) or first offset at a time."""

from __future__ import annotations

import asyncio
from typing import Protocol

from streamsource.kafka.broker.handlers.base import HasTopics
from streamsource.kafka.broker.partition import Partition
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.log.errors import LogClosed, LogError
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.list_offsets import (
    ListOffsetsRequest,
    ListOffsetsResponse,
)


class ListOffsetsContext(HasTopics, Protocol):
    """The partitions looked up."""


LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3  # KIP-734, v7+

_TopicResult = ListOffsetsResponse.ListOffsetsTopicResponse
_PartitionResult = ListOffsetsResponse.ListOffsetsPartitionResponse


async def handle_list_offsets(
    broker: ListOffsetsContext,
    client: ClientInfo,
    header: RequestHeader,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse:
    # index lookups read the log's files: in a worker thread, not on the event loop
    return await asyncio.to_thread(_list_offsets, broker, header.api_version, request)


def _list_offsets(
    broker: ListOffsetsContext, version: int, request: ListOffsetsRequest
) -> ListOffsetsResponse:
    topics: list[_TopicResult] = []
    for topic in request.topics:
        results: list[_PartitionResult] = []
        for wanted in topic.partitions:
            result = _PartitionResult(partition_index=wanted.partition_index)
            results.append(result)
            partition = broker.topics.partition(topic.name, wanted.partition_index)
            if partition is None:
                result.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            try:
                offset, timestamp = _lookup(
                    partition, wanted.timestamp, committed=request.isolation_level == 1
                )
            except LogClosed:  # the topic was deleted meanwhile
                result.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            except LogError as exc:
                result.error_code = exc.error_code
                continue
            if version == 0:
                # v0 answers a list of offsets (at most max_num_offsets); one suffices
                result.old_style_offsets = (
                    [offset] if offset >= 0 and wanted.max_num_offsets else []
                )
            else:
                result.offset, result.timestamp = offset, timestamp
                result.leader_epoch = 0 if offset >= 0 else -1
        topics.append(_TopicResult(name=topic.name, partitions=results))
    return ListOffsetsResponse(topics=topics)


def _lookup(partition: Partition, timestamp: int, *, committed: bool) -> tuple[int, int]:
    """(offset, timestamp) for the request's timestamp; (-1, -1) when there is none.

    Latest is the last stable offset for read_committed (isolation level 1), as in Kafka.
    """
    if timestamp == LATEST:
        return (partition.last_stable_offset if committed else partition.high_watermark), -1
    if timestamp == EARLIEST:
        return partition.log_start_offset, -1
    if timestamp == MAX_TIMESTAMP:
        # the record carrying the largest timestamp, found through the time index
        found = partition.log.max_timestamp_offset()
    else:
        found = partition.log.offset_for_timestamp(timestamp)
    return found if found is not None else (-1, -1)
