"""Metadata (key 3): brokers, topics, partitions and their leaders.

``MetadataRequest.topics`` is ``None`` (v1+) for "all topics"; in v0 an empty list means all.
"""

from __future__ import annotations

import uuid

from streamsource.kafka.protocol.schema import (
    ARRAY,
    BOOL,
    INT16,
    INT32,
    STRING,
    UUID,
    Array,
    Message,
    Struct,
    field,
)


class MetadataRequest(Message, api_key=3, versions="0-12", flexible="9+"):
    """Metadata request, versions 0-12 (API key 3)."""

    class MetadataRequestTopic(Struct):
        topic_id: uuid.UUID = field(UUID, "10+")
        name: str | None = field(STRING, nullable="10+")

    topics: list[MetadataRequest.MetadataRequestTopic] | None = field(ARRAY, nullable="1+")
    allow_auto_topic_creation: bool = field(BOOL, "4+", default=True)
    include_cluster_authorized_operations: bool = field(BOOL, "8-10")
    include_topic_authorized_operations: bool = field(BOOL, "8+")


class MetadataResponse(Message, api_key=3, versions="0-12", flexible="9+"):
    """Metadata response, versions 0-12 (API key 3)."""

    class MetadataResponseBroker(Struct):
        node_id: int = field(INT32)
        host: str = field(STRING)
        port: int = field(INT32)
        rack: str | None = field(STRING, "1+", nullable="1+", default=None)

    class MetadataResponseTopic(Struct):
        error_code: int = field(INT16)
        name: str | None = field(STRING, nullable="12+")
        topic_id: uuid.UUID = field(UUID, "10+")
        is_internal: bool = field(BOOL, "1+")
        partitions: list[MetadataResponse.MetadataResponsePartition] = field(ARRAY)
        topic_authorized_operations: int = field(INT32, "8+", default=-2147483648)

    class MetadataResponsePartition(Struct):
        error_code: int = field(INT16)
        partition_index: int = field(INT32)
        leader_id: int = field(INT32)
        leader_epoch: int = field(INT32, "7+", default=-1)
        replica_nodes: list[int] = field(Array(INT32))
        isr_nodes: list[int] = field(Array(INT32))
        offline_replicas: list[int] = field(Array(INT32), "5+")

    throttle_time_ms: int = field(INT32, "3+")
    brokers: list[MetadataResponse.MetadataResponseBroker] = field(ARRAY)
    cluster_id: str | None = field(STRING, "2+", nullable="2+", default=None)
    controller_id: int = field(INT32, "1+", default=-1)
    topics: list[MetadataResponse.MetadataResponseTopic] = field(ARRAY)
    cluster_authorized_operations: int = field(INT32, "8-10", default=-2147483648)
