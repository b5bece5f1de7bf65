"""The cleaner's decisions, as pure functions over batches (no files).

A generated log of plain batches and committed or aborted transactions is cleaned the way
the cleaner's worker does it (map the dirty part, clean from the start, more passes when
the map is small); reading the result must give exactly the latest value per key, at its
original offset, with tombstones gone once their delete horizon has passed.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch

from streamsource.kafka.log.cleaner.core import (
    DELETE_HORIZON,
    Cleaner,
    OffsetMap,
    SegmentInfo,
    Transactions,
    cleanable_end,
    map_batch,
    marker_type,
    needs_cleaning,
)
from streamsource.kafka.records import Record, build_batch, check_batch, iter_batch_records
from streamsource.kafka.records.header import parse_header

NOW = 1_700_000_000_000
RETENTION = 60_000
KEYS = [b"a", b"b", b"c", b"d", b"e", None]

Entry = tuple[bytes | None, bytes | None]  # key, value (None: a tombstone)


def _records(entries: Sequence[Entry], ts: int) -> list[Record]:
    return [Record(i, ts + i, key, value) for i, (key, value) in enumerate(entries)]


def _marker(pid: int, offset: int, commit: bool) -> bytes:
    key = struct.pack(">hh", 0, 1 if commit else 0)
    record = Record(0, NOW - 1, key, struct.pack(">hi", 0, 0))
    return build_batch(
        [record], base_offset=offset, producer_id=pid, producer_epoch=0, transactional=True,
        control=True,
    )  # fmt: skip


entries = st.lists(
    st.tuples(st.sampled_from(KEYS), st.one_of(st.none(), st.binary(min_size=1, max_size=3))),
    min_size=1,
    max_size=4,
)
# ("plain", entries) | ("txn", producer id, [entries per batch], commit)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("plain"), entries),
        st.tuples(
            st.just("txn"), st.sampled_from([7, 8]), st.lists(entries, min_size=1, max_size=3),
            st.booleans(),
        ),
    ),
    min_size=1,
    max_size=12,
)  # fmt: skip


def _build_log(plan: list[Any]) -> tuple[list[bytes], dict[int, Entry], set[int]]:
    """The batches, every live record by offset, and the offsets of aborted records."""
    batches: list[bytes] = []
    live: dict[int, Entry] = {}
    aborted: set[int] = set()
    offset = 0
    for step in plan:
        if step[0] == "plain":
            batches.append(
                build_batch(_records(step[1], NOW - 10_000 + offset), base_offset=offset)
            )
            live.update({offset + i: e for i, e in enumerate(step[1])})
            offset += len(step[1])
            continue
        _, pid, txn_batches, commit = step
        for txn_entries in txn_batches:
            batches.append(
                build_batch(
                    _records(txn_entries, NOW - 10_000 + offset), base_offset=offset,
                    producer_id=pid, producer_epoch=0, base_sequence=offset, transactional=True,
                )
            )  # fmt: skip
            for i, e in enumerate(txn_entries):
                (live if commit else {})[offset + i] = e
                if not commit:
                    aborted.add(offset + i)
            offset += len(txn_entries)
        batches.append(_marker(pid, offset, commit))
        offset += 1
    return batches, live, aborted


def _transactions(batches: list[bytes]) -> Transactions:
    txns = Transactions()
    for batch in batches:
        header = parse_header(batch)
        txns.observe(header, marker_type(batch) if header.is_control else None)
    return txns


def _compact(batches: list[bytes], capacity: int, now: int, first_dirty: int = 0) -> list[bytes]:
    """Passes as the worker runs them, the whole log being one closed segment."""
    txns = _transactions(batches)
    end = parse_header(batches[-1]).next_offset if batches else 0
    log = list(batches)
    while first_dirty < end:
        offset_map = OffsetMap(capacity)
        pass_end = end
        for batch in log:
            header = parse_header(batch)
            if header.base_offset >= first_dirty and not map_batch(offset_map, batch, txns):
                assert len(offset_map) > 0
                pass_end = header.base_offset
                break
        cleaner = Cleaner(offset_map, txns, now_ms=now, delete_retention_ms=RETENTION)
        log = [bytes(kept) for b in log if (kept := cleaner.clean(b)) is not None]
        first_dirty = pass_end
    return log


def _read(batches: list[bytes]) -> dict[int, Entry]:
    """Every data record by offset, checking what a client checks on the way."""
    found: dict[int, Entry] = {}
    previous = -1
    for batch in batches:
        header = check_batch(batch)  # CRC and length
        assert header.base_offset > previous
        kafka_python = DefaultRecordBatch(bytearray(batch))  # a real client parses it
        assert kafka_python.validate_crc()
        for record in iter_batch_records(batch):
            assert record.offset > previous
            previous = record.offset
            if not header.is_control:
                found[record.offset] = (record.key, record.value)
        previous = max(previous, header.last_offset)
    return found


def _latest(live: dict[int, Entry]) -> dict[int, Entry]:
    latest: dict[bytes, int] = {}
    for offset in sorted(live):
        key = live[offset][0]
        if key is not None:
            latest[key] = offset
    return {offset: live[offset] for offset in latest.values()}


@settings(max_examples=300, deadline=None)
@given(plan=steps, capacity=st.integers(min_value=4, max_value=20))
def test_cleaning_leaves_the_latest_value_per_key_at_its_offset(
    plan: list[Any], capacity: int
) -> None:
    batches, live, aborted = _build_log(plan)
    cleaned = _compact(batches, capacity, NOW)
    assert _read(cleaned) == _latest(live)  # tombstones kept: their horizon is still ahead
    # every batch kept has its original base offset and last offset: nothing renumbered
    original = {parse_header(b).base_offset: parse_header(b).last_offset for b in batches}
    for batch in cleaned:
        header = parse_header(batch)
        assert original[header.base_offset] == header.last_offset
    # one pass with a large map gives the same log as many passes with a small one
    assert _compact(batches, 10_000, NOW) == cleaned

    # a later cleaning, past the delete horizon, removes the tombstones for good
    later = _compact(cleaned, capacity, NOW + RETENTION + 1, first_dirty=0)
    # markers whose transactions became empty then are stamped; the cleaning after goes
    later = _compact(later, capacity, NOW + 2 * RETENTION + 2, first_dirty=0)
    expected = {o: e for o, e in _latest(live).items() if e[1] is not None}
    assert _read(later) == expected
    assert not aborted & set(_read(later))
    # markers whose transactions kept nothing are gone too (but the last batch of each
    # producer stays, holding its sequence state): every abort marker but those
    txns = _transactions(batches)
    assert [
        b
        for b in later
        if parse_header(b).is_control
        and marker_type(b) == 0
        and txns.last_batch[parse_header(b).producer_id] != parse_header(b).base_offset
    ] == []
    kept_records = {
        parse_header(b).producer_id
        for b in later
        if not parse_header(b).is_control and parse_header(b).record_count > 0
    }
    for batch in later:
        header = parse_header(batch)
        if header.is_control and marker_type(batch) == 1:
            last = txns.last_batch[header.producer_id] == header.base_offset
            assert last or header.producer_id in kept_records


def test_a_kept_tombstone_carries_its_delete_horizon_and_its_record_timestamps() -> None:
    batch = build_batch(
        [Record(0, NOW - 5, b"k", b"v"), Record(1, NOW - 4, b"k", None)], base_offset=10
    )
    offset_map = OffsetMap(10)
    map_batch(offset_map, batch, Transactions())
    cleaned = Cleaner(offset_map, Transactions(), now_ms=NOW, delete_retention_ms=RETENTION).clean(
        batch
    )
    assert cleaned is not None
    header = check_batch(cleaned)
    assert header.attributes & DELETE_HORIZON
    assert header.base_timestamp == NOW + RETENTION
    assert (header.base_offset, header.last_offset) == (10, 11)
    [record] = iter_batch_records(cleaned)
    assert (record.offset, record.key, record.value, record.timestamp) == (11, b"k", None, NOW - 4)
    # before the horizon it stays as it is; after it, it goes
    fresh = OffsetMap(10)
    assert (
        Cleaner(fresh, Transactions(), now_ms=NOW + 1, delete_retention_ms=1).clean(cleaned)
        is cleaned
    )
    assert (
        Cleaner(fresh, Transactions(), now_ms=NOW + RETENTION, delete_retention_ms=1).clean(cleaned)
        is None
    )


def test_the_last_batch_of_an_idempotent_producer_stays_empty_rather_than_go() -> None:
    old = build_batch(
        [Record(0, NOW, b"k", b"1")], base_offset=0, producer_id=3, producer_epoch=0,
        base_sequence=0,
    )  # fmt: skip
    new = build_batch([Record(0, NOW, b"k", b"2")], base_offset=1)
    txns = _transactions([old, new])
    offset_map = OffsetMap(10)
    for batch in (old, new):
        map_batch(offset_map, batch, txns)
    kept = Cleaner(offset_map, txns, now_ms=NOW, delete_retention_ms=RETENTION).clean(old)
    assert kept is not None
    header = check_batch(kept)
    assert (header.record_count, header.producer_id, header.base_sequence) == (0, 3, 0)


def test_planning_stops_before_the_active_segment_open_transactions_and_young_data() -> None:
    segments = [SegmentInfo(0, 100, 1000, NOW - 50_000), SegmentInfo(100, 200, 1000, NOW - 10)]
    assert (
        cleanable_end(segments, 200, None, first_dirty=0, now_ms=NOW, min_compaction_lag_ms=0)
        == 200
    )
    assert (
        cleanable_end(segments, 200, 150, first_dirty=0, now_ms=NOW, min_compaction_lag_ms=0) == 150
    )
    assert (
        cleanable_end(segments, 200, None, first_dirty=0, now_ms=NOW, min_compaction_lag_ms=1000)
        == 100
    )
    # half the bytes are dirty: cleaned at ratio 0.5, not at 0.6 (unless overdue)
    ratio = {"first_dirty": 100, "end": 200, "now_ms": NOW}
    assert needs_cleaning(segments, min_dirty_ratio=0.5, max_compaction_lag_ms=2**62, **ratio)
    assert not needs_cleaning(segments, min_dirty_ratio=0.6, max_compaction_lag_ms=2**62, **ratio)
    assert needs_cleaning(segments, min_dirty_ratio=0.6, max_compaction_lag_ms=5, **ratio)


def test_an_abort_marker_is_reported_then_stamped_then_dropped() -> None:
    """Producer 7 aborts a transaction (offsets 0-1, marker 2), then commits one (3, marker
    4). First cleaning: the aborted records go, the marker stays (its records were there).
    Next: no record of it is left, so it is reported (the transaction index must forget
    it) and stamped with a horizon. After the horizon it goes."""

    def txn_batch(offset: int, key: bytes) -> bytes:
        return build_batch(
            _records([(key, b"v")], NOW - 10), base_offset=offset, producer_id=7,
            producer_epoch=0, transactional=True,
        )  # fmt: skip

    log = [
        txn_batch(0, b"a"),
        txn_batch(1, b"b"),
        _marker(7, 2, commit=False),
        txn_batch(3, b"c"),
        _marker(7, 4, commit=True),
    ]

    def clean(batches: list[bytes], now: int) -> tuple[list[bytes], list[tuple[int, int]]]:
        txns = Transactions()
        offset_map = OffsetMap(100)
        for batch in batches:
            header = parse_header(batch)
            txns.observe(header, marker_type(batch) if header.is_control else None)
        for batch in batches:
            map_batch(offset_map, batch, txns)
        cleaner = Cleaner(offset_map, txns, now_ms=now, delete_retention_ms=RETENTION)
        kept = [bytes(k) for b in batches if (k := cleaner.clean(b)) is not None]
        return kept, cleaner.dataless_aborts

    def markers(batches: list[bytes]) -> list[tuple[int, int | None, bool]]:
        return [
            (h.base_offset, marker_type(b), bool(h.attributes & DELETE_HORIZON))
            for b in batches
            if (h := parse_header(b)).is_control
        ]

    first, reported = clean(log, NOW)
    assert reported == []
    assert [parse_header(b).base_offset for b in first] == [2, 3, 4]
    assert markers(first) == [(2, 0, False), (4, 1, False)]
    second, reported = clean(first, NOW)
    assert reported == [(7, 2)]
    assert markers(second) == [(2, 0, True), (4, 1, False)]  # the commit marker is the
    # producer's last batch, kept for its sequence state; its transaction kept a record
    third, reported = clean(second, NOW + RETENTION + 1)
    assert reported == [(7, 2)]
    assert markers(third) == [(4, 1, False)]
    assert _read(third) == {3: (b"c", b"v")}
