"""CreateTopics, DeleteTopics and a minimal DescribeConfigs (topics and this broker)."""

from __future__ import annotations

import uuid
from typing import Protocol

from streamsource.kafka.broker.handlers.base import HasConfig, HasGroups, HasProducers, HasTopics
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.broker.topics import Topic, TopicError
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.configs import (
    DescribeConfigsRequest,
    DescribeConfigsResponse,
)
from streamsource.kafka.protocol.messages.topics import (
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
)


class AdminContext(HasConfig, HasTopics, HasProducers, HasGroups, Protocol):
    """Topic administration: the topics, and the producer and offset state of deleted topics."""


RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4
# DescribeConfigs config_source values
SOURCE_TOPIC = 1
SOURCE_DEFAULT = 5

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
                topic = broker.topics.create(wanted.name, count, configs)
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
                    name=name,
                    value=value,
                    config_source=SOURCE_TOPIC if name in topic.configs else SOURCE_DEFAULT,
                )
                for name, value in sorted(topic.settings.to_topic_configs().items())
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
        delete_topic(broker, topic)
    return DeleteTopicsResponse(responses=results)


def delete_topic(broker: AdminContext, topic: Topic) -> None:
    """Delete a topic with its data, its producers' state and its committed offsets."""
    for partition in topic.partitions:
        broker.producers.forget(partition)
    broker.topics.delete(topic.name)
    broker.groups.offsets.delete_topic(topic.name)


async def handle_describe_configs(
    broker: AdminContext, client: ClientInfo, header: RequestHeader, request: DescribeConfigsRequest
) -> DescribeConfigsResponse:
    results: list[DescribeConfigsResponse.DescribeConfigsResult] = []
    for resource in request.resources:
        result = DescribeConfigsResponse.DescribeConfigsResult(
            resource_type=resource.resource_type,
            resource_name=resource.resource_name,
            error_message=None,
        )
        results.append(result)
        if resource.resource_type == RESOURCE_TOPIC:
            topic = broker.topics.get(resource.resource_name)
            if topic is None:
                result.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                result.error_message = f"no topic {resource.resource_name!r}"
                continue
            values = topic.settings.to_topic_configs()
            overridden = set(topic.configs)
        elif resource.resource_type == RESOURCE_BROKER:
            values = _broker_configs(broker)
            overridden = set()
        else:
            result.error_code = ErrorCode.INVALID_REQUEST
            result.error_message = f"resource type {resource.resource_type} is not supported"
            continue
        keys = resource.configuration_keys
        result.configs = [
            DescribeConfigsResponse.DescribeConfigsResourceResult(
                name=name,
                value=value,
                read_only=resource.resource_type == RESOURCE_BROKER,
                is_default=name not in overridden,
                config_source=SOURCE_TOPIC if name in overridden else SOURCE_DEFAULT,
                documentation=None,
            )
            for name, value in sorted(values.items())
            if keys is None or name in keys
        ]
    return DescribeConfigsResponse(results=results)


def _broker_configs(broker: AdminContext) -> dict[str, str]:
    config = broker.config
    return {
        "broker.id": str(config.node_id),
        "num.partitions": str(config.default_partitions),
        "auto.create.topics.enable": str(config.auto_create_topics).lower(),
        "log.dirs": str(config.data_dir),
        "socket.request.max.bytes": str(config.max_frame_bytes),
        **{
            f"log.{k}" if not k.startswith("log.") else k: v
            for k, v in broker.config.topic_log_config({}).to_topic_configs().items()
        },
    }
