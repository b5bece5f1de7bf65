"""Idempotent producer state: id allocation across restarts, sequence checks, snapshots."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import pytest

from streamsource.errors import CorruptStoreError
from streamsource.kafka.broker.producers import IDS_FILE, ProducerRegistry
from streamsource.kafka.coordinator.producers import (
    INT32_MAX,
    BatchMetadata,
    InitProducerIdResult,
    PartitionProducerState,
    ProducerIdManager,
    SequenceOutcome,
)
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.records.header import CONTROL, BatchHeader
from streamsource.kafka.storage import StorageError

PID = 7


def header(
    base_offset: int,
    count: int,
    pid: int = PID,
    epoch: int = 0,
    base_seq: int = 0,
    attributes: int = 0,
) -> BatchHeader:
    return BatchHeader(
        base_offset=base_offset,
        batch_length=49 + count * 10,
        partition_leader_epoch=0,
        magic=2,
        crc=0,
        attributes=attributes,
        last_offset_delta=count - 1,
        base_timestamp=1_000,
        max_timestamp=1_000 + base_offset,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=base_seq,
        record_count=count,
    )


class Partition:
    """A stand-in for a partition log: appends idempotent batches through the state checks."""

    def __init__(self, state: PartitionProducerState) -> None:
        self.state = state
        self.end = 0
        self.headers: list[BatchHeader] = []

    def produce(
        self, base_seq: int, count: int, pid: int = PID, epoch: int = 0
    ) -> tuple[SequenceOutcome, int]:
        last_seq = (base_seq + count - 1) & INT32_MAX
        verdict = self.state.check(pid, epoch, base_seq, last_seq)
        if verdict.outcome is SequenceOutcome.DUPLICATE:
            assert verdict.duplicate is not None and verdict.error_code == ErrorCode.NONE
            return verdict.outcome, verdict.duplicate.first_offset
        if verdict.outcome is not SequenceOutcome.ACCEPT:
            return verdict.outcome, -1
        base = self.end
        h = header(base, count, pid, epoch, base_seq)
        self.headers.append(h)
        self.state.record(
            pid, epoch, base_seq, h.last_sequence, base, h.last_offset, h.max_timestamp
        )
        self.end = h.next_offset
        return verdict.outcome, base


def init_ids(
    directory: Path, calls: list[tuple[str | None, int, int]], block: int = 1000
) -> list[InitProducerIdResult]:
    """Run InitProducerId calls through the broker's registry on ``directory`` (a restart
    between two calls of this function, since each opens the files afresh)."""

    async def run() -> list[InitProducerIdResult]:
        registry = ProducerRegistry(directory, id_block_size=block)
        registry.open()
        try:
            return [await registry.init_producer_id(*call) for call in calls]
        finally:
            registry.close()

    return asyncio.run(run())


def test_producer_ids_are_unique_and_never_reused_after_restart(tmp_path: Path) -> None:
    first = init_ids(tmp_path, [(None, -1, -1)] * 25, block=10)
    assert all(r.error_code == ErrorCode.NONE and r.producer_epoch == 0 for r in first)
    assert len({r.producer_id for r in first}) == 25
    # a crash: a new registry on the same files never hands out an id seen before
    later = [r.producer_id for r in init_ids(tmp_path, [(None, -1, -1)] * 25, block=10)]
    assert not set(later) & {r.producer_id for r in first}
    assert len(set(later)) == 25


def test_transactional_id_keeps_its_producer_id_and_bumps_epoch(tmp_path: Path) -> None:
    a, b = init_ids(tmp_path, [("tx-1", -1, -1), ("tx-1", -1, -1)])
    assert (b.producer_id, b.producer_epoch) == (a.producer_id, a.producer_epoch + 1)
    (fenced,) = init_ids(tmp_path, [("tx-1", a.producer_id, a.producer_epoch)])
    assert fenced.error_code == ErrorCode.INVALID_PRODUCER_EPOCH
    (c,) = init_ids(tmp_path, [("tx-1", b.producer_id, b.producer_epoch)])
    assert (c.error_code, c.producer_id, c.producer_epoch) == (ErrorCode.NONE, a.producer_id, 2)


def test_an_allocation_is_a_plan_until_applied() -> None:
    ids = ProducerIdManager(block_size=2)
    first = ids.init_producer_id()
    assert first.payload is not None  # a new block must be durable before its first id
    again = ids.init_producer_id()
    assert again.result == first.result  # nothing changed until apply
    ids.apply(first)
    second = ids.init_producer_id()
    assert second.payload is None and second.result.producer_id == first.result.producer_id + 1
    ids.apply(second)
    third = ids.init_producer_id()
    assert third.payload is not None  # the block of 2 is used up
    restarted = ProducerIdManager(third.payload, block_size=2)
    assert ids.apply(third).producer_id < restarted.init_producer_id().result.producer_id


def test_damaged_producer_id_file_is_refused(tmp_path: Path) -> None:
    init_ids(tmp_path, [(None, -1, -1)])
    path = tmp_path / IDS_FILE
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(CorruptStoreError):
        init_ids(tmp_path, [(None, -1, -1)])


def test_in_order_batches_are_accepted() -> None:
    p = Partition(PartitionProducerState())
    assert p.produce(0, 3) == (SequenceOutcome.ACCEPT, 0)
    assert p.produce(3, 2) == (SequenceOutcome.ACCEPT, 3)
    assert p.produce(5, 1) == (SequenceOutcome.ACCEPT, 5)
    # other producers have their own sequences
    assert p.produce(0, 1, pid=8) == (SequenceOutcome.ACCEPT, 6)
    assert p.state.check(-1, -1, -1, -1).outcome is SequenceOutcome.ACCEPT  # not idempotent


def test_duplicates_of_each_of_the_last_five_batches_get_original_offsets() -> None:
    p = Partition(PartitionProducerState())
    offsets = [p.produce(seq, 1)[1] for seq in range(7)]
    for seq in range(2, 7):
        assert p.produce(seq, 1) == (SequenceOutcome.DUPLICATE, offsets[seq])
    # older than the cached five: Kafka can only call it out of order
    assert p.produce(1, 1)[0] is SequenceOutcome.OUT_OF_ORDER_SEQUENCE
    assert p.end == 7  # nothing was appended twice


def test_gap_is_out_of_order() -> None:
    p = Partition(PartitionProducerState())
    p.produce(0, 2)
    verdict = p.state.check(PID, 0, 5, 5)
    assert verdict.outcome is SequenceOutcome.OUT_OF_ORDER_SEQUENCE
    assert verdict.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert p.produce(2, 1) == (SequenceOutcome.ACCEPT, 2)


def test_epoch_bump_restarts_sequences_and_fences_old_epoch() -> None:
    p = Partition(PartitionProducerState())
    p.produce(0, 4)
    assert (
        p.produce(3, 1, epoch=1)[0] is SequenceOutcome.OUT_OF_ORDER_SEQUENCE
    )  # new epoch must start at 0
    assert p.produce(0, 1, epoch=1) == (SequenceOutcome.ACCEPT, 4)
    verdict = p.state.check(PID, 0, 4, 4)
    assert verdict.outcome is SequenceOutcome.INVALID_PRODUCER_EPOCH
    assert verdict.error_code == ErrorCode.INVALID_PRODUCER_EPOCH


def test_sequence_wraps_at_int32_max() -> None:
    p = Partition(PartitionProducerState())
    assert p.produce(INT32_MAX - 1, 2)[0] is SequenceOutcome.ACCEPT  # unknown producer: any start
    assert p.produce(0, 3)[0] is SequenceOutcome.ACCEPT
    assert p.produce(INT32_MAX - 1, 2)[0] is SequenceOutcome.DUPLICATE
    # a batch crossing the wrap has its last sequence past 0
    q = Partition(PartitionProducerState())
    q.produce(INT32_MAX - 1, 4)
    assert q.produce(2, 1)[0] is SequenceOutcome.ACCEPT


def test_restart_via_snapshot_and_observe() -> None:
    p = Partition(PartitionProducerState())
    p.produce(0, 1)
    p.produce(1, 2)
    snap = p.state.to_snapshot(p.end)
    offsets = {seq: p.produce(seq, 1)[1] for seq in (3, 4, 5)}
    p.produce(0, 1, pid=9)

    restored = PartitionProducerState.from_snapshot(snap, log_end_offset=p.end)
    assert restored.snapshot_offset == 3
    for h in p.headers:
        if h.base_offset >= restored.snapshot_offset:
            restored.observe(h)
    r = Partition(restored)
    r.end = p.end
    for seq in (3, 4, 5):
        assert r.produce(seq, 1) == (SequenceOutcome.DUPLICATE, offsets[seq])
    assert r.produce(1, 2) == (SequenceOutcome.DUPLICATE, 1)
    assert r.produce(6, 1) == (SequenceOutcome.ACCEPT, p.end)
    assert r.produce(1, 1, pid=9)[0] is SequenceOutcome.ACCEPT


def test_load_without_usable_snapshot_rebuilds_from_the_whole_log() -> None:
    p = Partition(PartitionProducerState())
    for seq in range(4):
        p.produce(seq, 1)
    snap = p.state.to_snapshot(log_end_offset=4)
    # the log lost its tail in a crash: the snapshot is ahead of it and must not be used
    assert PartitionProducerState.from_snapshot(snap, log_end_offset=2).snapshot_offset == 0
    assert PartitionProducerState.from_snapshot(b"garbage").snapshot_offset == 0
    state = PartitionProducerState.from_snapshot(None)
    assert state.snapshot_offset == 0 and len(state) == 0
    for h in p.headers:
        state.observe(h)
    assert state.check(PID, 0, 3, 3).duplicate == BatchMetadata(3, 3, 3, 3, 1_003)


def test_control_batches_and_non_idempotent_batches_in_observe() -> None:
    state = PartitionProducerState()
    state.observe(header(0, 1, pid=-1, base_seq=-1))
    assert len(state) == 0
    state.observe(header(0, 1, epoch=0, base_seq=0))
    state.observe(header(1, 1, epoch=3, base_seq=-1, attributes=CONTROL))
    entry = state.entry(PID)
    assert entry is not None and entry.epoch == 3 and not entry.batches
    assert state.check(PID, 2, 1, 1).outcome is SequenceOutcome.INVALID_PRODUCER_EPOCH


def test_expiry_and_bounded_number_of_producers() -> None:
    state = PartitionProducerState(max_producers=3)
    for pid in range(5):
        state.record(pid, 0, 0, 0, pid, pid, timestamp=pid * 1000)
    assert len(state) == 3 and state.entry(0) is None and state.entry(4) is not None
    assert state.expire(now_ms=3_500, max_idle_ms=1_000) == 1  # pid 2 last wrote at 2000
    assert state.entry(2) is None and state.entry(3) is not None


def test_failed_block_allocation_hands_out_no_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync

    def io_error(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    async def run() -> list[int]:
        registry = ProducerRegistry(tmp_path, id_block_size=2)
        registry.open()
        given = [(await registry.init_producer_id(None, -1, -1)).producer_id for _ in range(2)]
        monkeypatch.setattr(os, "fsync", io_error)
        with pytest.raises(StorageError) as caught:
            await registry.init_producer_id(None, -1, -1)  # needs a block it cannot record
        assert caught.value.retriable
        monkeypatch.setattr(os, "fsync", real_fsync)
        given += [(await registry.init_producer_id(None, -1, -1)).producer_id for _ in range(3)]
        registry.close()
        return given

    given = asyncio.run(run())
    given += [r.producer_id for r in init_ids(tmp_path, [(None, -1, -1)], block=2)]
    assert len(set(given)) == len(given) == 6
