"""The rebalance phases of one group: start, complete, member departures, deadlines.

Functions over a ``Group`` that append the answers they produce to ``replies``; the
coordinator in ``groups.py`` calls them from its request handlers and from ``tick``.

Kafka's phases: a rebalance starts (PreparingRebalance) when a member joins, leaves, expires
or changes its metadata. The join phase ends when every member has re-joined, or when the
largest rebalance timeout passes; dynamic members that did not re-join are dropped, static
ones keep their place until their session ends. The group then gets a new generation and
waits (CompletingRebalance) for the leader's SyncGroup, which makes it Stable.
"""

from __future__ import annotations

from streamsource.kafka.coordinator.group import Group, Member
from streamsource.kafka.coordinator.group_messages import (
    GroupState,
    JoinResult,
    Reply,
    SyncResult,
)
from streamsource.kafka.protocol.errors import ErrorCode

EMPTY = GroupState.EMPTY
PREPARING = GroupState.PREPARING_REBALANCE
COMPLETING = GroupState.COMPLETING_REBALANCE
STABLE = GroupState.STABLE


def join_result(group: Group, member: Member) -> JoinResult:
    """The member's JoinGroup answer for the current generation."""
    is_leader = member.member_id == group.leader_id
    return JoinResult(
        ErrorCode.NONE,
        generation_id=group.generation_id,
        protocol_type=group.protocol_type,
        protocol_name=group.protocol_name,
        leader_id=group.leader_id or "",
        member_id=member.member_id,
        members=group.join_members() if is_leader else [],
    )


def sync_result(group: Group, member: Member) -> SyncResult:
    """The member's SyncGroup answer: its assignment."""
    return SyncResult(ErrorCode.NONE, group.protocol_type, group.protocol_name, member.assignment)


def member_error(group: Group, member_id: str, group_instance_id: str | None) -> ErrorCode:
    """Kafka's ``validateCurrentMember``: a static id must map to this member id."""
    if group_instance_id:
        current = group.static_members.get(group_instance_id)
        if current is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if current != member_id:
            return ErrorCode.FENCED_INSTANCE_ID
    if member_id not in group.members:
        return ErrorCode.UNKNOWN_MEMBER_ID
    return ErrorCode.NONE


def prepare_rebalance(
    group: Group, now_ms: int, initial_delay_ms: int, replies: list[Reply]
) -> None:
    """Start a join phase (from Empty, Stable or CompletingRebalance)."""
    if group.state is COMPLETING:
        # the assignments being synced are void: their waiters must re-join
        for m in group.members.values():
            m.assignment = b""
            if m.sync_waiter is not None:
                rebalancing = SyncResult(ErrorCode.REBALANCE_IN_PROGRESS)
                replies.append(Reply(m.sync_waiter.token, rebalancing))
                m.sync_waiter = None
                # as in Kafka, an answered request restarts the session clock
                m.session_deadline_ms = now_ms + m.session_timeout_ms
    group.pending_sync.clear()
    group.sync_deadline_ms = None
    timeout = group.rebalance_timeout_ms()
    if group.state is EMPTY and initial_delay_ms > 0:
        group.join_deadline_ms = now_ms + min(initial_delay_ms, timeout)
        group.initial_join_cap_ms = now_ms + timeout
    else:
        group.join_deadline_ms = now_ms + timeout
        group.initial_join_cap_ms = None
    group.joined_during_delay = False
    group.state = PREPARING


def maybe_complete_join(group: Group, now_ms: int, replies: list[Reply]) -> None:
    """End the join phase early once everyone is in (not during the initial delay)."""
    if (
        group.state is PREPARING
        and group.initial_join_cap_ms is None
        and group.all_members_joined()
    ):
        complete_join(group, now_ms, replies)


def complete_join(group: Group, now_ms: int, replies: list[Reply]) -> None:
    """End the join phase: a new generation, a leader, a protocol, and the join answers."""
    # dynamic members that did not re-join are gone; static ones keep their place until
    # their session expires (they may be restarting)
    for m in list(group.members.values()):
        if m.join_waiter is None and m.group_instance_id is None:
            remove_member(group, m, replies)
    joined = [m for m in group.members.values() if m.join_waiter is not None]
    group.initial_join_cap_ms = None
    if group.members and not joined:
        group.join_deadline_ms = now_ms + group.rebalance_timeout_ms()
        return
    group.join_deadline_ms = None
    group.generation_id += 1
    if not group.members:
        group.state = EMPTY
        group.protocol_name = None
        group.leader_id = None
        return
    leader = group.members.get(group.leader_id or "")
    if leader is None or leader.join_waiter is None:
        group.leader_id = joined[0].member_id
    group.protocol_name = group.select_protocol()
    group.state = COMPLETING
    # members that never send SyncGroup are dropped after the rebalance timeout
    group.pending_sync = set(group.members)
    group.sync_deadline_ms = now_ms + group.rebalance_timeout_ms()
    for m in joined:
        assert m.join_waiter is not None
        replies.append(Reply(m.join_waiter.token, join_result(group, m)))
        m.join_waiter = None
        m.session_deadline_ms = now_ms + m.session_timeout_ms


def remove_member(group: Group, member: Member, replies: list[Reply]) -> None:
    """Drop a member; the caller decides what the departure means (``member_departed``)."""
    gone = ErrorCode.UNKNOWN_MEMBER_ID
    if member.join_waiter is not None:
        replies.append(Reply(member.join_waiter.token, JoinResult(gone, member_id="")))
    if member.sync_waiter is not None:
        replies.append(Reply(member.sync_waiter.token, SyncResult(gone)))
    del group.members[member.member_id]
    group.pending_sync.discard(member.member_id)
    instance = member.group_instance_id
    if instance and group.static_members.get(instance) == member.member_id:
        del group.static_members[instance]
    if group.leader_id == member.member_id:
        group.leader_id = next(iter(group.members), None)


def member_departed(group: Group, now_ms: int, initial_delay_ms: int, replies: list[Reply]) -> None:
    """After removals: the others must re-join, or the join phase may now be complete."""
    if group.state in (STABLE, COMPLETING):
        prepare_rebalance(group, now_ms, initial_delay_ms, replies)
    maybe_complete_join(group, now_ms, replies)


def deadlines(group: Group) -> list[int]:
    """Every time at which ``tick_group`` must look at the group."""
    found = list(group.pending_members.values())
    if group.join_deadline_ms is not None:
        found.append(group.join_deadline_ms)
    if group.sync_deadline_ms is not None:
        found.append(group.sync_deadline_ms)
    found.extend(m.session_deadline_ms for m in group.members.values() if not m.awaiting)
    return found


def tick_group(group: Group, now_ms: int, initial_delay_ms: int, replies: list[Reply]) -> None:
    """Fire the group's passed deadlines: sessions, pending joiners, sync and join phases."""
    expired_pending = [mid for mid, dl in group.pending_members.items() if dl <= now_ms]
    for mid in expired_pending:
        del group.pending_members[mid]
    expired = [
        m for m in group.members.values() if not m.awaiting and m.session_deadline_ms <= now_ms
    ]
    for m in expired:
        remove_member(group, m, replies)
    if expired:
        member_departed(group, now_ms, initial_delay_ms, replies)
    elif expired_pending:
        # a joiner that never came back with its id no longer holds up the join phase
        maybe_complete_join(group, now_ms, replies)
    sync_deadline = group.sync_deadline_ms
    if sync_deadline is not None and sync_deadline <= now_ms:
        group.sync_deadline_ms = None
        laggards = [group.members[mid] for mid in group.pending_sync if mid in group.members]
        group.pending_sync.clear()
        for m in laggards:
            remove_member(group, m, replies)
        if laggards:
            member_departed(group, now_ms, initial_delay_ms, replies)
    deadline = group.join_deadline_ms
    if group.state is not PREPARING or deadline is None or deadline > now_ms:
        return
    cap = group.initial_join_cap_ms
    if cap is not None and group.joined_during_delay and now_ms < cap:
        # more members arrived during the initial delay: wait a little longer for others
        group.join_deadline_ms = min(now_ms + initial_delay_ms, cap)
        group.joined_during_delay = False
        return
    complete_join(group, now_ms, replies)
