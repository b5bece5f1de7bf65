"""The transaction coordinator (KIP-98), sans-I/O: requests and ``now_ms`` in, effects out.

Kafka's ``TransactionCoordinator`` keeps one ``TxnMetadata`` per transactional id and moves
it through Empty -> Ongoing -> PrepareCommit/PrepareAbort -> CompleteCommit/CompleteAbort.
This class does the same bookkeeping and returns a ``Decision``: the error code to answer,
and the effects the broker must carry out *in order* before answering:

- ``Persist(metadata)``: append this state to the transaction log (durable first, then act);
- ``WriteMarkers(...)``: append a commit/abort control batch to every partition;
- ``CommitOffsets(group, offsets)``: make offsets from TxnOffsetCommit visible.

State is updated in memory when the decision is made; ``Decision.previous`` lets the broker
put it back if carrying out the effects fails (disk full), so memory never runs ahead of
the log. With a single broker the markers are written before EndTxn is answered, so a
client never sees the Prepare states; they exist on disk only, for recovery after a crash
(``recover`` finishes them). Producer ids come from a callable (the durable id allocator).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

import msgspec

from streamsource.kafka.protocol.errors import ErrorCode

MAX_EPOCH = 0x7FFF - 1  # Kafka keeps Short.MaxValue free; the next bump takes a new id
DEFAULT_MAX_TIMEOUT_MS = 15 * 60 * 1000  # Kafka's transaction.max.timeout.ms
DEFAULT_ID_EXPIRATION_MS = 7 * 24 * 60 * 60 * 1000  # transactional.id.expiration.ms
MAX_GROUPS_PER_TXN = 1000
IDLE_SCAN_INTERVAL_MS = 60_000  # how often ids are checked for transactional.id.expiration

TopicPartition = tuple[str, int]


class TxnState(Enum):
    """Kafka's transaction states, named as DescribeTransactions reports them."""

    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"


_PREPARING = (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT)


class PendingOffset(msgspec.Struct, array_like=True, frozen=True):
    """An offset from TxnOffsetCommit, held until the transaction ends."""

    group: str
    topic: str
    partition: int
    offset: int
    leader_epoch: int
    metadata: str | None
    timestamp_ms: int


class TxnMetadata(msgspec.Struct, array_like=True, frozen=True):
    """One transactional id's state: what the transaction log stores, one record per change."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: str  # a TxnState value
    partitions: tuple[tuple[str, int], ...] = ()
    groups: tuple[str, ...] = ()
    pending_offsets: tuple[PendingOffset, ...] = ()
    start_ms: int = -1  # when the transaction became Ongoing
    update_ms: int = -1

    @property
    def txn_state(self) -> TxnState:
        return TxnState(self.state)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(TxnMetadata)


def encode_metadata(metadata: TxnMetadata) -> bytes:
    """The transaction-log payload of ``metadata``."""
    return _encoder.encode(metadata)


def decode_metadata(payload: bytes) -> TxnMetadata:
    """Read back ``encode_metadata``; raises ``msgspec.DecodeError`` for foreign bytes."""
    metadata = _decoder.decode(payload)
    TxnState(metadata.state)  # ValueError for an unknown state
    return metadata


# -- effects -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Persist:
    """Append ``metadata`` to the transaction log (``None`` removes ``transactional_id``)."""

    transactional_id: str
    metadata: TxnMetadata | None


@dataclass(frozen=True, slots=True)
class WriteMarkers:
    """Append a COMMIT (or ABORT) control batch for the producer to each partition."""

    producer_id: int
    producer_epoch: int
    commit: bool
    partitions: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True)
class CommitOffsets:
    """Store offsets committed by a transaction, as an OffsetCommit would."""

    group: str
    offsets: tuple[PendingOffset, ...]


Effect = Persist | WriteMarkers | CommitOffsets


@dataclass(slots=True)
class Decision:
    """The answer to one request: error, producer id/epoch (InitProducerId) and effects."""

    error: ErrorCode
    effects: list[Effect] = field(default_factory=list)
    producer_id: int = -1
    producer_epoch: int = -1
    transactional_id: str = ""
    previous: TxnMetadata | None = None  # the state before, to restore if effects fail

    @property
    def ok(self) -> bool:
        return self.error is ErrorCode.NONE


def _refuse(error: ErrorCode) -> Decision:
    return Decision(error)


class TransactionCoordinator:
    """Every transactional id's state; see the module docstring."""

    def __init__(
        self,
        *,
        max_timeout_ms: int = DEFAULT_MAX_TIMEOUT_MS,
        id_expiration_ms: int = DEFAULT_ID_EXPIRATION_MS,
        max_transactional_ids: int = 100_000,
    ) -> None:
        self._txns: dict[str, TxnMetadata] = {}
        self._by_producer: dict[int, str] = {}
        # ids by state, so the timer does not walk every id each tick
        self._ongoing: set[str] = set()
        self._preparing: set[str] = set()
        self._next_idle_scan = 0
        self._max_timeout_ms = max_timeout_ms
        self._id_expiration_ms = id_expiration_ms
        self._max_ids = max_transactional_ids

    # -- loading and inspection ----------------------------------------------------------

    def load(self, records: Iterable[TxnMetadata]) -> None:
        """Rebuild from the transaction log (latest record per id wins)."""
        for metadata in records:
            self._set(metadata)

    def get(self, transactional_id: str) -> TxnMetadata | None:
        return self._txns.get(transactional_id)

    def all(self) -> list[TxnMetadata]:
        return list(self._txns.values())

    def restore(self, decision: Decision) -> None:
        """Undo ``decision``'s state change (its effects could not be carried out)."""
        if decision.previous is not None:
            self._set(decision.previous)
        elif decision.transactional_id in self._txns:
            self._remove(decision.transactional_id)

    def ongoing_for(self, producer_id: int, producer_epoch: int, tp: TopicPartition) -> ErrorCode:
        """May this producer append a transactional batch to ``tp`` now? (Produce's check.)"""
        txn_id = self._by_producer.get(producer_id)
        metadata = self._txns.get(txn_id) if txn_id is not None else None
        if metadata is None:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        if producer_epoch != metadata.producer_epoch:
            return ErrorCode.INVALID_PRODUCER_EPOCH
        if metadata.txn_state is not TxnState.ONGOING or tp not in metadata.partitions:
            return ErrorCode.INVALID_TXN_STATE
        return ErrorCode.NONE

    def pending_offset(self, group: str, tp: TopicPartition) -> bool:
        """Whether an open transaction holds an uncommitted offset for ``group``/``tp``."""
        for metadata in self._txns.values():
            if group in metadata.groups:
                for p in metadata.pending_offsets:
                    if p.group == group and (p.topic, p.partition) == tp:
                        return True
        return False

    # -- requests ------------------------------------------------------------------------

    def init_producer_id(
        self,
        transactional_id: str,
        timeout_ms: int,
        now_ms: int,
        new_producer_id: Callable[[], int],
        *,
        expected_id: int = -1,
        expected_epoch: int = -1,
    ) -> Decision:
        """InitProducerId with a transactional id: the id with a bumped epoch.

        An Ongoing transaction of the previous incarnation is aborted first (its markers
        carry the new epoch, fencing the zombie).
        """
        if not 0 < timeout_ms <= self._max_timeout_ms:
            return _refuse(ErrorCode.INVALID_TRANSACTION_TIMEOUT)
        current = self._txns.get(transactional_id)
        effects: list[Effect] = []
        if current is None:
            if len(self._txns) >= self._max_ids:
                evicted = self._evict_one()
                if evicted is None:
                    return _refuse(ErrorCode.COORDINATOR_NOT_AVAILABLE)
                effects.append(Persist(evicted, None))
            pid, epoch = new_producer_id(), 0
        else:
            if current.txn_state in _PREPARING:
                return _refuse(ErrorCode.CONCURRENT_TRANSACTIONS)
            if expected_id >= 0 and (expected_id, expected_epoch) != (
                current.producer_id,
                current.producer_epoch,
            ):
                return _refuse(ErrorCode.PRODUCER_FENCED)
            pid, epoch = current.producer_id, current.producer_epoch + 1
            if current.txn_state is TxnState.ONGOING:
                # the abort markers carry the old id (its data's) with an epoch above the
                # zombie's; Short.MaxValue, kept free for this, when the epochs run out
                fence = min(epoch, MAX_EPOCH + 1)
                effects += self._end_effects(current, pid, fence, commit=False, now_ms=now_ms)
            if epoch > MAX_EPOCH:
                pid, epoch = new_producer_id(), 0
        metadata = TxnMetadata(
            transactional_id, pid, epoch, timeout_ms, TxnState.EMPTY.value, update_ms=now_ms
        )
        effects.append(Persist(transactional_id, metadata))
        decision = self._change(transactional_id, metadata, effects)
        decision.producer_id, decision.producer_epoch = pid, epoch
        return decision

    def add_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[TopicPartition],
        now_ms: int,
    ) -> Decision:
        """AddPartitionsToTxn: the partitions join the (now Ongoing) transaction."""
        current, error = self._check(transactional_id, producer_id, producer_epoch)
        if current is None:
            return _refuse(error)
        wanted = tuple(dict.fromkeys(partitions))
        known = set(current.partitions)
        if current.txn_state is TxnState.ONGOING and known.issuperset(wanted):
            return Decision(ErrorCode.NONE)  # a retry: nothing new
        added = current.partitions + tuple(tp for tp in wanted if tp not in known)
        return self._begin(current, now_ms, partitions=added)

    def add_offsets(
        self, transactional_id: str, producer_id: int, producer_epoch: int, group: str, now_ms: int
    ) -> Decision:
        """AddOffsetsToTxn: the group's offsets may be committed by this transaction."""
        current, error = self._check(transactional_id, producer_id, producer_epoch)
        if current is None:
            return _refuse(error)
        if current.txn_state is TxnState.ONGOING and group in current.groups:
            return Decision(ErrorCode.NONE)
        if len(current.groups) >= MAX_GROUPS_PER_TXN:
            return _refuse(ErrorCode.INVALID_TXN_STATE)
        groups = current.groups if group in current.groups else (*current.groups, group)
        if current.txn_state is not TxnState.ONGOING:
            groups = (group,)
        return self._begin(current, now_ms, groups=groups)

    def txn_offset_commit(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        group: str,
        offsets: Iterable[PendingOffset],
        now_ms: int,
    ) -> Decision:
        """TxnOffsetCommit: hold the offsets until the transaction commits (or drop them)."""
        current, error = self._check(transactional_id, producer_id, producer_epoch)
        if current is None:
            return _refuse(error)
        if current.txn_state is not TxnState.ONGOING or group not in current.groups:
            return _refuse(ErrorCode.INVALID_TXN_STATE)
        merged = {(p.group, p.topic, p.partition): p for p in current.pending_offsets}
        for p in offsets:
            merged[(group, p.topic, p.partition)] = p
        metadata = msgspec.structs.replace(
            current, pending_offsets=tuple(merged.values()), update_ms=now_ms
        )
        return self._change(transactional_id, metadata, [Persist(transactional_id, metadata)])

    def end_txn(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        now_ms: int,
    ) -> Decision:
        """EndTxn: write the markers (and commit the offsets), then Complete."""
        current, error = self._check(transactional_id, producer_id, producer_epoch)
        if current is None:
            return _refuse(error)
        state = current.txn_state
        if state is TxnState.ONGOING:
            effects = self._end_effects(current, producer_id, producer_epoch, commit, now_ms)
            return self._change(transactional_id, self._completed(current, commit, now_ms), effects)
        if state is (TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT):
            return Decision(ErrorCode.NONE)  # a retry of the request that ended it
        return _refuse(ErrorCode.INVALID_TXN_STATE)

    # -- time and recovery ---------------------------------------------------------------

    def expire(self, now_ms: int) -> list[Decision]:
        """Abort transactions open longer than their timeout, bumping the epoch (fencing the
        producer, as Kafka does); forget ids idle past ``transactional.id.expiration.ms``."""
        decisions: list[Decision] = []
        for txn_id in list(self._ongoing):
            metadata = self._txns[txn_id]
            if now_ms - metadata.start_ms > metadata.timeout_ms:
                pid, epoch = metadata.producer_id, metadata.producer_epoch + 1
                if epoch > MAX_EPOCH:
                    epoch = metadata.producer_epoch  # cannot bump further: abort in place
                effects = self._end_effects(metadata, pid, epoch, commit=False, now_ms=now_ms)
                done = msgspec.structs.replace(
                    self._completed(metadata, False, now_ms), producer_epoch=epoch
                )
                decisions.append(self._change(metadata.transactional_id, done, effects))
        if now_ms < self._next_idle_scan:
            return decisions
        self._next_idle_scan = now_ms + IDLE_SCAN_INTERVAL_MS
        for metadata in list(self._txns.values()):
            txn_id = metadata.transactional_id
            if (
                txn_id not in self._ongoing
                and txn_id not in self._preparing
                and now_ms - metadata.update_ms > self._id_expiration_ms
            ):
                self._remove(txn_id)
                decisions.append(
                    Decision(
                        ErrorCode.NONE,
                        [Persist(txn_id, None)],
                        transactional_id=txn_id,
                        previous=metadata,
                    )
                )
        return decisions

    def next_deadline_ms(self) -> int | None:
        """When ``expire`` next has work: the earliest timeout of an open transaction, or,
        while any id is idle, the next scan for expired ids; None: nothing can expire."""
        deadlines = [self._txns[t].start_ms + self._txns[t].timeout_ms + 1 for t in self._ongoing]
        if len(self._txns) > len(self._ongoing) + len(self._preparing):
            deadlines.append(self._next_idle_scan)
        return min(deadlines, default=None)

    @property
    def unfinished(self) -> bool:
        """Whether a transaction waits in PrepareCommit/PrepareAbort for ``recover``."""
        return bool(self._preparing)

    def recover(self, now_ms: int) -> list[Decision]:
        """Finish what a crash interrupted: markers of every PrepareCommit/PrepareAbort."""
        decisions: list[Decision] = []
        for txn_id in list(self._preparing):
            metadata = self._txns[txn_id]
            if metadata.txn_state in _PREPARING:
                commit = metadata.txn_state is TxnState.PREPARE_COMMIT
                effects: list[Effect] = [
                    WriteMarkers(
                        metadata.producer_id, metadata.producer_epoch, commit, metadata.partitions
                    )
                ]
                if commit:
                    effects += _offset_effects(metadata)
                done = self._completed(metadata, commit, now_ms)
                effects.append(Persist(metadata.transactional_id, done))
                decisions.append(self._change(metadata.transactional_id, done, effects))
        return decisions

    # -- internals -----------------------------------------------------------------------

    def _check(
        self, transactional_id: str, producer_id: int, producer_epoch: int
    ) -> tuple[TxnMetadata | None, ErrorCode]:
        current = self._txns.get(transactional_id)
        if current is None or current.producer_id != producer_id:
            return None, ErrorCode.INVALID_PRODUCER_ID_MAPPING
        if producer_epoch != current.producer_epoch:
            return None, ErrorCode.PRODUCER_FENCED
        if current.txn_state in _PREPARING:
            return None, ErrorCode.CONCURRENT_TRANSACTIONS
        return current, ErrorCode.NONE

    def _begin(
        self,
        current: TxnMetadata,
        now_ms: int,
        *,
        partitions: tuple[TopicPartition, ...] | None = None,
        groups: tuple[str, ...] | None = None,
    ) -> Decision:
        """Move to (or stay in) Ongoing with more partitions or groups."""
        fresh = current.txn_state is not TxnState.ONGOING
        metadata = msgspec.structs.replace(
            current,
            state=TxnState.ONGOING.value,
            partitions=partitions
            if partitions is not None
            else ()
            if fresh
            else current.partitions,
            groups=groups if groups is not None else () if fresh else current.groups,
            pending_offsets=() if fresh else current.pending_offsets,
            start_ms=now_ms if fresh else current.start_ms,
            update_ms=now_ms,
        )
        txn_id = current.transactional_id
        return self._change(txn_id, metadata, [Persist(txn_id, metadata)])

    def _end_effects(
        self, current: TxnMetadata, pid: int, epoch: int, commit: bool, now_ms: int
    ) -> list[Effect]:
        """Persist Prepare*, write the markers, apply the offsets, persist Complete*."""
        txn_id = current.transactional_id
        prepare = msgspec.structs.replace(
            current,
            producer_id=pid,
            producer_epoch=epoch,
            state=(TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT).value,
            update_ms=now_ms,
        )
        effects: list[Effect] = [Persist(txn_id, prepare)]
        if current.partitions:
            effects.append(WriteMarkers(pid, epoch, commit, current.partitions))
        if commit:
            effects += _offset_effects(current)
        done = self._completed(prepare, commit, now_ms)
        effects.append(Persist(txn_id, done))
        return effects

    @staticmethod
    def _completed(metadata: TxnMetadata, commit: bool, now_ms: int) -> TxnMetadata:
        return msgspec.structs.replace(
            metadata,
            state=(TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT).value,
            partitions=(),
            groups=(),
            pending_offsets=(),
            update_ms=now_ms,
        )

    def _change(self, txn_id: str, metadata: TxnMetadata, effects: list[Effect]) -> Decision:
        previous = self._txns.get(txn_id)
        self._set(metadata)
        return Decision(ErrorCode.NONE, effects, transactional_id=txn_id, previous=previous)

    def _set(self, metadata: TxnMetadata) -> None:
        txn_id = metadata.transactional_id
        old = self._txns.get(txn_id)
        if old is not None and self._by_producer.get(old.producer_id) == txn_id:
            del self._by_producer[old.producer_id]
        self._txns[txn_id] = metadata
        self._by_producer[metadata.producer_id] = txn_id
        state = metadata.txn_state
        (self._ongoing.add if state is TxnState.ONGOING else self._ongoing.discard)(txn_id)
        (self._preparing.add if state in _PREPARING else self._preparing.discard)(txn_id)

    def _remove(self, txn_id: str) -> None:
        old = self._txns.pop(txn_id, None)
        if old is not None and self._by_producer.get(old.producer_id) == txn_id:
            del self._by_producer[old.producer_id]
        self._ongoing.discard(txn_id)
        self._preparing.discard(txn_id)

    def _evict_one(self) -> str | None:
        """Make room for a new id: forget the least recently used id with no open work."""
        idle = [
            m
            for m in self._txns.values()
            if m.transactional_id not in self._ongoing and m.transactional_id not in self._preparing
        ]
        if not idle:
            return None
        txn_id = min(idle, key=lambda m: m.update_ms).transactional_id
        self._remove(txn_id)
        return txn_id


def _offset_effects(metadata: TxnMetadata) -> list[Effect]:
    by_group: dict[str, list[PendingOffset]] = {}
    for p in metadata.pending_offsets:
        by_group.setdefault(p.group, []).append(p)
    return [CommitOffsets(group, tuple(offsets)) for group, offsets in by_group.items()]


def fenced_error(error: ErrorCode, api_version: int, first_version_with_fenced: int) -> ErrorCode:
    """PRODUCER_FENCED (KIP-588) for clients that know it, INVALID_PRODUCER_EPOCH before."""
    if error is ErrorCode.PRODUCER_FENCED and api_version < first_version_with_fenced:
        return ErrorCode.INVALID_PRODUCER_EPOCH
    return error
