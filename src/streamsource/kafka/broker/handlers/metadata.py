"""ApiVersions and Metadata: what the broker speaks, which topics exist and who leads them."""

from __future__ import annotations

from functools import partial
from typing import Protocol

from streamsource.kafka.broker.handlers.base import Advertised, HasTopics, HasWriter
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.broker.topics import Topic, TopicError
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.api import SUPPORTED_VERSIONS
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.api_versions import (
    ApiVersionsRequest,
    ApiVersionsResponse,
)
from streamsource.kafka.protocol.messages.metadata import MetadataRequest, MetadataResponse


class MetadataContext(Advertised, HasTopics, HasWriter, Protocol):
    """Who the broker is and which topics it holds."""


_Broker = MetadataResponse.MetadataResponseBroker
_Topic = MetadataResponse.MetadataResponseTopic
_Partition = MetadataResponse.MetadataResponsePartition


def advertised_versions(implemented: set[int]) -> list[ApiVersionsResponse.ApiVersion]:
    """The (key, min, max) entries ApiVersions lists: only APIs that have a handler."""
    return [
        ApiVersionsResponse.ApiVersion(api_key=int(key), min_version=low, max_version=high)
        for key, (low, high) in sorted(SUPPORTED_VERSIONS.items())
        if key in implemented
    ]


async def handle_api_versions(
    broker: MetadataContext, client: ClientInfo, header: RequestHeader, request: ApiVersionsRequest
) -> ApiVersionsResponse:
    from streamsource.kafka.broker.handlers import HANDLERS  # the table imports this module

    return ApiVersionsResponse(
        error_code=ErrorCode.NONE, api_keys=advertised_versions(set(HANDLERS))
    )


async def handle_metadata(
    broker: MetadataContext, client: ClientInfo, header: RequestHeader, request: MetadataRequest
) -> MetadataResponse:
    version = header.api_version
    topics = broker.topics
    wanted: list[tuple[str | None, Topic | None, ErrorCode]] = []
    if request.topics is None or (version == 0 and not request.topics):
        wanted = [(t.name, t, ErrorCode.NONE) for t in topics.topics.values()]
    else:
        auto = broker.config.auto_create_topics and (
            version < 4 or request.allow_auto_topic_creation
        )
        for entry in request.topics:
            name = entry.name
            topic = topics.get(name) if name is not None else topics.by_id(entry.topic_id)
            error = ErrorCode.NONE
            if topic is None:
                error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                if name is None:
                    error = ErrorCode.UNKNOWN_TOPIC_ID
                elif auto:
                    # created now and returned with its leader in this same response:
                    # kafka-go 0.2.1 asks only once
                    try:
                        topic = await broker.writer.run(partial(topics.get_or_create, name))
                        error = ErrorCode.NONE
                    except TopicError as exc:
                        error = exc.error_code
            wanted.append((name, topic, error))
    node = broker.config.node_id
    host, port = broker.endpoint(client.listener)
    return MetadataResponse(
        brokers=[_Broker(node_id=node, host=host, port=port)],
        cluster_id=broker.cluster_id,
        controller_id=node,
        topics=[_describe(name, topic, error, node) for name, topic, error in wanted],
    )


def _describe(name: str | None, topic: Topic | None, error: ErrorCode, node: int) -> _Topic:
    if topic is None:
        return _Topic(error_code=error, name=name, partitions=[])
    return _Topic(
        error_code=error,
        name=topic.name,
        topic_id=topic.topic_id,
        partitions=[
            _Partition(
                error_code=ErrorCode.NONE,
                partition_index=i,
                leader_id=node,
                leader_epoch=0,
                replica_nodes=[node],
                isr_nodes=[node],
            )
            for i in range(len(topic.partitions))
        ],
    )
