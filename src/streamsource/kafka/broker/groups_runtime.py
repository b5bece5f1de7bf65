"""Drives the sans-I/O group coordinator from the event loop.

The coordinator parks JoinGroup/SyncGroup requests under a token and answers them later, from
whichever call completes the rebalance. Here each parked request is an ``asyncio.Future``
keyed by its token; every coordinator call's replies resolve the matching futures. A timer
task sleeps until the coordinator's next deadline (session and rebalance timeouts) and calls
``tick``; it is woken early whenever a call may have moved that deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from streamsource.kafka.broker.config import BrokerConfig
from streamsource.kafka.broker.offset_store import OffsetStore
from streamsource.kafka.coordinator.consumer_group import (
    ConsumerHeartbeat,
    ConsumerHeartbeatResult,
)
from streamsource.kafka.coordinator.consumer_groups import (
    ConsumerGroupConfig,
    ConsumerGroupCoordinator,
)
from streamsource.kafka.coordinator.group_messages import (
    GroupConfig,
    GroupState,
    JoinRequest,
    JoinResult,
    LeaveResult,
    LeavingMember,
    Reply,
    SyncRequest,
    SyncResult,
)
from streamsource.kafka.coordinator.group_snapshots import (
    ClassicGroupSnapshot,
    decode_snapshot,
    encode_snapshot,
)
from streamsource.kafka.coordinator.groups import GroupCoordinator
from streamsource.kafka.coordinator.offset_expiry import expired_offsets
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.storage import StorageError

log = logging.getLogger(__name__)

# a coordinator call parking a request under the given token
_Call = Callable[[object], list[Reply]]


class GroupRuntime:
    """The broker's consumer groups: coordinator, committed offsets, delayed replies."""

    def __init__(self, config: BrokerConfig) -> None:
        self.coordinator = GroupCoordinator(
            GroupConfig(
                min_session_timeout_ms=config.group_min_session_timeout_ms,
                max_session_timeout_ms=config.group_max_session_timeout_ms,
                initial_rebalance_delay_ms=config.group_initial_rebalance_delay_ms,
            )
        )
        self.consumer_groups = ConsumerGroupCoordinator(
            ConsumerGroupConfig(
                session_timeout_ms=config.group_consumer_session_timeout_ms,
                heartbeat_interval_ms=config.group_consumer_heartbeat_interval_ms,
            )
        )
        self._offsets: OffsetStore | None = None
        self._persisted: dict[str, bytes] = {}  # group -> its recorded membership
        self._recording: set[asyncio.Task[None]] = set()  # membership writes under way
        self._retention_ms = config.offsets_retention_ms
        # groups seen with members at an expiry check, and when groups seen so became empty
        self._seen_active: set[str] = set()
        self._empty_since: dict[str, int] = {}
        # token -> (future of the parked request, the result type it expects)
        self._pending: dict[
            object, tuple[asyncio.Future[JoinResult | SyncResult], type[JoinResult | SyncResult]]
        ] = {}
        self._wakeup = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------

    def open(self, directory: Path) -> None:
        """Load the committed offsets and the recorded groups (members carry on where they
        were); other groups that have offsets become known (Empty). Blocking: start-up
        runs it in a thread."""
        self._offsets = OffsetStore.open(directory / "offsets.log")
        now = self.now_ms()
        for group_id, data in self._offsets.group_metadata().items():
            snapshot = decode_snapshot(data)
            if isinstance(snapshot, ClassicGroupSnapshot):
                self.coordinator.restore(now, snapshot)
            else:
                self.consumer_groups.restore(now, snapshot)
            self._persisted[group_id] = data
        for group_id in self._offsets.groups():
            self.coordinator.note_group_with_offsets(group_id)

    def release_waiting(self) -> None:
        """Answer every parked JoinGroup/SyncGroup with NOT_COORDINATOR (shutdown), as
        Kafka does: the client looks for the coordinator again and re-joins there."""
        for future, kind in self._pending.values():
            if not future.done():
                future.set_result(kind(ErrorCode.NOT_COORDINATOR))

    def close(self) -> None:
        if self._offsets is not None:
            self._offsets.close()
            self._offsets = None
        for future, _ in self._pending.values():
            if not future.done():
                future.cancel()

    @property
    def offsets(self) -> OffsetStore:
        if self._offsets is None:
            raise RuntimeError("the group runtime is not open")
        return self._offsets

    @staticmethod
    def now_ms() -> int:
        """Coordinator time: the monotonic clock asyncio's loop also reads (deadlines only,
        never persisted), readable from the start-up thread too."""
        return int(time.monotonic() * 1000)

    # -- calls -----------------------------------------------------------------------------

    async def join(self, request: JoinRequest) -> JoinResult:
        if self.consumer_groups.has_members(request.group_id):
            # a consumer-protocol group of that name is live: Kafka refuses the classic join
            return JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id=request.member_id)
        result = await self._delayed(
            JoinResult,
            lambda token: self._persisting(
                request.group_id, self.coordinator.join(self.now_ms(), token, request)
            ),
        )
        assert isinstance(result, JoinResult)
        return result

    async def sync(self, request: SyncRequest) -> SyncResult:
        result = await self._delayed(
            SyncResult,
            lambda token: self._persisting(
                request.group_id, self.coordinator.sync(self.now_ms(), token, request)
            ),
        )
        assert isinstance(result, SyncResult)
        return result

    def heartbeat(
        self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None
    ) -> ErrorCode:
        error = self.coordinator.heartbeat(
            self.now_ms(), group_id, generation_id, member_id, group_instance_id
        )
        self._wakeup.set()
        return error

    def leave(self, group_id: str, members: list[LeavingMember]) -> LeaveResult:
        result = self.coordinator.leave(self.now_ms(), group_id, members)
        self._persist(group_id)
        self._deliver(result.replies)
        self._wakeup.set()
        return result

    def consumer_heartbeat(
        self, request: ConsumerHeartbeat, topics: Mapping[str, int]
    ) -> ConsumerHeartbeatResult:
        if self.coordinator.group_state(request.group_id) not in (
            GroupState.EMPTY,
            GroupState.DEAD,
        ):
            message = f"group {request.group_id!r} is a classic group, not a consumer group"
            return ConsumerHeartbeatResult(ErrorCode.GROUP_ID_NOT_FOUND, error_message=message)
        result = self.consumer_groups.heartbeat(self.now_ms(), request, topics)
        self._persist(request.group_id)
        self._wakeup.set()
        return result

    def validate_commit(
        self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None
    ) -> ErrorCode:
        """May this commit be stored? (STALE_MEMBER_EPOCH from a consumer-protocol group.)"""
        if self.consumer_groups.has_members(group_id):
            error = self.consumer_groups.validate_commit(group_id, generation_id, member_id)
            if error is ErrorCode.NONE:
                self.coordinator.note_group_with_offsets(group_id)
            return error
        return self.coordinator.validate_commit(
            group_id, generation_id, member_id, group_instance_id, now_ms=self.now_ms()
        )

    async def expire_offsets(self, now_ms: int) -> int:
        """Forget expired offsets of empty groups (wall-clock ``now_ms``); how many went.

        A group whose last offsets go is forgotten too (Kafka: it becomes Dead). Raises
        ``StorageError`` if the removal cannot be written (nothing is lost then: the next
        check tries again).
        """
        expired_count = 0
        for group_id in self.offsets.groups():
            has_members = self.consumer_groups.has_members(group_id) or (
                self.coordinator.group_state(group_id) not in (GroupState.EMPTY, GroupState.DEAD)
            )
            if has_members:
                self._seen_active.add(group_id)
                self._empty_since.pop(group_id, None)
            elif group_id in self._seen_active:
                self._seen_active.discard(group_id)
                self._empty_since[group_id] = now_ms
            committed = self.offsets.fetch(group_id)
            expired = expired_offsets(
                committed,
                now_ms,
                self._retention_ms,
                has_members=has_members,
                empty_since_ms=self._empty_since.get(group_id),
            )
            if not expired:
                continue
            await self.offsets.delete_offsets(group_id, expired)
            expired_count += len(expired)
            if len(expired) == len(committed):
                self._empty_since.pop(group_id, None)
                self.coordinator.delete_group(group_id)
                self.consumer_groups.delete_group(group_id)
                log.info("group %s: every committed offset expired, group removed", group_id)
        return expired_count

    async def run_timers(self) -> None:
        """Call ``tick`` at every coordinator deadline, forever (cancelled on stop)."""
        while True:
            deadlines = (
                self.coordinator.next_deadline_ms(),
                self.consumer_groups.next_deadline_ms(),
            )
            deadline = min((d for d in deadlines if d is not None), default=None)
            timeout = None if deadline is None else max(0.0, (deadline - self.now_ms()) / 1000)
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except TimeoutError:
                pass
            self._wakeup.clear()
            try:
                now = self.now_ms()
                self._deliver(self.coordinator.tick(now))
                for group_id, member_id in self.consumer_groups.tick(now):
                    log.info(
                        "group %s: member %s removed (session or revocation timeout)",
                        group_id,
                        member_id,
                    )
                    self._persist(group_id)
                for group_id in list(self._persisted):
                    emptied = self.coordinator.group_state(group_id) in (
                        GroupState.EMPTY,
                        GroupState.DEAD,
                    )
                    if emptied and not self.consumer_groups.has_members(group_id):
                        self._persist(group_id)  # a classic group the tick emptied
            except Exception:
                log.exception("group coordinator tick failed")

    # -- internals -------------------------------------------------------------------------

    def _persisting(self, group_id: str, replies: list[Reply]) -> list[Reply]:
        self._persist(group_id)
        return replies

    def _persist(self, group_id: str) -> None:
        """Record the group's membership if it changed. The write is queued (in order)
        rather than awaited: a lost record only costs the members a re-join after a
        restart, and the answer to this request need not wait for the disk."""
        classic = self.coordinator.snapshot(group_id)
        if classic == "keep":
            return
        snapshot = classic if classic is not None else self.consumer_groups.snapshot(group_id)
        data = encode_snapshot(snapshot) if snapshot is not None else None
        if data == self._persisted.get(group_id):
            return
        if data is None:
            self._persisted.pop(group_id, None)
        else:
            self._persisted[group_id] = data
        task = asyncio.get_running_loop().create_task(self._record(group_id, data))
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)

    async def _record(self, group_id: str, data: bytes | None) -> None:
        try:
            await self.offsets.put_group_metadata(group_id, data)
        except StorageError as exc:
            log.warning("group %s: membership not recorded: %s", group_id, exc)

    async def _delayed(
        self, kind: type[JoinResult | SyncResult], call: _Call
    ) -> JoinResult | SyncResult:
        token = object()
        future: asyncio.Future[JoinResult | SyncResult] = asyncio.get_running_loop().create_future()
        self._pending[token] = (future, kind)
        try:
            self._deliver(call(token))
            self._wakeup.set()
            return await future
        finally:
            self._pending.pop(token, None)

    def _deliver(self, replies: list[Reply]) -> None:
        for reply in replies:
            pending = self._pending.get(reply.token)
            if pending is not None and not pending[0].done():
                pending[0].set_result(reply.result)
