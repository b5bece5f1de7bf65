"""ConsumerGroupHeartbeat (68) and ConsumerGroupDescribe (69): the KIP-848 group protocol.

Translations only: the wire names topics by id, the coordinator by name. A partition of a
topic id this broker does not know (deleted meanwhile) is left out; the coordinator's
assignment for it is then moot anyway.
"""

from __future__ import annotations

import typing
import uuid
from collections.abc import Iterable, Iterator, Mapping

from streamsource.kafka.broker.handlers.base import HasGroups, HasTopics
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.broker.topics import TopicManager
from streamsource.kafka.coordinator.assignors import TopicPartition
from streamsource.kafka.coordinator.consumer_group import ConsumerGroupState, ConsumerHeartbeat
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.consumer_groups import (
    ConsumerGroupDescribeRequest,
    ConsumerGroupDescribeResponse,
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
)


class ConsumerGroupsContext(HasTopics, HasGroups, typing.Protocol):
    """The topics (ids, partition counts) and the group runtime."""


class PartitionCounts(Mapping[str, int]):
    """Every topic's partition count, read from the topic manager when asked."""

    def __init__(self, topics: TopicManager) -> None:
        self._topics = topics.topics

    def __getitem__(self, name: str) -> int:
        return len(self._topics[name].partitions)

    def __iter__(self) -> Iterator[str]:
        return iter(self._topics)

    def __len__(self) -> int:
        return len(self._topics)


def _by_topic(partitions: Iterable[TopicPartition]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for topic, index in sorted(partitions):
        grouped.setdefault(topic, []).append(index)
    return grouped


async def handle_consumer_group_heartbeat(
    broker: ConsumerGroupsContext,
    client: ClientInfo,
    header: RequestHeader,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse:
    topics = broker.topics
    owned: frozenset[TopicPartition] | None = None
    if request.topic_partitions is not None:
        names = {t.topic_id: t.name for t in topics.topics.values()}
        owned = frozenset(
            (names[tp.topic_id], p)
            for tp in request.topic_partitions
            if tp.topic_id in names
            for p in tp.partitions
        )
    subscribed = request.subscribed_topic_names
    result = broker.groups.consumer_heartbeat(
        ConsumerHeartbeat(
            group_id=request.group_id,
            member_id=request.member_id,
            member_epoch=request.member_epoch,
            instance_id=request.instance_id,
            rack_id=request.rack_id,
            rebalance_timeout_ms=request.rebalance_timeout_ms,
            subscribed_topics=tuple(subscribed) if subscribed is not None else None,
            subscribed_regex=request.subscribed_topic_regex,
            server_assignor=request.server_assignor,
            owned=owned,
            client_id=header.client_id or "",
            client_host=f"/{client.host}",
            client_chooses_member_id=header.api_version >= 1,
        ),
        PartitionCounts(topics),
    )
    assignment = None
    if result.assignment is not None:
        assignment = ConsumerGroupHeartbeatResponse.Assignment(
            topic_partitions=[
                ConsumerGroupHeartbeatResponse.TopicPartitions(
                    topic_id=topic.topic_id, partitions=indexes
                )
                for name, indexes in _by_topic(result.assignment).items()
                if (topic := topics.get(name)) is not None
            ]
        )
    return ConsumerGroupHeartbeatResponse(
        error_code=result.error_code,
        error_message=result.error_message,
        member_id=result.member_id,
        member_epoch=result.member_epoch,
        heartbeat_interval_ms=result.heartbeat_interval_ms,
        assignment=assignment,
    )


async def handle_consumer_group_describe(
    broker: ConsumerGroupsContext,
    client: ClientInfo,
    header: RequestHeader,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse:
    Response = ConsumerGroupDescribeResponse
    topics = broker.topics

    def assignment(
        partitions: Iterable[TopicPartition],
    ) -> ConsumerGroupDescribeResponse.Assignment:
        return Response.Assignment(
            topic_partitions=[
                Response.TopicPartitions(
                    topic_id=topic.topic_id if topic is not None else uuid.UUID(int=0),
                    topic_name=name,
                    partitions=indexes,
                )
                for name, indexes in _by_topic(partitions).items()
                for topic in [topics.get(name)]
            ]
        )

    described: list[ConsumerGroupDescribeResponse.DescribedGroup] = []
    coordinator = broker.groups.consumer_groups
    for group_id in request.group_ids:
        group = coordinator.groups.get(group_id)
        if group is None:
            message = f"group {group_id!r} is not a consumer group"
            described.append(
                Response.DescribedGroup(
                    error_code=ErrorCode.GROUP_ID_NOT_FOUND,
                    error_message=message,
                    group_id=group_id,
                    group_state=ConsumerGroupState.DEAD.value,
                )
            )
            continue
        described.append(
            Response.DescribedGroup(
                error_code=ErrorCode.NONE,
                group_id=group_id,
                group_state=group.state.value,
                group_epoch=group.group_epoch,
                assignment_epoch=group.assignment_epoch,
                assignor_name=group.assignor,
                members=[
                    Response.Member(
                        member_id=m.member_id,
                        instance_id=m.instance_id,
                        rack_id=m.rack_id,
                        member_epoch=m.member_epoch,
                        client_id=m.client_id,
                        client_host=m.client_host,
                        subscribed_topic_names=list(m.subscribed_topics),
                        subscribed_topic_regex=m.subscribed_regex,
                        assignment=assignment(m.assigned),
                        target_assignment=assignment(group.target.get(m.member_id, ())),
                        member_type=1,
                    )
                    for m in group.members.values()
                ],
            )
        )
    return ConsumerGroupDescribeResponse(groups=described)
