"""The consumer-group APIs: JoinGroup (11), Heartbeat (12), LeaveGroup (13), SyncGroup (14),
DescribeGroups (15), ListGroups (16). Member metadata and assignments are opaque ``bytes``.
"""

from __future__ import annotations

from streamsource.kafka.protocol.schema import (
    ARRAY,
    BOOL,
    BYTES,
    INT16,
    INT32,
    STRING,
    Array,
    Message,
    Struct,
    field,
)


class JoinGroupRequest(Message, api_key=11, versions="0-7", flexible="6+"):
    """JoinGroup request, versions 0-7 (API key 11)."""

    class JoinGroupRequestProtocol(Struct):
        name: str = field(STRING)
        metadata: bytes = field(BYTES)

    group_id: str = field(STRING)
    session_timeout_ms: int = field(INT32)
    rebalance_timeout_ms: int = field(INT32, "1+", default=-1)
    member_id: str = field(STRING)
    group_instance_id: str | None = field(STRING, "5+", nullable="5+", default=None)
    protocol_type: str = field(STRING)
    protocols: list[JoinGroupRequest.JoinGroupRequestProtocol] = field(ARRAY)


class JoinGroupResponse(Message, api_key=11, versions="0-7", flexible="6+"):
    """JoinGroup response, versions 0-7 (API key 11)."""

    class JoinGroupResponseMember(Struct):
        member_id: str = field(STRING)
        group_instance_id: str | None = field(STRING, "5+", nullable="5+", default=None)
        metadata: bytes = field(BYTES)

    throttle_time_ms: int = field(INT32, "2+")
    error_code: int = field(INT16)
    generation_id: int = field(INT32, default=-1)
    protocol_type: str | None = field(STRING, "7+", nullable="7+", default=None)
    protocol_name: str | None = field(STRING, nullable="7+")
    leader: str = field(STRING)
    member_id: str = field(STRING)
    members: list[JoinGroupResponse.JoinGroupResponseMember] = field(ARRAY)


class SyncGroupRequest(Message, api_key=14, versions="0-5", flexible="4+"):
    """SyncGroup request, versions 0-5 (API key 14)."""

    class SyncGroupRequestAssignment(Struct):
        member_id: str = field(STRING)
        assignment: bytes = field(BYTES)

    group_id: str = field(STRING)
    generation_id: int = field(INT32)
    member_id: str = field(STRING)
    group_instance_id: str | None = field(STRING, "3+", nullable="3+", default=None)
    protocol_type: str | None = field(STRING, "5+", nullable="5+", default=None)
    protocol_name: str | None = field(STRING, "5+", nullable="5+", default=None)
    assignments: list[SyncGroupRequest.SyncGroupRequestAssignment] = field(ARRAY)


class SyncGroupResponse(Message, api_key=14, versions="0-5", flexible="4+"):
    """SyncGroup response, versions 0-5 (API key 14)."""

    throttle_time_ms: int = field(INT32, "1+")
    error_code: int = field(INT16)
    protocol_type: str | None = field(STRING, "5+", nullable="5+", default=None)
    protocol_name: str | None = field(STRING, "5+", nullable="5+", default=None)
    assignment: bytes = field(BYTES)


class HeartbeatRequest(Message, api_key=12, versions="0-4", flexible="4+"):
    """Heartbeat request, versions 0-4 (API key 12)."""

    group_id: str = field(STRING)
    generation_id: int = field(INT32)
    member_id: str = field(STRING)
    group_instance_id: str | None = field(STRING, "3+", nullable="3+", default=None)


class HeartbeatResponse(Message, api_key=12, versions="0-4", flexible="4+"):
    """Heartbeat response, versions 0-4 (API key 12)."""

    throttle_time_ms: int = field(INT32, "1+")
    error_code: int = field(INT16)


class LeaveGroupRequest(Message, api_key=13, versions="0-4", flexible="4+"):
    """LeaveGroup request, versions 0-4 (API key 13)."""

    class MemberIdentity(Struct):
        member_id: str = field(STRING, "3+")
        group_instance_id: str | None = field(STRING, "3+", nullable="3+", default=None)

    group_id: str = field(STRING)
    member_id: str = field(STRING, "0-2")
    members: list[LeaveGroupRequest.MemberIdentity] = field(ARRAY, "3+")


class LeaveGroupResponse(Message, api_key=13, versions="0-4", flexible="4+"):
    """LeaveGroup response, versions 0-4 (API key 13)."""

    class MemberResponse(Struct):
        member_id: str = field(STRING, "3+")
        group_instance_id: str | None = field(STRING, "3+", nullable="3+")
        error_code: int = field(INT16, "3+")

    throttle_time_ms: int = field(INT32, "1+")
    error_code: int = field(INT16)
    members: list[LeaveGroupResponse.MemberResponse] = field(ARRAY, "3+")


class ListGroupsRequest(Message, api_key=16, versions="0-4", flexible="3+"):
    """ListGroups request, versions 0-4 (API key 16)."""

    states_filter: list[str] = field(Array(STRING), "4+")


class ListGroupsResponse(Message, api_key=16, versions="0-4", flexible="3+"):
    """ListGroups response, versions 0-4 (API key 16)."""

    class ListedGroup(Struct):
        group_id: str = field(STRING)
        protocol_type: str = field(STRING)
        group_state: str = field(STRING, "4+")

    throttle_time_ms: int = field(INT32, "1+")
    error_code: int = field(INT16)
    groups: list[ListGroupsResponse.ListedGroup] = field(ARRAY)


class DescribeGroupsRequest(Message, api_key=15, versions="0-5", flexible="5+"):
    """DescribeGroups request, versions 0-5 (API key 15)."""

    groups: list[str] = field(Array(STRING))
    include_authorized_operations: bool = field(BOOL, "3+")


class DescribeGroupsResponse(Message, api_key=15, versions="0-5", flexible="5+"):
    """DescribeGroups response, versions 0-5 (API key 15)."""

    class DescribedGroup(Struct):
        error_code: int = field(INT16)
        group_id: str = field(STRING)
        group_state: str = field(STRING)
        protocol_type: str = field(STRING)
        protocol_data: str = field(STRING)
        members: list[DescribeGroupsResponse.DescribedGroupMember] = field(ARRAY)
        authorized_operations: int = field(INT32, "3+", default=-2147483648)

    class DescribedGroupMember(Struct):
        member_id: str = field(STRING)
        group_instance_id: str | None = field(STRING, "4+", nullable="4+", default=None)
        client_id: str = field(STRING)
        client_host: str = field(STRING)
        member_metadata: bytes = field(BYTES)
        member_assignment: bytes = field(BYTES)

    throttle_time_ms: int = field(INT32, "1+")
    groups: list[DescribeGroupsResponse.DescribedGroup] = field(ARRAY)
