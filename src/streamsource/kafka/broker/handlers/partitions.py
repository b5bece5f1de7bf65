"""CreatePartitions (grow a topic) and DeleteRecords (move a partition's log start forward)."""

from __future__ import annotations

from functools import partial
from typing import Protocol

from streamsource.kafka.broker.handlers.base import HasConfig, HasTopics, HasWriter
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.broker.topics import TopicError
from streamsource.kafka.log import LogClosed, LogError
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.partitions import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    DeleteRecordsRequest,
    DeleteRecordsResponse,
)


class PartitionsContext(HasConfig, HasTopics, HasWriter, Protocol):
    """The topics grown or trimmed."""


_Grown = CreatePartitionsResponse.CreatePartitionsTopicResult
_TopicDeleted = DeleteRecordsResponse.DeleteRecordsTopicResult
_PartitionDeleted = DeleteRecordsResponse.DeleteRecordsPartitionResult

#: DeleteRecords offset meaning "everything up to the high watermark".
HIGH_WATERMARK = -1


async def handle_create_partitions(
    broker: PartitionsContext,
    client: ClientInfo,
    header: RequestHeader,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse:
    results: list[_Grown] = []
    named = [t.name for t in request.topics]
    for wanted in request.topics:
        result = _Grown(name=wanted.name)
        results.append(result)
        try:
            if named.count(wanted.name) > 1:
                raise TopicError(ErrorCode.INVALID_REQUEST, f"topic {wanted.name!r} is named twice")
            topic = broker.topics.check_add_partitions(wanted.name, wanted.count)
            if wanted.assignments is not None:
                _check_assignments(broker, wanted.count - len(topic.partitions), wanted)
            if not request.validate_only:
                await broker.writer.run(
                    partial(broker.topics.add_partitions, wanted.name, wanted.count)
                )
        except TopicError as exc:
            result.error_code = exc.error_code
            result.error_message = str(exc)
        except LogError as exc:
            result.error_code = exc.error_code
            result.error_message = str(exc)
    return CreatePartitionsResponse(results=results)


def _check_assignments(
    broker: PartitionsContext, added: int, wanted: CreatePartitionsRequest.CreatePartitionsTopic
) -> None:
    """A manual assignment must place each new partition on this broker alone."""
    assignments = wanted.assignments or []
    if len(assignments) != added:
        raise TopicError(
            ErrorCode.INVALID_REPLICA_ASSIGNMENT,
            f"increasing the number of partitions by {added} but {len(assignments)} "
            "assignments provided",
        )
    node = broker.config.node_id
    for assignment in assignments:
        if assignment.broker_ids != [node]:
            raise TopicError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"replica assignment {assignment.broker_ids} is not possible: this cluster "
                f"has one broker ({node}) and topics have one replica",
            )


async def handle_delete_records(
    broker: PartitionsContext,
    client: ClientInfo,
    header: RequestHeader,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse:
    topics: list[_TopicDeleted] = []
    for topic in request.topics:
        results: list[_PartitionDeleted] = []
        for wanted in topic.partitions:
            result = _PartitionDeleted(partition_index=wanted.partition_index)
            results.append(result)
            partition = broker.topics.partition(topic.name, wanted.partition_index)
            if partition is None or partition.closed:
                result.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            high_watermark = partition.high_watermark
            offset = high_watermark if wanted.offset == HIGH_WATERMARK else wanted.offset
            if not 0 <= offset <= high_watermark:
                result.error_code = ErrorCode.OFFSET_OUT_OF_RANGE
                continue
            try:
                result.low_watermark = await broker.writer.run(
                    partial(partition.log.delete_records_before, offset)
                )
            except LogClosed:  # the topic was deleted meanwhile
                result.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            except LogError as exc:
                result.error_code = exc.error_code
        topics.append(_TopicDeleted(name=topic.name, partitions=results))
    return DeleteRecordsResponse(topics=topics)
