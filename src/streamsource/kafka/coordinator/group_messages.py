"""The plain values the group coordinator takes and returns.

The broker converts JoinGroup/SyncGroup/... protocol messages into these requests and the
results back into protocol responses, so the coordinator never sees a wire message class.
A request whose answer may be delayed (join, sync) carries a caller-chosen ``token``; the
answer comes back later as a ``Reply(token, result)`` from whichever call completed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

from streamsource.kafka.protocol.errors import ErrorCode


class GroupState(Enum):
    """A group's state, named as Kafka names it in DescribeGroups and ListGroups."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """Coordinator settings; defaults follow Kafka's broker defaults."""

    min_session_timeout_ms: int = 6_000
    max_session_timeout_ms: int = 1_800_000
    # Kafka waits this long after the first member joins an empty group, so that members
    # starting together land in one rebalance; 0 completes the join as soon as possible.
    initial_rebalance_delay_ms: int = 3_000
    max_group_size: int = 1_000
    max_groups: int = 10_000


class Protocol(NamedTuple):
    """One assignment protocol a member supports (e.g. ``range``) and its opaque metadata."""

    name: str
    metadata: bytes


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """A JoinGroup request, as plain values."""

    group_id: str
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    protocol_type: str
    protocols: list[Protocol]
    session_timeout_ms: int
    rebalance_timeout_ms: int
    require_known_member_id: bool = True  # JoinGroup v4+


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """A SyncGroup request; ``assignments`` is only non-empty from the leader."""

    group_id: str
    generation_id: int
    member_id: str
    group_instance_id: str | None = None
    protocol_type: str | None = None  # v5+, checked when given
    protocol_name: str | None = None
    assignments: dict[str, bytes] = field(default_factory=dict)


class JoinMember(NamedTuple):
    """A member as the leader sees it in its JoinGroup response."""

    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True, slots=True)
class JoinResult:
    """A JoinGroup response; ``members`` is filled only in the leader's response."""

    error_code: ErrorCode
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    member_id: str = ""
    members: list[JoinMember] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SyncResult:
    """A SyncGroup response: this member's assignment from the leader."""

    error_code: ErrorCode
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


class Reply(NamedTuple):
    """The answer to the delayed request identified by ``token``."""

    token: object
    result: JoinResult | SyncResult


class LeavingMember(NamedTuple):
    """One member named in a LeaveGroup request (v3+ may name several)."""

    member_id: str
    group_instance_id: str | None = None


class LeftMember(NamedTuple):
    """The per-member outcome of a LeaveGroup request."""

    member_id: str
    group_instance_id: str | None
    error_code: ErrorCode


@dataclass(frozen=True, slots=True)
class LeaveResult:
    """LeaveGroup's outcome plus the delayed requests the departure answered."""

    error_code: ErrorCode
    members: list[LeftMember]
    replies: list[Reply]


@dataclass(frozen=True, slots=True)
class MemberDescription:
    """A member as DescribeGroups shows it (metadata/assignment only when Stable)."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupDescription:
    """A DescribeGroups entry; an unknown group is described as Dead, as Kafka does."""

    error_code: ErrorCode
    group_id: str
    state: GroupState
    protocol_type: str
    protocol_name: str
    members: list[MemberDescription]


class ListedGroup(NamedTuple):
    """A ListGroups entry."""

    group_id: str
    protocol_type: str
    state: GroupState
