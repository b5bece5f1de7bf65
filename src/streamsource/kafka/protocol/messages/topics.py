"""CreateTopics (key 19) and DeleteTopics (key 20). DeleteTopics v6 names topics in
``topics`` (name or id); earlier versions in ``topic_names``."""

from __future__ import annotations

import uuid

from streamsource.kafka.protocol.schema import (
    ARRAY,
    BOOL,
    INT8,
    INT16,
    INT32,
    STRING,
    UUID,
    Array,
    Message,
    Struct,
    field,
)


class CreateTopicsRequest(Message, api_key=19, versions="0-7", flexible="5+"):
    """CreateTopics request, versions 0-7 (API key 19)."""

    class CreatableTopic(Struct):
        name: str = field(STRING)
        num_partitions: int = field(INT32)
        replication_factor: int = field(INT16)
        assignments: list[CreateTopicsRequest.CreatableReplicaAssignment] = field(ARRAY)
        configs: list[CreateTopicsRequest.CreatableTopicConfig] = field(ARRAY)

    class CreatableReplicaAssignment(Struct):
        partition_index: int = field(INT32)
        broker_ids: list[int] = field(Array(INT32))

    class CreatableTopicConfig(Struct):
        name: str = field(STRING)
        value: str | None = field(STRING, nullable="0+")

    topics: list[CreateTopicsRequest.CreatableTopic] = field(ARRAY)
    timeout_ms: int = field(INT32, default=60000)
    validate_only: bool = field(BOOL, "1+")


class CreateTopicsResponse(Message, api_key=19, versions="0-7", flexible="5+"):
    """CreateTopics response, versions 0-7 (API key 19)."""

    class CreatableTopicResult(Struct):
        name: str = field(STRING)
        topic_id: uuid.UUID = field(UUID, "7+")
        error_code: int = field(INT16)
        error_message: str | None = field(STRING, "1+", nullable="0+")
        topic_config_error_code: int = field(INT16, "5+", tag=0)
        num_partitions: int = field(INT32, "5+", default=-1)
        replication_factor: int = field(INT16, "5+", default=-1)
        configs: list[CreateTopicsResponse.CreatableTopicConfigs] | None = field(
            ARRAY, "5+", nullable="5+"
        )

    class CreatableTopicConfigs(Struct):
        name: str = field(STRING, "5+")
        value: str | None = field(STRING, "5+", nullable="5+")
        read_only: bool = field(BOOL, "5+")
        config_source: int = field(INT8, "5+", default=-1)
        is_sensitive: bool = field(BOOL, "5+")

    throttle_time_ms: int = field(INT32, "2+")
    topics: list[CreateTopicsResponse.CreatableTopicResult] = field(ARRAY)


class DeleteTopicsRequest(Message, api_key=20, versions="0-6", flexible="4+"):
    """DeleteTopics request, versions 0-6 (API key 20)."""

    class DeleteTopicState(Struct):
        name: str | None = field(STRING, "6+", nullable="6+", default=None)
        topic_id: uuid.UUID = field(UUID, "6+")

    topics: list[DeleteTopicsRequest.DeleteTopicState] = field(ARRAY, "6+")
    topic_names: list[str] = field(Array(STRING), "0-5")
    timeout_ms: int = field(INT32)


class DeleteTopicsResponse(Message, api_key=20, versions="0-6", flexible="4+"):
    """DeleteTopics response, versions 0-6 (API key 20)."""

    class DeletableTopicResult(Struct):
        name: str | None = field(STRING, nullable="6+")
        topic_id: uuid.UUID = field(UUID, "6+")
        error_code: int = field(INT16)
        error_message: str | None = field(STRING, "5+", nullable="5+", default=None)

    throttle_time_ms: int = field(INT32, "1+")
    responses: list[DeleteTopicsResponse.DeletableTopicResult] = field(ARRAY)
