"""One consumer-protocol (KIP-848) group: its members, epochs, target and reconciliation.

The group epoch counts changes the assignment must follow (a member joins or leaves, a
subscription or a subscribed topic's partition count changes); the assignment epoch is the
group epoch the target assignment was computed at. A member's epoch reaches the assignment
epoch once it holds no partition its target does not include.

Reconciliation is incremental and revoke-before-assign: a member first gives up what its
target no longer includes (it keeps its epoch meanwhile), and a partition is handed to its
new owner only once no other member holds it, i.e. after the old owner has acknowledged the
revocation by heartbeating without it. "Holds" means assigned or being revoked, so no
partition is ever held by two members at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from streamsource.kafka.coordinator.assignors import TopicPartition
from streamsource.kafka.protocol.errors import ErrorCode

JOIN_EPOCH = 0
LEAVE_EPOCH = -1
STATIC_LEAVE_EPOCH = -2  # a static member leaving for now: it keeps its place and partitions


class ConsumerGroupState(Enum):
    """A consumer group's state as Kafka reports it (ConsumerGroupDescribe, ListGroups)."""

    EMPTY = "Empty"
    ASSIGNING = "Assigning"  # the target is behind the group epoch
    RECONCILING = "Reconciling"  # members still move towards the target
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True, slots=True)
class ConsumerHeartbeat:
    """A ConsumerGroupHeartbeat request, as plain values (topics by name).

    ``None`` fields did not change since the member's previous heartbeat.
    """

    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed_topics: tuple[str, ...] | None = None
    subscribed_regex: str | None = None
    server_assignor: str | None = None
    owned: frozenset[TopicPartition] | None = None
    client_id: str = ""
    client_host: str = ""
    client_chooses_member_id: bool = True  # v1+; in v0 the coordinator picks it


@dataclass(frozen=True, slots=True)
class ConsumerHeartbeatResult:
    """The answer; ``assignment`` is None when unchanged since the previous answer."""

    error_code: ErrorCode
    member_id: str | None = None
    member_epoch: int = -1
    heartbeat_interval_ms: int = 0
    assignment: frozenset[TopicPartition] | None = None
    error_message: str | None = None


@dataclass(slots=True)
class ConsumerMember:
    """A member as the coordinator tracks it."""

    member_id: str
    instance_id: str | None
    rack_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_deadline_ms: int
    subscribed_topics: tuple[str, ...] = ()
    subscribed_regex: str | None = None
    server_assignor: str | None = None
    member_epoch: int = 0
    previous_epoch: int = -1
    assigned: set[TopicPartition] = field(default_factory=set)
    revoking: set[TopicPartition] = field(default_factory=set)
    revoke_deadline_ms: int | None = None
    # the assignment last sent to the client (None: nothing sent yet)
    sent: frozenset[TopicPartition] | None = None
    left_static: bool = False  # left with epoch -2, may come back under its instance id

    def holds(self) -> set[TopicPartition]:
        """Partitions the member may be consuming: assigned or not yet confirmed revoked."""
        return self.assigned | self.revoking


@dataclass(slots=True)
class ConsumerGroup:
    """One consumer-protocol group."""

    group_id: str
    group_epoch: int = 0
    assignment_epoch: int = 0
    assignor: str = "uniform"
    members: dict[str, ConsumerMember] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)  # instance id -> member id
    target: dict[str, set[TopicPartition]] = field(default_factory=dict)
    # partition counts of the subscribed topics the target was computed for
    partition_counts: dict[str, int] = field(default_factory=dict)

    @property
    def state(self) -> ConsumerGroupState:
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.group_epoch > self.assignment_epoch:
            return ConsumerGroupState.ASSIGNING
        for m in self.members.values():
            if m.member_epoch != self.assignment_epoch or m.revoking:
                return ConsumerGroupState.RECONCILING
        return ConsumerGroupState.STABLE

    def holders(self) -> dict[TopicPartition, str]:
        """Partition -> the member holding it (assigned or being revoked)."""
        return {tp: m.member_id for m in self.members.values() for tp in m.holds()}

    def remove(self, member: ConsumerMember) -> None:
        """Drop a member: its partitions are free at once (it left or was fenced)."""
        del self.members[member.member_id]
        self.target.pop(member.member_id, None)
        if member.instance_id and self.static_members.get(member.instance_id) == member.member_id:
            del self.static_members[member.instance_id]
        self.group_epoch += 1


def reconcile(
    group: ConsumerGroup, member: ConsumerMember, owned: frozenset[TopicPartition] | None, now: int
) -> None:
    """Move ``member`` towards its target as far as the revoke-before-assign rule allows."""
    target = group.target.get(member.member_id, set())
    if member.revoking:
        # a partition back in the target needs no revocation after all
        back = member.revoking & target
        member.revoking -= back
        member.assigned |= back
        if owned is not None and not owned & member.revoking:
            member.revoking.clear()  # the member confirmed it let go
        if member.revoking:
            return
        member.revoke_deadline_ms = None
    revoke = member.assigned - target
    if revoke:
        member.assigned -= revoke
        member.revoking = revoke
        member.revoke_deadline_ms = now + member.rebalance_timeout_ms
        return
    if member.member_epoch != group.assignment_epoch:
        member.previous_epoch = member.member_epoch
        member.member_epoch = group.assignment_epoch
    missing = target - member.assigned
    if missing:
        holders = group.holders()
        member.assigned |= {tp for tp in missing if tp not in holders}
