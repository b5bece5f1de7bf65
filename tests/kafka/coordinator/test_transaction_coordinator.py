"""The transaction coordinator without sockets or sleeps: requests and ``now_ms`` in,
error codes and effects (log records, markers, offsets) out."""

from __future__ import annotations

from itertools import count

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from streamsource.kafka.coordinator.transactions import (
    MAX_EPOCH,
    CommitOffsets,
    Decision,
    PendingOffset,
    Persist,
    TransactionCoordinator,
    TxnMetadata,
    TxnState,
    WriteMarkers,
    decode_metadata,
    encode_metadata,
    fenced_error,
)
from streamsource.kafka.protocol.errors import ErrorCode

TP0 = ("orders", 0)
TP1 = ("orders", 1)


def fresh() -> tuple[TransactionCoordinator, count[int]]:
    return TransactionCoordinator(), count(1000)


def init(c: TransactionCoordinator, ids: count[int], txn: str = "t", now: int = 0) -> Decision:
    decision = c.init_producer_id(txn, 60_000, now, ids.__next__)
    assert decision.ok, decision
    return decision


def markers(decision: Decision) -> list[WriteMarkers]:
    return [e for e in decision.effects if isinstance(e, WriteMarkers)]


def persisted_states(decision: Decision) -> list[str]:
    return [e.metadata.state for e in decision.effects if isinstance(e, Persist) and e.metadata]


def test_first_init_allocates_an_id_and_each_init_bumps_the_epoch() -> None:
    c, ids = fresh()
    first = init(c, ids)
    second = init(c, ids)
    assert (first.producer_id, first.producer_epoch) == (1000, 0)
    assert (second.producer_id, second.producer_epoch) == (1000, 1)
    assert persisted_states(second) == ["Empty"]


def test_commit_persists_prepare_then_writes_markers_then_completes() -> None:
    c, ids = fresh()
    d = init(c, ids)
    assert c.add_partitions("t", d.producer_id, 0, [TP0, TP1], 10).ok
    end = c.end_txn("t", d.producer_id, 0, True, 20)
    assert end.ok
    kinds = [type(e).__name__ for e in end.effects]
    assert kinds == ["Persist", "WriteMarkers", "Persist"]
    assert persisted_states(end) == ["PrepareCommit", "CompleteCommit"]
    (m,) = markers(end)
    assert (m.commit, m.partitions, m.producer_epoch) == (True, (TP0, TP1), 0)
    meta = c.get("t")
    assert meta is not None and meta.txn_state is TxnState.COMPLETE_COMMIT
    assert meta.partitions == ()


def test_a_retried_end_txn_is_answered_without_new_markers() -> None:
    c, ids = fresh()
    d = init(c, ids)
    c.add_partitions("t", d.producer_id, 0, [TP0], 10)
    c.end_txn("t", d.producer_id, 0, False, 20)
    again = c.end_txn("t", d.producer_id, 0, False, 30)
    assert again.ok and again.effects == []
    wrong = c.end_txn("t", d.producer_id, 0, True, 30)
    assert wrong.error is ErrorCode.INVALID_TXN_STATE


def test_end_txn_without_a_transaction_is_an_invalid_state() -> None:
    c, ids = fresh()
    d = init(c, ids)
    assert c.end_txn("t", d.producer_id, 0, True, 5).error is ErrorCode.INVALID_TXN_STATE


def test_a_new_incarnation_fences_the_old_one_and_aborts_its_transaction() -> None:
    c, ids = fresh()
    old = init(c, ids)
    c.add_partitions("t", old.producer_id, 0, [TP0], 10)
    new = c.init_producer_id("t", 60_000, 20, ids.__next__)
    assert new.ok and new.producer_epoch == 1
    (abort,) = markers(new)
    assert abort.commit is False and abort.producer_epoch == 1  # the markers fence epoch 0
    assert persisted_states(new) == ["PrepareAbort", "CompleteAbort", "Empty"]
    zombie = c.add_partitions("t", old.producer_id, 0, [TP1], 30)
    assert zombie.error is ErrorCode.PRODUCER_FENCED
    assert c.end_txn("t", old.producer_id, 0, True, 30).error is ErrorCode.PRODUCER_FENCED
    assert c.ongoing_for(old.producer_id, 0, TP0) is ErrorCode.INVALID_PRODUCER_EPOCH


def test_exhausted_epochs_take_a_new_id_and_the_abort_keeps_the_old_one() -> None:
    c, ids = fresh()
    d = init(c, ids)
    meta = c.get("t")
    assert meta is not None
    c.load([msgspec.structs.replace(meta, producer_epoch=MAX_EPOCH)])
    c.add_partitions("t", d.producer_id, MAX_EPOCH, [TP0], 1)
    new = c.init_producer_id("t", 60_000, 2, ids.__next__)
    assert new.ok and (new.producer_id, new.producer_epoch) == (1001, 0)
    (abort,) = markers(new)
    assert (abort.producer_id, abort.producer_epoch) == (d.producer_id, MAX_EPOCH + 1)


def test_producer_fenced_becomes_invalid_producer_epoch_for_old_versions() -> None:
    assert fenced_error(ErrorCode.PRODUCER_FENCED, 1, 2) is ErrorCode.INVALID_PRODUCER_EPOCH
    assert fenced_error(ErrorCode.PRODUCER_FENCED, 2, 2) is ErrorCode.PRODUCER_FENCED
    assert fenced_error(ErrorCode.NONE, 0, 2) is ErrorCode.NONE


def test_init_with_a_stale_expected_epoch_is_fenced() -> None:
    c, ids = fresh()
    d = init(c, ids)
    init(c, ids)  # epoch 1 now
    stale = c.init_producer_id(
        "t", 60_000, 5, ids.__next__, expected_id=d.producer_id, expected_epoch=0
    )
    assert stale.error is ErrorCode.PRODUCER_FENCED


def test_timeouts_outside_the_allowed_range_are_refused() -> None:
    c, ids = fresh()
    for timeout in (0, -1, 15 * 60 * 1000 + 1):
        d = c.init_producer_id("t", timeout, 0, ids.__next__)
        assert d.error is ErrorCode.INVALID_TRANSACTION_TIMEOUT


def test_a_transaction_past_its_timeout_is_aborted_with_a_bumped_epoch() -> None:
    c, ids = fresh()
    d = c.init_producer_id("t", 1000, 0, ids.__next__)
    c.add_partitions("t", d.producer_id, 0, [TP0], 100)
    assert c.next_deadline_ms() == 1101  # when the broker's timer wakes for it
    assert c.expire(1100) == []  # not yet: started at 100, timeout 1000
    (decision,) = c.expire(1101)
    (abort,) = markers(decision)
    assert abort.commit is False and abort.producer_epoch == 1
    assert c.end_txn("t", d.producer_id, 0, True, 1200).error is ErrorCode.PRODUCER_FENCED


def test_offsets_are_committed_only_by_a_committing_transaction() -> None:
    c, ids = fresh()
    d = init(c, ids)
    pid = d.producer_id
    offset = PendingOffset("g", "in", 0, 42, -1, None, 5)
    refused = c.txn_offset_commit("t", pid, 0, "g", [offset], 5)
    assert refused.error is ErrorCode.INVALID_TXN_STATE  # AddOffsetsToTxn first
    assert c.add_offsets("t", pid, 0, "g", 5).ok
    assert c.txn_offset_commit("t", pid, 0, "g", [offset], 6).ok
    assert c.pending_offset("g", ("in", 0))
    committed = c.end_txn("t", pid, 0, True, 7)
    (commit,) = [e for e in committed.effects if isinstance(e, CommitOffsets)]
    assert commit.group == "g" and commit.offsets == (offset,)
    assert not c.pending_offset("g", ("in", 0))
    # aborted: no offsets effect at all
    c.add_offsets("t", pid, 0, "g", 8)
    c.txn_offset_commit("t", pid, 0, "g", [offset], 9)
    aborted = c.end_txn("t", pid, 0, False, 10)
    assert not [e for e in aborted.effects if isinstance(e, CommitOffsets)]


def test_recovery_finishes_prepared_transactions_from_the_log_records() -> None:
    c, ids = fresh()
    d = init(c, ids)
    c.add_partitions("t", d.producer_id, 0, [TP0], 1)
    end = c.end_txn("t", d.producer_id, 0, True, 2)
    prepare = next(e.metadata for e in end.effects if isinstance(e, Persist))
    assert prepare is not None and prepare.state == "PrepareCommit"
    # the broker died after the Prepare record: a new coordinator reads it back
    restarted = TransactionCoordinator()
    restarted.load([decode_metadata(encode_metadata(prepare))])
    (decision,) = restarted.recover(100)
    (m,) = markers(decision)
    assert m.commit and m.partitions == (TP0,)
    assert persisted_states(decision) == ["CompleteCommit"]
    assert restarted.recover(200) == []


def test_restore_undoes_a_decision_whose_effects_failed() -> None:
    c, ids = fresh()
    d = init(c, ids)
    decision = c.add_partitions("t", d.producer_id, 0, [TP0], 1)
    c.restore(decision)
    meta = c.get("t")
    assert meta is not None and meta.txn_state is TxnState.EMPTY


def test_idle_transactional_ids_expire_and_the_table_is_bounded() -> None:
    c = TransactionCoordinator(max_transactional_ids=2, id_expiration_ms=1000)
    ids = count()
    init(c, ids, "a", now=0)
    init(c, ids, "b", now=10)
    third = init(c, ids, "c", now=20)
    assert Persist("a", None) in third.effects  # the least recently used idle id went
    assert c.get("a") is None
    decisions = c.expire(5000)
    assert {d.transactional_id for d in decisions} == {"b", "c"}
    assert all(d.effects == [Persist(d.transactional_id, None)] for d in decisions)
    assert c.all() == []
    assert c.next_deadline_ms() is None  # nothing left to expire: no timer


def test_no_deadline_without_transactional_ids_and_the_earliest_timeout_first() -> None:
    c, ids = fresh()
    assert c.next_deadline_ms() is None
    slow = c.init_producer_id("slow", 5000, 0, ids.__next__)
    fast = c.init_producer_id("fast", 1000, 0, ids.__next__)
    c.expire(0)  # the idle-id scan ran: the next one is a minute away
    assert c.next_deadline_ms() == 60_000
    c.add_partitions("slow", slow.producer_id, 0, [TP0], 100)
    c.add_partitions("fast", fast.producer_id, 0, [TP1], 200)
    assert c.next_deadline_ms() == 1201


class TransactionsMachine(RuleBasedStateMachine):
    """Random producers (incarnations of a few transactional ids) against the coordinator.

    Invariants: a partition's markers come only from the current epoch of an id; every
    transaction ends exactly once (one marker set per Ongoing period); a fenced epoch never
    gets NONE again; and the transaction log (the Persist effects, latest per id) always
    holds exactly the coordinator's state, so a restarted coordinator is the same one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.c = TransactionCoordinator()
        self.ids = count()
        self.now = 0
        self.current: dict[str, tuple[int, int]] = {}  # txn id -> latest (pid, epoch)
        self.fenced: set[tuple[int, int]] = set()
        self.open: dict[str, set[tuple[str, int]]] = {}
        self.log: dict[str, TxnMetadata] = {}

    def _persisted(self, decision: Decision) -> None:
        for effect in decision.effects:
            if isinstance(effect, Persist):
                if effect.metadata is None:
                    self.log.pop(effect.transactional_id, None)
                else:
                    self.log[effect.transactional_id] = effect.metadata

    def _apply(self, decision: Decision) -> None:
        self._persisted(decision)
        for effect in decision.effects:
            if isinstance(effect, WriteMarkers):
                txn = next(t for t, (pid, _) in self.current.items() if pid == effect.producer_id)
                assert set(effect.partitions) == self.open.pop(txn)

    @rule(txn=st.sampled_from("xyz"), step=st.integers(0, 5000))
    def init(self, txn: str, step: int) -> None:
        self.now += step
        old = self.current.get(txn)
        d = self.c.init_producer_id(txn, 3000, self.now, self.ids.__next__)
        assert d.ok
        if old is not None:
            self.fenced.add(old)
            assert (d.producer_id, d.producer_epoch) != old
        self.current[txn] = (d.producer_id, d.producer_epoch)
        self._apply(d)
        self.open.pop(txn, None)

    @rule(txn=st.sampled_from("xyz"), parts=st.sets(st.integers(0, 3), min_size=1))
    def add(self, txn: str, parts: set[int]) -> None:
        if txn not in self.current:
            return
        pid, epoch = self.current[txn]
        d = self.c.add_partitions(txn, pid, epoch, [("t", p) for p in parts], self.now)
        assert d.ok
        self._persisted(d)
        self.open.setdefault(txn, set()).update(("t", p) for p in parts)

    @rule(txn=st.sampled_from("xyz"), commit=st.booleans())
    def end(self, txn: str, commit: bool) -> None:
        if txn not in self.current:
            return
        pid, epoch = self.current[txn]
        d = self.c.end_txn(txn, pid, epoch, commit, self.now)
        if txn in self.open:
            assert d.ok
            self._apply(d)
        else:
            assert d.error in (ErrorCode.NONE, ErrorCode.INVALID_TXN_STATE)
            assert not markers(d)

    @rule(step=st.integers(0, 5000))
    def tick(self, step: int) -> None:
        self.now += step
        deadline = self.c.next_deadline_ms()
        for d in self.c.expire(self.now):
            # the broker's timer sleeps until the deadline: nothing may expire before it
            assert deadline is not None and deadline <= self.now
            self._persisted(d)
            for effect in d.effects:
                if isinstance(effect, WriteMarkers):
                    txn = d.transactional_id
                    assert set(effect.partitions) == self.open.pop(txn)
                    self.fenced.add(self.current[txn])
                    self.current[txn] = (effect.producer_id, effect.producer_epoch)

    @rule(txn=st.sampled_from("xyz"))
    def zombie(self, txn: str) -> None:
        for pid, epoch in self.fenced:
            d = self.c.add_partitions(txn, pid, epoch, [("t", 9)], self.now)
            assert not d.ok

    @invariant()
    def log_holds_the_state(self) -> None:
        assert self.log == {m.transactional_id: m for m in self.c.all()}
        restarted = TransactionCoordinator()
        restarted.load(decode_metadata(encode_metadata(m)) for m in self.log.values())
        by_id = {m.transactional_id: m for m in restarted.all()}
        assert by_id == {m.transactional_id: m for m in self.c.all()}

    @invariant()
    def ongoing_matches(self) -> None:
        for txn, (pid, epoch) in self.current.items():
            meta: TxnMetadata | None = self.c.get(txn)
            assert meta is not None
            assert (meta.producer_id, meta.producer_epoch) == (pid, epoch)
            assert (meta.txn_state is TxnState.ONGOING) == (txn in self.open)


TransactionsMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    # generation time depends on the load of a shared 2-core machine, not on this code
    suppress_health_check=[HealthCheck.too_slow],
)
test_transactions_state_machine = TransactionsMachine.TestCase
