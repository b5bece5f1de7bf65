"""The consumer-group protocol coordinator (KIP-848, ConsumerGroupHeartbeat), sans-I/O.

Every call takes ``now_ms`` and, where assignments may change, the partition count of every
topic (``topics``); nothing here reads a clock or touches a socket. Unlike the classic
protocol no request is parked: a heartbeat is answered at once with the member's epoch and,
when it changed, its assignment. The broker calls ``tick`` at ``next_deadline_ms()`` so that
members whose session ended, or who did not revoke partitions within their rebalance
timeout, are removed (fenced) and their partitions move on.

Following Kafka's group coordinator:

* epoch 0 joins (v1: the client chose its member id), -1 leaves, -2 leaves for now (a
  static member restarting keeps its partitions until its session ends);
* an epoch the coordinator does not expect answers FENCED_MEMBER_EPOCH, except the
  previous epoch from a member whose answer was lost (it owns nothing it should not);
* the target assignment is recomputed whenever the group epoch moves past it, with the
  assignor most members ask for (``uniform`` when none does);
* static members (``instance_id``) take over their predecessor's place and partitions;
  a second live member with the same instance id gets UNRELEASED_INSTANCE_ID.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from streamsource.kafka.coordinator.assignors import ASSIGNORS, DEFAULT_ASSIGNOR, TopicPartition
from streamsource.kafka.coordinator.consumer_group import (
    JOIN_EPOCH,
    LEAVE_EPOCH,
    STATIC_LEAVE_EPOCH,
    ConsumerGroup,
    ConsumerGroupState,
    ConsumerHeartbeat,
    ConsumerHeartbeatResult,
    ConsumerMember,
    reconcile,
)
from streamsource.kafka.coordinator.group_snapshots import (
    ConsumerGroupSnapshot,
    ConsumerMemberSnapshot,
)
from streamsource.kafka.protocol.errors import ErrorCode

MAX_REGEX_CHARS = 1_000


@dataclass(frozen=True, slots=True)
class ConsumerGroupConfig:
    """Kafka's group.consumer.* broker settings."""

    session_timeout_ms: int = 45_000
    heartbeat_interval_ms: int = 5_000
    max_group_size: int = 1_000
    max_groups: int = 10_000


def _new_member_id() -> str:
    return str(uuid.uuid4())


def _fail(
    error: ErrorCode, message: str | None = None, member_id: str = ""
) -> ConsumerHeartbeatResult:
    return ConsumerHeartbeatResult(error, member_id=member_id or None, error_message=message)


class ConsumerGroupCoordinator:
    """Every consumer-protocol group of the broker."""

    def __init__(
        self,
        config: ConsumerGroupConfig | None = None,
        *,
        new_member_id: Callable[[], str] = _new_member_id,
    ) -> None:
        self.config = config or ConsumerGroupConfig()
        self._new_member_id = new_member_id
        self.groups: dict[str, ConsumerGroup] = {}

    # -- ConsumerGroupHeartbeat ------------------------------------------------------------

    def heartbeat(
        self, now_ms: int, req: ConsumerHeartbeat, topics: Mapping[str, int]
    ) -> ConsumerHeartbeatResult:
        """Handle one heartbeat; ``topics`` maps every topic name to its partition count."""
        error = self._check(req)
        if error is not None:
            return error
        group = self.groups.get(req.group_id)
        if group is None:
            if req.member_epoch != JOIN_EPOCH:
                return _fail(ErrorCode.UNKNOWN_MEMBER_ID, member_id=req.member_id)
            if len(self.groups) >= self.config.max_groups:
                self._forget_empty_groups()
                if len(self.groups) >= self.config.max_groups:
                    return _fail(ErrorCode.COORDINATOR_NOT_AVAILABLE, "too many groups")
            group = self.groups[req.group_id] = ConsumerGroup(req.group_id)
        if req.member_epoch == LEAVE_EPOCH:
            return self._leave(group, req)
        if req.member_epoch == STATIC_LEAVE_EPOCH:
            return self._leave_for_now(group, req)
        size = len(group.members)
        if req.member_epoch == JOIN_EPOCH:
            joined = self._join(now_ms, group, req)
            if isinstance(joined, ConsumerHeartbeatResult):
                return joined
            member = joined
        else:
            found = group.members.get(req.member_id)
            if found is None:
                return _fail(ErrorCode.UNKNOWN_MEMBER_ID, member_id=req.member_id)
            if req.member_epoch != found.member_epoch and not (
                req.member_epoch == found.previous_epoch
                and req.owned is not None
                and req.owned <= found.holds()
            ):
                return _fail(ErrorCode.FENCED_MEMBER_EPOCH, member_id=req.member_id)
            member = found
        member.session_deadline_ms = now_ms + self.config.session_timeout_ms
        changed = self._update(member, req) or len(group.members) > size
        self._maybe_assign(group, topics, changed)
        reconcile(group, member, req.owned, now_ms)
        assignment: frozenset[TopicPartition] | None = frozenset(member.assigned)
        # repeated while a revocation is pending or the client owns something else: an
        # earlier answer may have been lost
        unchanged = assignment == member.sent and not member.revoking
        in_sync = req.owned is None or req.owned == member.assigned
        if unchanged and in_sync and req.member_epoch != JOIN_EPOCH:
            assignment = None
        member.sent = frozenset(member.assigned)
        return ConsumerHeartbeatResult(
            ErrorCode.NONE,
            member_id=member.member_id,
            member_epoch=member.member_epoch,
            heartbeat_interval_ms=self.config.heartbeat_interval_ms,
            assignment=assignment,
        )

    def _check(self, req: ConsumerHeartbeat) -> ConsumerHeartbeatResult | None:
        if not req.group_id:
            return _fail(ErrorCode.INVALID_GROUP_ID, "the group id is empty")
        if req.member_epoch < STATIC_LEAVE_EPOCH:
            return _fail(ErrorCode.INVALID_REQUEST, f"member epoch {req.member_epoch}")
        if req.member_epoch != JOIN_EPOCH and not req.member_id:
            return _fail(ErrorCode.INVALID_REQUEST, "the member id is empty")
        if req.member_epoch == JOIN_EPOCH:
            if req.client_chooses_member_id and not req.member_id:
                return _fail(ErrorCode.INVALID_REQUEST, "the member id is empty")
            if req.subscribed_topics is None and req.subscribed_regex is None:
                return _fail(ErrorCode.INVALID_REQUEST, "a joining member names its topics")
            if req.rebalance_timeout_ms <= 0:
                return _fail(ErrorCode.INVALID_REQUEST, "a joining member gives its timeout")
        if req.server_assignor is not None and req.server_assignor not in ASSIGNORS:
            known = ", ".join(sorted(ASSIGNORS))
            message = f"assignor {req.server_assignor!r} is not one of {known}"
            return _fail(ErrorCode.UNSUPPORTED_ASSIGNOR, message)
        if req.subscribed_regex:
            if len(req.subscribed_regex) > MAX_REGEX_CHARS:
                return _fail(ErrorCode.INVALID_REGULAR_EXPRESSION, "the regex is too long")
            try:
                re.compile(req.subscribed_regex)
            except re.error as exc:
                return _fail(ErrorCode.INVALID_REGULAR_EXPRESSION, str(exc))
        return None

    def _join(
        self, now_ms: int, group: ConsumerGroup, req: ConsumerHeartbeat
    ) -> ConsumerMember | ConsumerHeartbeatResult:
        member_id = req.member_id or self._new_member_id()
        instance = req.instance_id
        if instance:
            previous_id = group.static_members.get(instance)
            previous = group.members.get(previous_id) if previous_id is not None else None
            if previous is not None and previous_id != member_id:
                if not previous.left_static:
                    message = f"instance {instance!r} is still in use by another member"
                    return _fail(ErrorCode.UNRELEASED_INSTANCE_ID, message, member_id)
                # the restarted static member takes its predecessor's place and partitions
                del group.members[previous.member_id]
                group.target[member_id] = group.target.pop(previous.member_id, set())
                previous.member_id = member_id
                previous.left_static = False
                previous.sent = None
                group.members[member_id] = previous
                group.static_members[instance] = member_id
                return previous
        member = group.members.get(member_id)
        if member is not None:
            # a member re-joining from scratch gave up everything it held
            member.assigned.clear()
            member.revoking.clear()
            member.revoke_deadline_ms = None
            member.sent = None
            member.previous_epoch, member.member_epoch = member.member_epoch, JOIN_EPOCH
            return member
        if len(group.members) >= self.config.max_group_size:
            return _fail(ErrorCode.GROUP_MAX_SIZE_REACHED, member_id=member_id)
        member = ConsumerMember(
            member_id=member_id,
            instance_id=instance,
            rack_id=req.rack_id,
            client_id=req.client_id,
            client_host=req.client_host,
            rebalance_timeout_ms=req.rebalance_timeout_ms,
            session_deadline_ms=now_ms + self.config.session_timeout_ms,
        )
        group.members[member_id] = member
        if instance:
            group.static_members[instance] = member_id
        return member

    def _update(self, member: ConsumerMember, req: ConsumerHeartbeat) -> bool:
        """Apply what the heartbeat changed; whether the subscription (or assignor) did."""
        if req.rebalance_timeout_ms > 0:
            member.rebalance_timeout_ms = req.rebalance_timeout_ms
        if req.rack_id is not None:
            member.rack_id = req.rack_id
        if req.client_id:
            member.client_id, member.client_host = req.client_id, req.client_host
        changed = False
        if req.subscribed_topics is not None:
            topics = tuple(sorted(set(req.subscribed_topics)))
            changed = topics != member.subscribed_topics
            member.subscribed_topics = topics
        if req.subscribed_regex is not None:
            regex = req.subscribed_regex or None
            changed = changed or regex != member.subscribed_regex
            member.subscribed_regex = regex
        if req.server_assignor is not None and req.server_assignor != member.server_assignor:
            member.server_assignor = req.server_assignor
            changed = True
        return changed

    def _maybe_assign(self, group: ConsumerGroup, topics: Mapping[str, int], changed: bool) -> None:
        """Recompute the target if the group epoch moved or a subscribed topic changed.

        One heartbeat moves the group epoch at most once, whatever it changed.
        """
        subscriptions = {m.member_id: _subscribed(m, topics) for m in group.members.values()}
        counts = {t: topics[t] for s in subscriptions.values() for t in s if t in topics}
        if counts != group.partition_counts:
            group.partition_counts = counts
            changed = True
        if changed:
            group.group_epoch += 1
        if group.group_epoch <= group.assignment_epoch:
            return
        votes = Counter(m.server_assignor for m in group.members.values() if m.server_assignor)
        group.assignor = votes.most_common(1)[0][0] if votes else DEFAULT_ASSIGNOR
        assign = ASSIGNORS[group.assignor]
        group.target = assign(subscriptions, counts, group.target)
        group.assignment_epoch = group.group_epoch

    def _leave(self, group: ConsumerGroup, req: ConsumerHeartbeat) -> ConsumerHeartbeatResult:
        member = group.members.get(req.member_id)
        if member is None and req.instance_id:
            found = group.static_members.get(req.instance_id)
            member = group.members.get(found) if found is not None else None
        if member is None:
            return _fail(ErrorCode.UNKNOWN_MEMBER_ID, member_id=req.member_id)
        group.remove(member)
        return ConsumerHeartbeatResult(
            ErrorCode.NONE, member_id=req.member_id, member_epoch=LEAVE_EPOCH
        )

    def _leave_for_now(
        self, group: ConsumerGroup, req: ConsumerHeartbeat
    ) -> ConsumerHeartbeatResult:
        member = group.members.get(req.member_id)
        if member is None or not member.instance_id:
            return _fail(ErrorCode.UNKNOWN_MEMBER_ID, member_id=req.member_id)
        member.left_static = True
        return ConsumerHeartbeatResult(
            ErrorCode.NONE, member_id=req.member_id, member_epoch=STATIC_LEAVE_EPOCH
        )

    # -- offsets ----------------------------------------------------------------------------

    def validate_commit(self, group_id: str, member_epoch: int, member_id: str) -> ErrorCode:
        """May a member commit offsets with this epoch (OffsetCommit's generation field)?

        A commit without member id and a negative epoch comes from an admin tool or a
        standalone consumer and is accepted, as Kafka accepts it.
        """
        group = self.groups.get(group_id)
        if not member_id and member_epoch < 0:
            return ErrorCode.NONE
        member = group.members.get(member_id) if group is not None else None
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if member_epoch != member.member_epoch:
            return ErrorCode.STALE_MEMBER_EPOCH
        return ErrorCode.NONE

    def has_members(self, group_id: str) -> bool:
        """Whether the group exists here with members (the classic protocol must keep off)."""
        group = self.groups.get(group_id)
        return group is not None and bool(group.members)

    # -- time -------------------------------------------------------------------------------

    def tick(self, now_ms: int) -> list[tuple[str, str]]:
        """Remove members whose session ended or who did not revoke in time;
        (group id, member id) of each."""
        removed: list[tuple[str, str]] = []
        for group in self.groups.values():
            for member in list(group.members.values()):
                late = member.revoke_deadline_ms is not None and member.revoke_deadline_ms <= now_ms
                if member.session_deadline_ms <= now_ms or late:
                    group.remove(member)
                    removed.append((group.group_id, member.member_id))
        return removed

    def next_deadline_ms(self) -> int | None:
        """When ``tick`` next has something to do (None: nothing is scheduled)."""
        deadlines = [
            dl
            for g in self.groups.values()
            for m in g.members.values()
            for dl in (m.session_deadline_ms, m.revoke_deadline_ms)
            if dl is not None
        ]
        return min(deadlines, default=None)

    # -- persistence (group metadata across restarts) ---------------------------------------

    def snapshot(self, group_id: str) -> ConsumerGroupSnapshot | None:
        """What to record for the group (None: no members, no record)."""
        group = self.groups.get(group_id)
        if group is None or not group.members:
            return None
        return ConsumerGroupSnapshot(
            group_id=group.group_id,
            group_epoch=group.group_epoch,
            assignment_epoch=group.assignment_epoch,
            assignor=group.assignor,
            members=[
                ConsumerMemberSnapshot(
                    member_id=m.member_id,
                    instance_id=m.instance_id,
                    rack_id=m.rack_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    rebalance_timeout_ms=m.rebalance_timeout_ms,
                    subscribed_topics=list(m.subscribed_topics),
                    subscribed_regex=m.subscribed_regex,
                    server_assignor=m.server_assignor,
                    member_epoch=m.member_epoch,
                    previous_epoch=m.previous_epoch,
                    assigned=sorted(m.assigned),
                    revoking=sorted(m.revoking),
                    left_static=m.left_static,
                )
                for m in group.members.values()
            ],
            target={member: sorted(tps) for member, tps in group.target.items()},
            partition_counts=dict(group.partition_counts),
        )

    def restore(self, now_ms: int, snapshot: ConsumerGroupSnapshot) -> None:
        """Bring back a recorded group; sessions and pending revocations restart now."""
        group = ConsumerGroup(
            snapshot.group_id,
            group_epoch=snapshot.group_epoch,
            assignment_epoch=snapshot.assignment_epoch,
            assignor=snapshot.assignor,
            target={member: set(tps) for member, tps in snapshot.target.items()},
            partition_counts=dict(snapshot.partition_counts),
        )
        for m in snapshot.members:
            member = ConsumerMember(
                member_id=m.member_id,
                instance_id=m.instance_id,
                rack_id=m.rack_id,
                client_id=m.client_id,
                client_host=m.client_host,
                rebalance_timeout_ms=m.rebalance_timeout_ms,
                session_deadline_ms=now_ms + self.config.session_timeout_ms,
                subscribed_topics=tuple(m.subscribed_topics),
                subscribed_regex=m.subscribed_regex,
                server_assignor=m.server_assignor,
                member_epoch=m.member_epoch,
                previous_epoch=m.previous_epoch,
                assigned=set(m.assigned),
                revoking=set(m.revoking),
                revoke_deadline_ms=now_ms + m.rebalance_timeout_ms if m.revoking else None,
                left_static=m.left_static,
            )
            group.members[member.member_id] = member
            if member.instance_id:
                group.static_members[member.instance_id] = member.member_id
        self.groups[group.group_id] = group

    # -- admin ------------------------------------------------------------------------------

    def state(self, group_id: str) -> ConsumerGroupState:
        group = self.groups.get(group_id)
        return ConsumerGroupState.DEAD if group is None else group.state

    def delete_group(self, group_id: str) -> ErrorCode:
        """DeleteGroups: only an empty group can go."""
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.GROUP_ID_NOT_FOUND
        if group.members:
            return ErrorCode.NON_EMPTY_GROUP
        del self.groups[group_id]
        return ErrorCode.NONE

    def _forget_empty_groups(self) -> None:
        for group_id in [g for g, group in self.groups.items() if not group.members]:
            del self.groups[group_id]


def _subscribed(member: ConsumerMember, topics: Mapping[str, int]) -> frozenset[str]:
    """The topics a member subscribes to: its names, and every topic its regex matches."""
    found = set(member.subscribed_topics)
    if member.subscribed_regex:
        pattern = re.compile(member.subscribed_regex)
        found.update(t for t in topics if pattern.fullmatch(t))
    return frozenset(found)
