"""Drives the sans-I/O transaction coordinator: carries out its effects, runs its timer.

Every coordinator call runs under one lock, and its effects are carried out in order
before the request is answered: transaction-log appends through ``kafka.storage``'s
``KeyedLog`` (its own writer thread; fsynced with each append under ``--fsync always``,
else by the flusher's interval flush, like the partitions' data), markers on the log writer thread (the event loop
never waits for a disk) and offsets through the group runtime's offset store. If an effect fails (disk full), the coordinator
is set back to the last state that reached the log and the request gets the storage
error; a Prepare state left on the log is finished by the timer (``recover``), as after a
crash. The timer also aborts transactions past ``transaction.timeout.ms``. It sleeps until
the coordinator's next deadline (and is woken only when a decision brings that deadline
forward), so a broker without open transactions has no timer running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path

from streamsource.errors import StreamsourceError
from streamsource.kafka.broker.flusher import GroupFlusher
from streamsource.kafka.broker.groups_runtime import GroupRuntime
from streamsource.kafka.broker.log_writer import LogWriter
from streamsource.kafka.broker.partition import Partition
from streamsource.kafka.broker.topics import TopicManager
from streamsource.kafka.coordinator.offsets import OffsetCommit
from streamsource.kafka.coordinator.transactions import (
    CommitOffsets,
    Decision,
    Effect,
    Persist,
    TransactionCoordinator,
    TxnMetadata,
    WriteMarkers,
    decode_metadata,
    encode_metadata,
)
from streamsource.kafka.log.errors import LogError
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.storage import KeyedLog, StorageError

log = logging.getLogger(__name__)

RETRY_INTERVAL_S = 1.0  # how soon markers that could not be written are tried again
LOG_MAGIC = b"SSTXNL01"


class TransactionRuntime:
    """The broker's transaction coordinator, its log and its timer."""

    def __init__(
        self,
        *,
        topics: TopicManager,
        groups: GroupRuntime,
        flusher: GroupFlusher,
        writer: LogWriter,
        fsync_always: bool,
        now_ms: Callable[[], int],
    ) -> None:
        self.coordinator = TransactionCoordinator()
        self._topics = topics
        self._groups = groups
        self._flusher = flusher
        self._writer = writer
        self._fsync_always = fsync_always
        self._now_ms = now_ms
        self._log: KeyedLog | None = None
        self._lock = asyncio.Lock()
        self._wakeup = asyncio.Event()  # the next deadline moved before the timer's
        self._timer_deadline: int | None = None  # what the timer sleeps until (ms)

    def open(self, directory: Path) -> None:
        """Load the transaction log (Prepare states are finished by ``recover``)."""
        self._log = KeyedLog.open(
            directory / "transactions.log", LOG_MAGIC, fsync=self._fsync_always
        )
        records: list[TxnMetadata] = []
        for payload in self._log.items().values():
            try:
                records.append(decode_metadata(payload))
            except (ValueError, TypeError) as exc:  # msgspec.DecodeError is a ValueError
                log.warning("skipping an unreadable transaction log record: %s", exc)
        self.coordinator.load(records)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    async def run(self, decide: Callable[[], Decision]) -> Decision:
        """Make a decision under the lock and carry out its effects; returns it (with the
        error changed to a storage error if the effects failed)."""
        async with self._lock:
            try:
                decision = decide()
            except StorageError as exc:  # a producer id could not be allocated
                return Decision(exc.error_code)
            if decision.ok and decision.effects:
                await self._carry_out(decision)
            self._reschedule()
            return decision

    async def recover(self) -> None:
        """Finish the transactions a crash left in PrepareCommit/PrepareAbort."""
        async with self._lock:
            for decision in self.coordinator.recover(self._now_ms()):
                await self._carry_out(decision)

    async def run_timer(self) -> None:
        """Abort timed-out transactions, finish interrupted ones; runs until cancelled."""
        while True:
            deadline = self._next_deadline_ms()
            self._timer_deadline = deadline
            timeout = None if deadline is None else max(0.0, (deadline - self._now_ms()) / 1000)
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except TimeoutError:
                pass
            else:  # woken early: sleep again, until the new deadline
                self._wakeup.clear()
                continue
            try:
                await self.tick()
            except Exception:
                log.exception("transaction timer failed")

    @property
    def timer_deadline_ms(self) -> int | None:
        """When the timer wakes next (wall-clock ms), None: not until a transaction opens."""
        return self._timer_deadline

    def _next_deadline_ms(self) -> int | None:
        deadline = self.coordinator.next_deadline_ms()
        if self.coordinator.unfinished:
            retry = self._now_ms() + int(RETRY_INTERVAL_S * 1000)
            deadline = retry if deadline is None else min(deadline, retry)
        return deadline

    def _reschedule(self) -> None:
        """Wake the timer if a decision brought the next deadline before its own."""
        deadline = self._next_deadline_ms()
        if deadline is not None and (
            self._timer_deadline is None or deadline < self._timer_deadline
        ):
            self._wakeup.set()

    async def tick(self) -> None:
        await self.recover()
        async with self._lock:
            for decision in self.coordinator.expire(self._now_ms()):
                if decision.effects:
                    log.info("aborting timed-out transaction %r", decision.transactional_id)
                    await self._carry_out(decision)

    # -- effects ---------------------------------------------------------------------------

    async def _carry_out(self, decision: Decision) -> None:
        persisted: TxnMetadata | None = None
        wrote_any = False
        effects = decision.effects
        try:
            i = 0
            while i < len(effects):
                run = self._one_job(effects, i)
                if run:
                    done, error = await self._write_together(run)
                    for record in done:
                        persisted, wrote_any = record.metadata, True
                    if error is not None:
                        raise error
                    i += len(run)
                    continue
                effect = effects[i]
                if isinstance(effect, Persist):
                    await self._persist(effect)
                    persisted = effect.metadata
                    wrote_any = True
                elif isinstance(effect, WriteMarkers):
                    await self._write_markers(effect)
                elif isinstance(effect, CommitOffsets):
                    await self._commit_offsets(effect)
                i += 1
        except (LogError, StorageError, StreamsourceError, OSError) as exc:
            log.error("transaction %r: %s", decision.transactional_id, exc)
            if not wrote_any:
                self.coordinator.restore(decision)
            elif persisted is not None:
                self.coordinator.load([persisted])  # what the log says; recover() goes on
            decision.error = ErrorCode.KAFKA_STORAGE_ERROR

    def _one_job(self, effects: list[Effect], start: int) -> list[Persist | WriteMarkers]:
        """The effects from ``start`` on that run as one log-writer job: log records and
        markers in a row, markers among them (EndTxn: Prepare, markers, and Complete when
        no offsets come between), under ``--fsync interval`` (with ``always`` each
        record's fsync must not hold up the writer, which every produce waits for)."""
        if self._fsync_always:
            return []
        run: list[Persist | WriteMarkers] = []
        for effect in effects[start:]:
            if not isinstance(effect, Persist | WriteMarkers):
                break
            run.append(effect)
        return run if any(isinstance(e, WriteMarkers) for e in run) else []

    async def _write_together(
        self, run: list[Persist | WriteMarkers]
    ) -> tuple[list[Persist], BaseException | None]:
        """``run`` as one job on the log writer thread, in order: one hop of the event loop
        for them all (the log's records go through its own thread, which the writer waits
        for, in the order of the effects). Returns the records written, and the error that
        stopped the job, if one did."""
        log_file = self._log
        if log_file is None:
            raise RuntimeError("the transaction log is not open")
        persisted: list[tuple[Persist, bytes | None]] = []
        written: list[Partition] = []

        def job(now: int) -> BaseException | None:
            try:
                for effect in run:
                    if isinstance(effect, Persist):
                        payload = _payload(effect)
                        log_file.put_from_thread(effect.transactional_id, payload)
                        persisted.append((effect, payload))
                    else:
                        self._append_markers(effect, now, written)
            except (LogError, StorageError, StreamsourceError, OSError) as exc:
                return exc
            return None

        error = await self._writer.run(partial(job, self._now_ms()))
        for effect, payload in persisted:
            await log_file.took(effect.transactional_id, payload)
        if persisted:
            self._flusher.written(log_file)
        for partition in written:
            partition.wake_waiters()
        self._flusher.appended(written)
        return [effect for effect, _ in persisted], error

    async def _persist(self, effect: Persist) -> None:
        if self._log is None:
            raise RuntimeError("the transaction log is not open")
        await self._log.put(effect.transactional_id, _payload(effect))
        if not self._fsync_always:
            self._flusher.written(self._log)  # on disk with the data, within the interval

    async def _write_markers(self, effect: WriteMarkers) -> None:
        written = await self._writer.run(partial(self._append_markers, effect, self._now_ms()))
        for partition in written:
            partition.wake_waiters()
        self._flusher.appended(written)
        if written and self._fsync_always:
            await self._flusher.flush(written)

    async def write_requested_markers(
        self,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        partitions: list[Partition],
        stale: Callable[[Partition], bool],
    ) -> dict[tuple[str, int], ErrorCode]:
        """WriteTxnMarkers: a marker in each partition unless ``stale`` (run on the log
        writer thread, with the producer state it reads) says a newer epoch owns it there;
        the error of each partition, answered once the markers are as durable as a
        produce (fsynced with ``--fsync always``)."""

        def append(now: int) -> tuple[dict[tuple[str, int], ErrorCode], list[Partition]]:
            errors: dict[tuple[str, int], ErrorCode] = {}
            written: list[Partition] = []
            for partition in partitions:
                key = (partition.topic, partition.index)
                if partition.closed:
                    errors[key] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                elif stale(partition):
                    errors[key] = ErrorCode.INVALID_PRODUCER_EPOCH
                else:
                    try:
                        partition.append_marker(
                            producer_id, producer_epoch, commit=commit, now_ms=now
                        )
                    except LogError as exc:
                        errors[key] = exc.error_code
                        continue
                    errors[key] = ErrorCode.NONE
                    written.append(partition)
            return errors, written

        errors, written = await self._writer.run(partial(append, self._now_ms()))
        for partition in written:
            partition.wake_waiters()
        self._flusher.appended(written)
        if written and self._fsync_always:
            try:
                await self._flusher.flush(written)
            except LogError as exc:
                for partition in written:
                    errors[(partition.topic, partition.index)] = exc.error_code
        return errors

    def _append_markers(
        self, effect: WriteMarkers, now: int, written: list[Partition] | None = None
    ) -> list[Partition]:
        """On the log writer thread, after every produce queued before; the partitions
        written to are added to ``written`` as they are (a failure may stop the loop)."""
        if written is None:
            written = []
        for topic, index in effect.partitions:
            partition = self._topics.partition(topic, index)
            if partition is None or partition.closed:
                continue  # deleted with its data: nothing left to mark
            partition.append_marker(
                effect.producer_id, effect.producer_epoch, commit=effect.commit, now_ms=now
            )
            written.append(partition)
        return written

    async def _commit_offsets(self, effect: CommitOffsets) -> None:
        entries = [
            OffsetCommit(p.topic, p.partition, p.offset, p.leader_epoch, p.metadata, p.timestamp_ms)
            for p in effect.offsets
        ]
        self._groups.coordinator.note_group_with_offsets(effect.group)
        await self._groups.offsets.commit(effect.group, entries)


def _payload(effect: Persist) -> bytes | None:
    return encode_metadata(effect.metadata) if effect.metadata is not None else None
