"""The state of one consumer group and its members (no behaviour beyond bookkeeping).

The transitions live in ``groups.GroupCoordinator``; this module holds what a group knows
and the two pure decisions Kafka makes from it: which protocols a joining member may use,
and which protocol the group selects once the join phase completes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from streamsource.kafka.coordinator.group_messages import GroupState, JoinMember, Protocol


@dataclass(slots=True)
class Waiter:
    """A delayed request parked on a member until the group can answer it."""

    token: object


@dataclass(slots=True)
class Member:
    """A group member as the coordinator tracks it."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    protocol_type: str
    protocols: list[Protocol]
    session_timeout_ms: int
    rebalance_timeout_ms: int
    session_deadline_ms: int
    join_waiter: Waiter | None = None
    sync_waiter: Waiter | None = None
    assignment: bytes = b""

    @property
    def protocol_names(self) -> list[str]:
        """The protocol names in the member's order of preference."""
        return [p.name for p in self.protocols]

    def metadata_for(self, protocol_name: str | None) -> bytes:
        """The member's metadata for ``protocol_name`` (empty if it does not support it)."""
        for p in self.protocols:
            if p.name == protocol_name:
                return p.metadata
        return b""

    @property
    def awaiting(self) -> bool:
        """A parked join or sync keeps a member alive: its request is its heartbeat."""
        return self.join_waiter is not None or self.sync_waiter is not None


@dataclass(slots=True)
class Group:
    """One consumer group."""

    group_id: str
    state: GroupState = GroupState.EMPTY
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    # insertion order is join order: the first member becomes leader when one is needed
    members: dict[str, Member] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)  # instance id -> member id
    # member ids handed out with MEMBER_ID_REQUIRED, not yet joined -> expiry deadline
    pending_members: dict[str, int] = field(default_factory=dict)
    join_deadline_ms: int | None = None
    # set while the delayed initial rebalance of an empty group runs
    initial_join_cap_ms: int | None = None
    joined_during_delay: bool = False
    # members of the current generation that have not sent SyncGroup yet, and until when
    pending_sync: set[str] = field(default_factory=set)
    sync_deadline_ms: int | None = None
    has_offsets: bool = False

    def supports_protocols(self, protocol_type: str, names: list[str], member_id: str) -> bool:
        """Whether a member with these protocols may join (Kafka's ``supportsProtocols``)."""
        if not protocol_type or not names:
            return False
        others = [m for m in self.members.values() if m.member_id != member_id]
        if not others:
            return True
        if protocol_type != self.protocol_type:
            return False
        common = set(names)
        for m in others:
            common.intersection_update(m.protocol_names)
        return bool(common)

    def select_protocol(self) -> str:
        """The protocol all members support that most members prefer (Kafka's vote)."""
        members = list(self.members.values())
        candidates = set(members[0].protocol_names)
        for m in members[1:]:
            candidates.intersection_update(m.protocol_names)
        votes: Counter[str] = Counter()
        for m in members:
            votes[next(n for n in m.protocol_names if n in candidates)] += 1
        # ties go to the leader's (or first member's) order of preference
        first = self.members.get(self.leader_id or "") or members[0]
        order = {name: i for i, name in enumerate(first.protocol_names)}
        return max(votes, key=lambda name: (votes[name], -order.get(name, len(order))))

    def all_members_joined(self) -> bool:
        """Every known member has re-joined and no MEMBER_ID_REQUIRED joiner is pending."""
        return not self.pending_members and all(
            m.join_waiter is not None for m in self.members.values()
        )

    def rebalance_timeout_ms(self) -> int:
        """The join phase waits as long as the most patient member allows."""
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def join_members(self) -> list[JoinMember]:
        """The member list the leader receives, with metadata for the selected protocol."""
        return [
            JoinMember(m.member_id, m.group_instance_id, m.metadata_for(self.protocol_name))
            for m in self.members.values()
        ]
