"""FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ListGroups, DescribeGroups.

Thin translations between wire messages and the sans-I/O coordinator's plain values; the
group logic itself lives in ``kafka.coordinator``. This broker is every group's coordinator.
"""

from __future__ import annotations

import typing

from streamsource.kafka.broker.handlers.base import Advertised, HasGroups
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.coordinator.group_messages import (
    GroupState,
    JoinRequest,
    LeavingMember,
    Protocol,
    SyncRequest,
)
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.find_coordinator import (
    FindCoordinatorRequest,
    FindCoordinatorResponse,
)
from streamsource.kafka.protocol.messages.groups import (
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    ListGroupsRequest,
    ListGroupsResponse,
    SyncGroupRequest,
    SyncGroupResponse,
)


class GroupsContext(Advertised, HasGroups, typing.Protocol):
    """The group runtime, and who the coordinator is."""


async def handle_find_coordinator(
    broker: GroupsContext,
    client: ClientInfo,
    header: RequestHeader,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse:
    node = broker.config.node_id
    host, port = broker.endpoint(client.listener)
    if header.api_version >= 4:
        return FindCoordinatorResponse(
            coordinators=[
                FindCoordinatorResponse.Coordinator(key=key, node_id=node, host=host, port=port)
                for key in request.coordinator_keys
            ]
        )
    return FindCoordinatorResponse(node_id=node, host=host, port=port)


async def handle_join_group(
    broker: GroupsContext, client: ClientInfo, header: RequestHeader, request: JoinGroupRequest
) -> JoinGroupResponse:
    version = header.api_version
    session_timeout = request.session_timeout_ms
    result = await broker.groups.join(
        JoinRequest(
            group_id=request.group_id,
            member_id=request.member_id,
            group_instance_id=request.group_instance_id,
            client_id=header.client_id or "",
            client_host=f"/{client.host}",
            protocol_type=request.protocol_type,
            protocols=[Protocol(p.name, bytes(p.metadata)) for p in request.protocols],
            session_timeout_ms=session_timeout,
            rebalance_timeout_ms=(
                request.rebalance_timeout_ms if version >= 1 else session_timeout
            ),
            require_known_member_id=version >= 4,
        )
    )
    protocol_name = result.protocol_name
    if protocol_name is None and version < 7:
        protocol_name = ""  # not nullable before v7
    return JoinGroupResponse(
        error_code=result.error_code,
        generation_id=result.generation_id,
        protocol_type=result.protocol_type,
        protocol_name=protocol_name,
        leader=result.leader_id,
        member_id=result.member_id,
        members=[
            JoinGroupResponse.JoinGroupResponseMember(
                member_id=m.member_id, group_instance_id=m.group_instance_id, metadata=m.metadata
            )
            for m in result.members
        ],
    )


async def handle_sync_group(
    broker: GroupsContext, client: ClientInfo, header: RequestHeader, request: SyncGroupRequest
) -> SyncGroupResponse:
    result = await broker.groups.sync(
        SyncRequest(
            group_id=request.group_id,
            generation_id=request.generation_id,
            member_id=request.member_id,
            group_instance_id=request.group_instance_id,
            protocol_type=request.protocol_type,
            protocol_name=request.protocol_name,
            assignments={a.member_id: bytes(a.assignment) for a in request.assignments},
        )
    )
    return SyncGroupResponse(
        error_code=result.error_code,
        protocol_type=result.protocol_type,
        protocol_name=result.protocol_name,
        assignment=result.assignment,
    )


async def handle_heartbeat(
    broker: GroupsContext, client: ClientInfo, header: RequestHeader, request: HeartbeatRequest
) -> HeartbeatResponse:
    error = broker.groups.heartbeat(
        request.group_id, request.generation_id, request.member_id, request.group_instance_id
    )
    return HeartbeatResponse(error_code=error)


async def handle_leave_group(
    broker: GroupsContext, client: ClientInfo, header: RequestHeader, request: LeaveGroupRequest
) -> LeaveGroupResponse:
    if header.api_version >= 3:
        leaving = [LeavingMember(m.member_id, m.group_instance_id) for m in request.members]
    else:
        leaving = [LeavingMember(request.member_id)]
    result = broker.groups.leave(request.group_id, leaving)
    if header.api_version < 3:
        error = result.members[0].error_code if result.members else result.error_code
        return LeaveGroupResponse(error_code=error)
    return LeaveGroupResponse(
        error_code=result.error_code,
        members=[
            LeaveGroupResponse.MemberResponse(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                error_code=m.error_code,
            )
            for m in result.members
        ],
    )


async def handle_list_groups(
    broker: GroupsContext, client: ClientInfo, header: RequestHeader, request: ListGroupsRequest
) -> ListGroupsResponse:
    states: set[GroupState] | None = None
    if header.api_version >= 4 and request.states_filter:
        wanted = {s.lower() for s in request.states_filter}
        states = {s for s in GroupState if s.value.lower() in wanted}
    consumer_groups = broker.groups.consumer_groups.groups
    listed = [
        ListGroupsResponse.ListedGroup(
            group_id=g.group_id, protocol_type=g.protocol_type, group_state=g.state.value
        )
        for g in broker.groups.coordinator.list_groups(states)
        if not (g.state is GroupState.EMPTY and g.group_id in consumer_groups)
    ]
    # consumer-protocol (KIP-848) groups, with their own state names
    wanted_states = {s.value.lower() for s in states} if states is not None else None
    listed += [
        ListGroupsResponse.ListedGroup(
            group_id=g.group_id, protocol_type="consumer", group_state=g.state.value
        )
        for g in consumer_groups.values()
        if (wanted_states is None or g.state.value.lower() in wanted_states)
        and (g.members or broker.groups.coordinator.group_state(g.group_id) is GroupState.DEAD)
    ]
    return ListGroupsResponse(error_code=ErrorCode.NONE, groups=listed)


async def handle_describe_groups(
    broker: GroupsContext, client: ClientInfo, header: RequestHeader, request: DescribeGroupsRequest
) -> DescribeGroupsResponse:
    described: list[DescribeGroupsResponse.DescribedGroup] = []
    for group_id in request.groups:
        if broker.groups.consumer_groups.has_members(group_id):
            # as Kafka answers: DescribeGroups is for classic groups only
            described.append(
                DescribeGroupsResponse.DescribedGroup(
                    error_code=ErrorCode.GROUP_ID_NOT_FOUND, group_id=group_id, group_state="Dead"
                )
            )
            continue
        d = broker.groups.coordinator.describe(group_id)
        described.append(
            DescribeGroupsResponse.DescribedGroup(
                error_code=d.error_code,
                group_id=d.group_id,
                group_state=d.state.value,
                protocol_type=d.protocol_type,
                protocol_data=d.protocol_name,
                members=[
                    DescribeGroupsResponse.DescribedGroupMember(
                        member_id=m.member_id,
                        group_instance_id=m.group_instance_id,
                        client_id=m.client_id,
                        client_host=m.client_host,
                        member_metadata=m.metadata,
                        member_assignment=m.assignment,
                    )
                    for m in d.members
                ],
            )
        )
    return DescribeGroupsResponse(groups=described)
