"""CreateTopics and DeleteTopics."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Protocol

from streamsource.kafka.broker.handlers.base import (
    HasConfig,
    HasGroups,
    HasProducers,
    HasTopics,
    HasWriter,
)
from streamsource.kafka.broker.handlers.configs import topic_config_values
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.broker.topics import Topic, TopicError
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.topics import (
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
)
from streamsource.kafka.storage import StorageError


class AdminContext(HasConfig, HasTopics, HasProducers, HasGroups, HasWriter, Protocol):
    """Topic administration: the topics, and the producer and offset state of deleted topics."""


_Created = CreateTopicsResponse.CreatableTopicResult


async def handle_create_topics(
    broker: AdminContext, client: ClientInfo, header: RequestHeader, request: CreateTopicsRequest
) -> CreateTopicsResponse:
    results: list[_Created] = []
    seen: set[str] = set()
    for wanted in request.topics:
        result = _Created(name=wanted.name, error_message=None)
        results.append(result)
        if wanted.name in seen:
            result.error_code = ErrorCode.INVALID_REQUEST
            result.error_message = f"topic {wanted.name!r} is named twice in the request"
            continue
        seen.add(wanted.name)
        count = wanted.num_partitions
        if wanted.assignments:
            count = len(wanted.assignments)
        elif count == -1:
            count = broker.config.default_partitions
        configs = {c.name: c.value for c in wanted.configs if c.value is not None}
        try:
            if wanted.replication_factor not in (-1, 1) and not wanted.assignments:
                raise TopicError(
                    ErrorCode.INVALID_REPLICATION_FACTOR,
                    f"replication factor {wanted.replication_factor} is larger than the "
                    "number of brokers (1)",
                )
            if request.validate_only:
                broker.topics.check_create(wanted.name, count, configs)
                topic = None
            else:
                topic = await broker.writer.run(
                    partial(broker.topics.create, wanted.name, count, configs)
                )
        except TopicError as exc:
            result.error_code = exc.error_code
            result.error_message = str(exc)
            continue
        result.num_partitions = count
        result.replication_factor = 1
        if topic is not None:
            result.topic_id = topic.topic_id
            result.configs = [
                CreateTopicsResponse.CreatableTopicConfigs(
                    name=v.name, value=v.value, config_source=v.source
                )
                for v in topic_config_values(broker, topic)
            ]
    return CreateTopicsResponse(topics=results)


async def handle_delete_topics(
    broker: AdminContext, client: ClientInfo, header: RequestHeader, request: DeleteTopicsRequest
) -> DeleteTopicsResponse:
    results: list[DeleteTopicsResponse.DeletableTopicResult] = []
    targets: list[tuple[str | None, uuid.UUID | None]]
    if header.api_version >= 6:
        targets = [(t.name, t.topic_id) for t in request.topics]
    else:
        targets = [(name, None) for name in request.topic_names]
    for name, topic_id in targets:
        topic = broker.topics.get(name) if name is not None else None
        if topic is None and name is None and topic_id is not None:
            topic = broker.topics.by_id(topic_id)
        result = DeleteTopicsResponse.DeletableTopicResult(name=name)
        results.append(result)
        if topic is None:
            result.error_code = (
                ErrorCode.UNKNOWN_TOPIC_ID if name is None else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            )
            continue
        result.name, result.topic_id = topic.name, topic.topic_id
        try:
            await delete_topic(broker, topic)
        except (StorageError, TopicError) as exc:
            result.error_code = exc.error_code
            result.error_message = str(exc)
    return DeleteTopicsResponse(responses=results)


async def delete_topic(broker: AdminContext, topic: Topic) -> None:
    """Delete a topic with its data, its producers' state and its committed offsets.

    The offsets go first: if they cannot be removed the topic stays, rather than leave
    offsets that a topic created later under the same name would inherit.
    """
    await broker.groups.offsets.delete_topic(topic.name)

    def delete() -> None:
        for partition in topic.partitions:
            broker.producers.forget(partition)
        broker.topics.delete(topic.name)

    await broker.writer.run(delete)
    for partition in topic.partitions:
        partition.wake_waiters()  # long-polling fetches answer now (the log is gone)
