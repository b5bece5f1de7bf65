"""The consumer-group protocol of KIP-848: ConsumerGroupHeartbeat (68) and
ConsumerGroupDescribe (69). Topics are named by id in heartbeats, by id and name in
descriptions.

Version 1 of both: in a heartbeat the member id is chosen by the client (v0: by the
coordinator on the first heartbeat) and a topic regex may be given; a described member has
a type (classic or consumer).
"""

from __future__ import annotations

import uuid

from streamsource.kafka.protocol.schema import (
    ARRAY,
    BOOL,
    INT8,
    INT16,
    INT32,
    STRING,
    STRUCT,
    UUID,
    Array,
    Message,
    Struct,
    field,
)


class ConsumerGroupHeartbeatRequest(Message, api_key=68, versions="0-1", flexible="0+"):
    """ConsumerGroupHeartbeat request, versions 0-1 (API key 68).

    Member epoch 0 joins, -1 leaves, -2 leaves for now (a static member about to restart).
    The nullable fields are null when unchanged since the member's previous heartbeat.
    """

    class TopicPartitions(Struct):
        topic_id: uuid.UUID = field(UUID)
        partitions: list[int] = field(Array(INT32))

    group_id: str = field(STRING)
    member_id: str = field(STRING)
    member_epoch: int = field(INT32)
    instance_id: str | None = field(STRING, nullable="0+", default=None)
    rack_id: str | None = field(STRING, nullable="0+", default=None)
    rebalance_timeout_ms: int = field(INT32, default=-1)
    subscribed_topic_names: list[str] | None = field(Array(STRING), nullable="0+", default=None)
    subscribed_topic_regex: str | None = field(STRING, "1+", nullable="1+", default=None)
    server_assignor: str | None = field(STRING, nullable="0+", default=None)
    topic_partitions: list[ConsumerGroupHeartbeatRequest.TopicPartitions] | None = field(
        ARRAY, nullable="0+", default=None
    )


class ConsumerGroupHeartbeatResponse(Message, api_key=68, versions="0-1", flexible="0+"):
    """ConsumerGroupHeartbeat response, versions 0-1 (API key 68)."""

    class TopicPartitions(Struct):
        topic_id: uuid.UUID = field(UUID)
        partitions: list[int] = field(Array(INT32))

    class Assignment(Struct):
        topic_partitions: list[ConsumerGroupHeartbeatResponse.TopicPartitions] = field(ARRAY)

    throttle_time_ms: int = field(INT32)
    error_code: int = field(INT16)
    error_message: str | None = field(STRING, nullable="0+", default=None)
    member_id: str | None = field(STRING, nullable="0+", default=None)
    member_epoch: int = field(INT32)
    heartbeat_interval_ms: int = field(INT32)
    # null: unchanged since the previous response
    assignment: ConsumerGroupHeartbeatResponse.Assignment | None = field(STRUCT, nullable="0+")


class ConsumerGroupDescribeRequest(Message, api_key=69, versions="0-1", flexible="0+"):
    """ConsumerGroupDescribe request, versions 0-1 (API key 69)."""

    group_ids: list[str] = field(Array(STRING))
    include_authorized_operations: bool = field(BOOL)


class ConsumerGroupDescribeResponse(Message, api_key=69, versions="0-1", flexible="0+"):
    """ConsumerGroupDescribe response, versions 0-1 (API key 69)."""

    class TopicPartitions(Struct):
        topic_id: uuid.UUID = field(UUID)
        topic_name: str = field(STRING)
        partitions: list[int] = field(Array(INT32))

    class Assignment(Struct):
        topic_partitions: list[ConsumerGroupDescribeResponse.TopicPartitions] = field(ARRAY)

    class Member(Struct):
        member_id: str = field(STRING)
        instance_id: str | None = field(STRING, nullable="0+", default=None)
        rack_id: str | None = field(STRING, nullable="0+", default=None)
        member_epoch: int = field(INT32)
        client_id: str = field(STRING)
        client_host: str = field(STRING)
        subscribed_topic_names: list[str] = field(Array(STRING))
        subscribed_topic_regex: str | None = field(STRING, nullable="0+", default=None)
        assignment: ConsumerGroupDescribeResponse.Assignment = field(STRUCT)
        target_assignment: ConsumerGroupDescribeResponse.Assignment = field(STRUCT)
        member_type: int = field(INT8, "1+", default=-1)  # 0 classic, 1 consumer

    class DescribedGroup(Struct):
        error_code: int = field(INT16)
        error_message: str | None = field(STRING, nullable="0+", default=None)
        group_id: str = field(STRING)
        group_state: str = field(STRING)
        group_epoch: int = field(INT32)
        assignment_epoch: int = field(INT32)
        assignor_name: str = field(STRING)
        members: list[ConsumerGroupDescribeResponse.Member] = field(ARRAY)
        authorized_operations: int = field(INT32, default=-2147483648)

    throttle_time_ms: int = field(INT32)
    groups: list[ConsumerGroupDescribeResponse.DescribedGroup] = field(ARRAY)
