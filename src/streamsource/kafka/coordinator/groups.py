"""The classic consumer-group coordinator (JoinGroup/SyncGroup/Heartbeat/LeaveGroup), sans-I/O.

Every call takes ``now_ms``; nothing here reads a clock, sleeps or touches a socket. Join and
sync requests may have to wait for other members: they are parked under the caller's
``token`` and answered later by the call (join, sync, leave, ``tick``) that completes them,
as ``Reply(token, result)`` values. The broker calls ``tick`` at ``next_deadline_ms()`` so
that session timeouts, rebalance timeouts and the delayed initial rebalance fire.

The behaviour follows Kafka's ``GroupCoordinator`` (the rebalance phases themselves are in
``rebalance.py``):

* members learn about a rebalance from REBALANCE_IN_PROGRESS on their heartbeat;
* KIP-394: a JoinGroup v4+ with no member id gets MEMBER_ID_REQUIRED and a fresh id;
* KIP-345: static members (``group_instance_id``) keep their place and assignment across a
  restart, without a rebalance;
* a retried JoinGroup or SyncGroup supersedes the earlier one, which is answered (with
  REBALANCE_IN_PROGRESS) so that no request is ever left without an answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Literal

from streamsource.kafka.coordinator.group import Group, Member, Waiter
from streamsource.kafka.coordinator.group_messages import (
    GroupConfig,
    GroupDescription,
    GroupState,
    JoinRequest,
    JoinResult,
    LeaveResult,
    LeavingMember,
    LeftMember,
    ListedGroup,
    MemberDescription,
    Protocol,
    Reply,
    SyncRequest,
    SyncResult,
)
from streamsource.kafka.coordinator.group_snapshots import (
    ClassicGroupSnapshot,
    ClassicMemberSnapshot,
)
from streamsource.kafka.coordinator.rebalance import (
    COMPLETING,
    EMPTY,
    PREPARING,
    STABLE,
    deadlines,
    join_result,
    maybe_complete_join,
    member_departed,
    member_error,
    prepare_rebalance,
    remove_member,
    sync_result,
    tick_group,
)
from streamsource.kafka.protocol.errors import ErrorCode


def _new_member_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


class GroupCoordinator:
    """All consumer groups of one broker (which is the coordinator of every group)."""

    def __init__(
        self,
        config: GroupConfig | None = None,
        *,
        new_member_id: Callable[[str], str] = _new_member_id,
    ) -> None:
        self.config = config or GroupConfig()
        self._delay = self.config.initial_rebalance_delay_ms
        self._new_member_id = new_member_id
        self._groups: dict[str, Group] = {}

    # -- JoinGroup --------------------------------------------------------------------------

    def join(self, now_ms: int, token: object, req: JoinRequest) -> list[Reply]:
        """Handle a JoinGroup request; its answer is in the returned replies or a later one."""
        replies: list[Reply] = []
        error = self._check_join(req)
        if error is not ErrorCode.NONE:
            return [Reply(token, JoinResult(error, member_id=req.member_id))]
        group = self._groups.get(req.group_id)
        if group is None:
            if req.member_id:
                return [
                    Reply(token, JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id=req.member_id))
                ]
            created = self._create_group(req.group_id)
            if created is None:
                return [Reply(token, JoinResult(ErrorCode.COORDINATOR_NOT_AVAILABLE))]
            group = created
        names = [p.name for p in req.protocols]
        if not group.supports_protocols(req.protocol_type, names, req.member_id):
            result = JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id=req.member_id)
            return [Reply(token, result)]
        if not req.member_id:
            self._join_unknown_member(now_ms, token, group, req, replies)
        else:
            self._join_known_member(now_ms, token, group, req, replies)
        return replies

    def _check_join(self, req: JoinRequest) -> ErrorCode:
        if not req.group_id:
            return ErrorCode.INVALID_GROUP_ID
        cfg = self.config
        if not cfg.min_session_timeout_ms <= req.session_timeout_ms <= cfg.max_session_timeout_ms:
            return ErrorCode.INVALID_SESSION_TIMEOUT
        return ErrorCode.NONE

    def _create_group(self, group_id: str) -> Group | None:
        if len(self._groups) >= self.config.max_groups:
            # make room by forgetting groups that hold nothing: no members, no offsets
            idle = [
                g.group_id
                for g in self._groups.values()
                if g.state is EMPTY and not g.has_offsets and not g.pending_members
            ]
            for gid in idle:
                del self._groups[gid]
            if len(self._groups) >= self.config.max_groups:
                return None
        group = self._groups[group_id] = Group(group_id)
        return group

    def _join_unknown_member(
        self, now_ms: int, token: object, group: Group, req: JoinRequest, replies: list[Reply]
    ) -> None:
        instance = req.group_instance_id
        old_id = group.static_members.get(instance) if instance else None
        if old_id is not None and old_id in group.members:
            assert instance is not None
            new_id = self._new_member_id(instance)
            self._replace_static_member(now_ms, token, group, old_id, new_id, req, replies)
            return
        if len(group.members) + len(group.pending_members) >= self.config.max_group_size:
            replies.append(Reply(token, JoinResult(ErrorCode.GROUP_MAX_SIZE_REACHED)))
            return
        if instance:
            member_id = self._new_member_id(instance)
            self._add_member_and_rebalance(now_ms, token, group, member_id, req, replies)
        elif req.require_known_member_id:
            member_id = self._new_member_id(req.client_id or "member")
            group.pending_members[member_id] = now_ms + req.session_timeout_ms
            result = JoinResult(ErrorCode.MEMBER_ID_REQUIRED, member_id=member_id)
            replies.append(Reply(token, result))
        else:
            member_id = self._new_member_id(req.client_id or "member")
            self._add_member_and_rebalance(now_ms, token, group, member_id, req, replies)

    def _join_known_member(
        self, now_ms: int, token: object, group: Group, req: JoinRequest, replies: list[Reply]
    ) -> None:
        member_id = req.member_id
        if member_id in group.pending_members:
            del group.pending_members[member_id]
            self._add_member_and_rebalance(now_ms, token, group, member_id, req, replies)
            return
        error = member_error(group, member_id, req.group_instance_id)
        if error != ErrorCode.NONE:
            replies.append(Reply(token, JoinResult(error, member_id=member_id)))
            return
        member = group.members[member_id]
        unchanged = member.protocols == req.protocols
        if group.state is PREPARING:
            self._update_member(now_ms, token, member, req, replies)
            maybe_complete_join(group, now_ms, replies)
        elif (group.state is COMPLETING and unchanged) or (
            group.state is STABLE and unchanged and member_id != group.leader_id
        ):
            # a retried join, or a follower re-joining with nothing new: no rebalance needed
            member.session_deadline_ms = now_ms + member.session_timeout_ms
            replies.append(Reply(token, join_result(group, member)))
        else:
            # the leader re-joining, or changed metadata (e.g. a new subscription)
            self._update_member(now_ms, token, member, req, replies)
            prepare_rebalance(group, now_ms, self._delay, replies)
            maybe_complete_join(group, now_ms, replies)

    def _add_member_and_rebalance(
        self,
        now_ms: int,
        token: object,
        group: Group,
        member_id: str,
        req: JoinRequest,
        replies: list[Reply],
    ) -> None:
        if not group.members:
            group.protocol_type = req.protocol_type
        group.members[member_id] = Member(
            member_id=member_id,
            group_instance_id=req.group_instance_id or None,
            client_id=req.client_id,
            client_host=req.client_host,
            protocol_type=req.protocol_type,
            protocols=list(req.protocols),
            session_timeout_ms=req.session_timeout_ms,
            rebalance_timeout_ms=req.rebalance_timeout_ms,
            session_deadline_ms=now_ms + req.session_timeout_ms,
            join_waiter=Waiter(token),
        )
        if req.group_instance_id:
            group.static_members[req.group_instance_id] = member_id
        if group.leader_id is None:
            group.leader_id = member_id
        if group.state is PREPARING:
            group.joined_during_delay = True
        else:
            prepare_rebalance(group, now_ms, self._delay, replies)
        maybe_complete_join(group, now_ms, replies)

    def _replace_static_member(
        self,
        now_ms: int,
        token: object,
        group: Group,
        old_id: str,
        new_id: str,
        req: JoinRequest,
        replies: list[Reply],
    ) -> None:
        """A static member restarted: it takes over its old identity under a new member id."""
        old = group.members.pop(old_id)
        fenced = ErrorCode.FENCED_INSTANCE_ID
        if old.join_waiter is not None:
            replies.append(Reply(old.join_waiter.token, JoinResult(fenced, member_id=old_id)))
        if old.sync_waiter is not None:
            replies.append(Reply(old.sync_waiter.token, SyncResult(fenced)))
        previous_leader = group.leader_id or ""
        old.member_id = new_id
        old.join_waiter = old.sync_waiter = None
        old.client_id, old.client_host = req.client_id, req.client_host
        old.session_timeout_ms = req.session_timeout_ms
        old.rebalance_timeout_ms = req.rebalance_timeout_ms
        old.session_deadline_ms = now_ms + req.session_timeout_ms
        old.protocols = list(req.protocols)
        group.members[new_id] = old
        assert req.group_instance_id is not None
        group.static_members[req.group_instance_id] = new_id
        if group.leader_id == old_id:
            group.leader_id = new_id
        if group.state is STABLE and group.select_protocol() == group.protocol_name:
            # Kafka's point of static membership: a restart does not trigger a rebalance. The
            # old leader id is returned so that a restarted leader does not compute an
            # assignment the stable group would ignore.
            result = JoinResult(
                ErrorCode.NONE,
                generation_id=group.generation_id,
                protocol_type=group.protocol_type,
                protocol_name=group.protocol_name,
                leader_id=previous_leader,
                member_id=new_id,
            )
            replies.append(Reply(token, result))
            return
        old.join_waiter = Waiter(token)
        if group.state is not PREPARING:
            prepare_rebalance(group, now_ms, self._delay, replies)
        maybe_complete_join(group, now_ms, replies)

    def _update_member(
        self, now_ms: int, token: object, member: Member, req: JoinRequest, replies: list[Reply]
    ) -> None:
        if member.join_waiter is not None:
            # the client gave up on its earlier join; answer it so its connection moves on
            stale = JoinResult(ErrorCode.REBALANCE_IN_PROGRESS, member_id=member.member_id)
            replies.append(Reply(member.join_waiter.token, stale))
        member.protocols = list(req.protocols)
        member.session_timeout_ms = req.session_timeout_ms
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
        member.session_deadline_ms = now_ms + req.session_timeout_ms
        member.join_waiter = Waiter(token)

    # -- SyncGroup --------------------------------------------------------------------------

    def sync(self, now_ms: int, token: object, req: SyncRequest) -> list[Reply]:
        """Handle a SyncGroup request; followers wait until the leader's assignments arrive."""
        group = self._groups.get(req.group_id)
        member = group.members.get(req.member_id) if group is not None else None
        error = ErrorCode.NONE
        if group is None:
            error = ErrorCode.UNKNOWN_MEMBER_ID
        elif (found := member_error(group, req.member_id, req.group_instance_id)) != ErrorCode.NONE:
            error = found
        elif req.generation_id != group.generation_id:
            error = ErrorCode.ILLEGAL_GENERATION
        elif (req.protocol_type is not None and req.protocol_type != group.protocol_type) or (
            req.protocol_name is not None and req.protocol_name != group.protocol_name
        ):
            error = ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        elif group.state is EMPTY:
            error = ErrorCode.UNKNOWN_MEMBER_ID
        elif group.state is PREPARING:
            error = ErrorCode.REBALANCE_IN_PROGRESS
        if error is not ErrorCode.NONE:
            return [Reply(token, SyncResult(error))]
        assert group is not None and member is not None
        member.session_deadline_ms = now_ms + member.session_timeout_ms
        group.pending_sync.discard(member.member_id)
        if not group.pending_sync:
            group.sync_deadline_ms = None
        if group.state is STABLE:
            return [Reply(token, sync_result(group, member))]
        replies: list[Reply] = []
        if member.sync_waiter is not None:
            stale = SyncResult(ErrorCode.REBALANCE_IN_PROGRESS)
            replies.append(Reply(member.sync_waiter.token, stale))
        member.sync_waiter = Waiter(token)
        if member.member_id == group.leader_id:
            for m in group.members.values():
                m.assignment = req.assignments.get(m.member_id, b"")
            group.state = STABLE
            for m in group.members.values():
                if m.sync_waiter is not None:
                    replies.append(Reply(m.sync_waiter.token, sync_result(group, m)))
                    m.sync_waiter = None
                    m.session_deadline_ms = now_ms + m.session_timeout_ms
        return replies

    # -- Heartbeat, LeaveGroup, OffsetCommit checks -----------------------------------------

    def heartbeat(
        self,
        now_ms: int,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None = None,
    ) -> ErrorCode:
        """Handle a Heartbeat; REBALANCE_IN_PROGRESS tells the member to re-join."""
        group = self._groups.get(group_id)
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        error = member_error(group, member_id, group_instance_id)
        if error != ErrorCode.NONE:
            return error
        if generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        member = group.members[member_id]
        member.session_deadline_ms = now_ms + member.session_timeout_ms
        if group.state is PREPARING:
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def leave(self, now_ms: int, group_id: str, members: list[LeavingMember]) -> LeaveResult:
        """Handle a LeaveGroup request: each departure triggers a rebalance."""
        group = self._groups.get(group_id)
        if group is None:
            left = [
                LeftMember(m.member_id, m.group_instance_id, ErrorCode.UNKNOWN_MEMBER_ID)
                for m in members
            ]
            return LeaveResult(ErrorCode.NONE, left, [])
        replies: list[Reply] = []
        results: list[LeftMember] = []
        removed = False
        for leaving in members:
            error, was_member = self._leave_one(group, leaving, replies)
            removed = removed or was_member
            results.append(LeftMember(leaving.member_id, leaving.group_instance_id, error))
        if removed:
            member_departed(group, now_ms, self._delay, replies)
        else:
            maybe_complete_join(group, now_ms, replies)
        return LeaveResult(ErrorCode.NONE, results, replies)

    def _leave_one(
        self, group: Group, leaving: LeavingMember, replies: list[Reply]
    ) -> tuple[ErrorCode, bool]:
        """One departure: its error code, and whether a joined member was removed."""
        member_id = leaving.member_id
        if leaving.group_instance_id:
            current = group.static_members.get(leaving.group_instance_id)
            if current is None:
                return ErrorCode.UNKNOWN_MEMBER_ID, False
            if member_id and member_id != current:
                return ErrorCode.FENCED_INSTANCE_ID, False
            member_id = current
        if member_id in group.pending_members:
            del group.pending_members[member_id]
            return ErrorCode.NONE, False
        member = group.members.get(member_id)
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID, False
        remove_member(group, member, replies)
        return ErrorCode.NONE, True

    def validate_commit(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None = None,
        *,
        now_ms: int | None = None,
    ) -> ErrorCode:
        """May this OffsetCommit be stored? NONE also marks the group as holding offsets.

        Generation -1 with no member id is a standalone (manually assigned) consumer's
        commit, allowed while the group has no members. A group member must commit with
        the current generation; during the sync phase the answer is REBALANCE_IN_PROGRESS.
        """
        group = self._groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                return ErrorCode.ILLEGAL_GENERATION  # a member of a group we no longer know
            created = self._create_group(group_id)
            if created is None:
                return ErrorCode.COORDINATOR_NOT_AVAILABLE
            created.has_offsets = True
            return ErrorCode.NONE
        if generation_id >= 0 or member_id or group_instance_id:
            error = member_error(group, member_id, group_instance_id)
            if error != ErrorCode.NONE:
                return error
            if generation_id != group.generation_id:
                return ErrorCode.ILLEGAL_GENERATION
        elif group.state is not EMPTY:
            return ErrorCode.UNKNOWN_MEMBER_ID  # only members commit for a group with members
        if group.state is COMPLETING:
            return ErrorCode.REBALANCE_IN_PROGRESS
        member = group.members.get(member_id)
        if member is not None and now_ms is not None:
            member.session_deadline_ms = now_ms + member.session_timeout_ms
        group.has_offsets = True
        return ErrorCode.NONE

    # -- time -------------------------------------------------------------------------------

    def tick(self, now_ms: int) -> list[Reply]:
        """Fire every deadline that has passed: expired sessions, ended join phases."""
        replies: list[Reply] = []
        for group in list(self._groups.values()):
            # one expiry can start a phase whose deadline has also passed (a zero timeout)
            for _ in range(4):
                tick_group(group, now_ms, self._delay, replies)
                if min(deadlines(group), default=now_ms + 1) > now_ms:
                    break
        return replies

    def next_deadline_ms(self) -> int | None:
        """When ``tick`` next has something to do (None: nothing is scheduled)."""
        return min((dl for g in self._groups.values() for dl in deadlines(g)), default=None)

    # -- admin ------------------------------------------------------------------------------

    def describe(self, group_id: str) -> GroupDescription:
        """DescribeGroups for one group; an unknown group is reported Dead, as in Kafka."""
        group = self._groups.get(group_id)
        if group is None:
            return GroupDescription(ErrorCode.NONE, group_id, GroupState.DEAD, "", "", [])
        stable = group.state is STABLE
        members = [
            MemberDescription(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                metadata=m.metadata_for(group.protocol_name) if stable else b"",
                assignment=m.assignment if stable else b"",
            )
            for m in group.members.values()
        ]
        return GroupDescription(
            ErrorCode.NONE,
            group_id,
            group.state,
            group.protocol_type or "",
            (group.protocol_name or "") if stable else "",
            members,
        )

    def list_groups(self, states: set[GroupState] | None = None) -> list[ListedGroup]:
        """ListGroups, optionally only groups in ``states`` (ListGroups v4 filter)."""
        return [
            ListedGroup(g.group_id, g.protocol_type or "", g.state)
            for g in self._groups.values()
            if states is None or g.state in states
        ]

    def note_group_with_offsets(self, group_id: str) -> None:
        """Make a group with committed offsets known (Empty), e.g. after a broker restart."""
        group = self._groups.get(group_id)
        if group is None:
            group = self._create_group(group_id)
        if group is not None:
            group.has_offsets = True

    def delete_group(self, group_id: str) -> ErrorCode:
        """DeleteGroups for one group: only an empty group can go (delete its offsets too)."""
        group = self._groups.get(group_id)
        if group is None:
            return ErrorCode.GROUP_ID_NOT_FOUND
        if group.state is not EMPTY or group.members or group.pending_members:
            return ErrorCode.NON_EMPTY_GROUP
        del self._groups[group_id]
        return ErrorCode.NONE

    # -- persistence (group metadata across restarts) ---------------------------------------

    def snapshot(self, group_id: str) -> ClassicGroupSnapshot | Literal["keep"] | None:
        """What to record for the group: a Stable generation, None for a group without
        members (no record), or "keep" while it rebalances (keep the last record)."""
        group = self._groups.get(group_id)
        if group is None or not group.members:
            return None
        if group.state is not STABLE:
            return "keep"
        return ClassicGroupSnapshot(
            group_id=group.group_id,
            generation_id=group.generation_id,
            protocol_type=group.protocol_type,
            protocol_name=group.protocol_name,
            leader_id=group.leader_id,
            members=[
                ClassicMemberSnapshot(
                    member_id=m.member_id,
                    group_instance_id=m.group_instance_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    protocol_type=m.protocol_type,
                    protocols=[(p.name, p.metadata) for p in m.protocols],
                    session_timeout_ms=m.session_timeout_ms,
                    rebalance_timeout_ms=m.rebalance_timeout_ms,
                    assignment=m.assignment,
                )
                for m in group.members.values()
            ],
        )

    def restore(self, now_ms: int, snapshot: ClassicGroupSnapshot) -> None:
        """Bring back a recorded Stable generation; every member's session starts now."""
        group = Group(
            snapshot.group_id,
            state=STABLE,
            generation_id=snapshot.generation_id,
            protocol_type=snapshot.protocol_type,
            protocol_name=snapshot.protocol_name,
            leader_id=snapshot.leader_id,
        )
        for m in snapshot.members:
            group.members[m.member_id] = Member(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                protocol_type=m.protocol_type,
                protocols=[Protocol(name, metadata) for name, metadata in m.protocols],
                session_timeout_ms=m.session_timeout_ms,
                rebalance_timeout_ms=m.rebalance_timeout_ms,
                session_deadline_ms=now_ms + m.session_timeout_ms,
                assignment=m.assignment,
            )
            if m.group_instance_id:
                group.static_members[m.group_instance_id] = m.member_id
        self._groups[group.group_id] = group

    def group_state(self, group_id: str) -> GroupState:
        """The group's current state (Dead when unknown)."""
        group = self._groups.get(group_id)
        return GroupState.DEAD if group is None else group.state

    def generation(self, group_id: str) -> int:
        """The group's current generation id (-1 when unknown)."""
        group = self._groups.get(group_id)
        return -1 if group is None else group.generation_id
