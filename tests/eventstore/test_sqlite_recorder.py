"""The SQLite recorder through its own interface: storage, reads, idempotency, options."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streamsource.errors import (
    CorruptStoreError,
    DuplicateEventId,
    InterfaceError,
    ProgrammingError,
    StreamDeleted,
    WrongExpectedVersion,
)
from streamsource.eventstore.backends.sqlite import SqliteRecorder, open_recorder
from streamsource.eventstore.backends.sqlite.reads import PAGE_SIZE
from streamsource.eventstore.events import ANY, NO_STREAM, STREAM_EXISTS
from streamsource.eventstore.recorder import (
    EventRecord,
    ReadAllFilter,
    Recorder,
    SnapshotRecord,
    StoredRecord,
)


def record(type_: str = "Deposited", **data: object) -> EventRecord:
    return EventRecord(uuid.uuid4(), type_, json.dumps(data).encode(), b'{"by":"test"}')


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[SqliteRecorder]:
    rec = open_recorder(f"sqlite:///{tmp_path}/store.db")
    yield rec
    rec.close()


def test_is_a_recorder(recorder: SqliteRecorder) -> None:
    assert isinstance(recorder, Recorder)


def test_append_then_read_back_every_field(recorder: SqliteRecorder) -> None:
    before = datetime.now(UTC)
    events = [record(amount=100), record("Withdrawn", amount=30)]
    result = recorder.append("account-1", events, NO_STREAM)
    assert (result.version, result.position) == (1, 2)
    stored = list(recorder.read_stream("account-1"))
    assert [s.id for s in stored] == [e.id for e in events]
    assert [(s.version, s.position, s.stream) for s in stored] == [
        (0, 1, "account-1"),
        (1, 2, "account-1"),
    ]
    assert [(s.type, s.data, s.metadata) for s in stored] == [
        (e.type, e.data, e.metadata) for e in events
    ]
    assert all(before <= s.recorded_at <= datetime.now(UTC) for s in stored)
    assert stored[0].recorded_at.tzinfo is not None


def test_data_survives_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    with open_recorder(url) as rec:
        rec.append("a-1", [record(n=1)], NO_STREAM)
    with open_recorder(url) as rec:
        assert [s.data for s in rec.read_stream("a-1")] == [b'{"n": 1}']
        assert rec.append("a-1", [record(n=2)], 0).version == 1


def test_expected_versions(recorder: SqliteRecorder) -> None:
    with pytest.raises(WrongExpectedVersion) as info:
        recorder.append("s-1", [record()], STREAM_EXISTS)
    assert (info.value.stream, info.value.actual) == ("s-1", None)
    recorder.append("s-1", [record()], NO_STREAM)
    with pytest.raises(WrongExpectedVersion) as info:
        recorder.append("s-1", [record()], NO_STREAM)
    assert info.value.actual == 0
    with pytest.raises(WrongExpectedVersion) as info:
        recorder.append("s-1", [record(), record()], 3)
    assert (info.value.expected, info.value.actual) == (3, 0)
    assert recorder.append("s-1", [record()], STREAM_EXISTS).version == 1
    assert recorder.append("s-1", [record()], ANY).version == 2
    assert recorder.append("s-1", [record()], 2).version == 3
    assert [s.version for s in recorder.read_stream("s-1")] == [0, 1, 2, 3]
    assert recorder.stream_info("s-1").version == 3


def test_retried_append_returns_original_result_and_writes_nothing(
    recorder: SqliteRecorder,
) -> None:
    events = [record(n=1), record(n=2)]
    first = recorder.append("s-1", events, NO_STREAM)
    recorder.append("s-1", [record(n=3)], 1)
    assert recorder.append("s-1", events, NO_STREAM) == first
    assert [s.version for s in recorder.read_stream("s-1")] == [0, 1, 2]


def test_reused_ids_are_refused(recorder: SqliteRecorder) -> None:
    events = [record(n=1), record(n=2)]
    recorder.append("s-1", events, NO_STREAM)
    changed = EventRecord(events[0].id, "Other", events[0].data, events[0].metadata)
    with pytest.raises(DuplicateEventId) as info:
        recorder.append("s-1", [changed], ANY)
    assert info.value.event_id == events[0].id
    with pytest.raises(DuplicateEventId):
        recorder.append("s-2", [events[0]], ANY)  # same event, other stream
    with pytest.raises(DuplicateEventId):
        recorder.append("s-1", [events[0], record()], ANY)  # partly stored
    with pytest.raises(DuplicateEventId):
        recorder.append("s-1", [events[1], events[0]], ANY)  # wrong order
    twice = record()
    with pytest.raises(DuplicateEventId):
        recorder.append("s-3", [twice, twice], ANY)
    assert recorder.stream_info("s-3").version is None
    assert recorder.head_position() == 2


def test_hard_delete_is_a_tombstone(recorder: SqliteRecorder) -> None:
    recorder.append("s-1", [record()], NO_STREAM)
    with pytest.raises(WrongExpectedVersion):
        recorder.hard_delete("s-1", 5)
    recorder.hard_delete("s-1", 0)
    info = recorder.stream_info("s-1")
    assert info.hard_deleted and info.version == 0
    with pytest.raises(StreamDeleted):
        recorder.append("s-1", [record()], ANY)
    with pytest.raises(StreamDeleted):
        recorder.set_stream_metadata("s-1", b"{}")
    assert len(list(recorder.read_stream("s-1"))) == 1  # the events stay in the log


def test_stream_metadata_and_listing(recorder: SqliteRecorder) -> None:
    recorder.set_stream_metadata("b-1", b'{"max_count":3}')
    recorder.append("a-1", [record()], NO_STREAM)
    infos = list(recorder.list_streams())
    assert [(i.stream, i.version, i.metadata) for i in infos] == [
        ("a-1", 0, None),
        ("b-1", None, b'{"max_count":3}'),
    ]
    recorder.append("b-1", [record()], NO_STREAM)  # metadata alone does not make it exist
    assert recorder.stream_info("b-1").metadata == b'{"max_count":3}'
    assert recorder.stream_info("unknown").version is None


def test_reads_page_through_more_than_one_page(recorder: SqliteRecorder) -> None:
    total = PAGE_SIZE * 2 + 7
    for start in range(0, total, 500):
        count = min(500, total - start)
        recorder.append("big-1", [record(n=start + i) for i in range(count)], ANY)
    recorder.append("other-1", [record("Other")], NO_STREAM)
    versions = [s.version for s in recorder.read_stream("big-1")]
    assert versions == list(range(total))
    backwards = [s.version for s in recorder.read_stream("big-1", backwards=True)]
    assert backwards == list(reversed(range(total)))
    window = recorder.read_stream("big-1", from_version=990, to_version=1010)
    assert [s.version for s in window] == list(range(990, 1011))
    window = recorder.read_stream("big-1", from_version=1500, backwards=True, limit=1200)
    assert [s.version for s in window] == list(range(1500, 300, -1))
    positions = [s.position for s in recorder.read_all()]
    assert positions == list(range(1, total + 2))
    assert [s.position for s in recorder.read_all(from_position=total, limit=5)] == [
        total,
        total + 1,
    ]
    assert [s.position for s in recorder.read_all(backwards=True, limit=3)] == [
        total + 1,
        total,
        total - 1,
    ]
    assert [s.position for s in recorder.read_all(from_position=5, backwards=True)] == [
        5,
        4,
        3,
        2,
        1,
    ]


def test_read_all_filters(recorder: SqliteRecorder) -> None:
    recorder.append("account-1", [record("Deposited"), record("Withdrawn")], ANY)
    recorder.append("product-1", [record("PriceChanged")], ANY)
    recorder.append("account2-1", [record("Deposited")], ANY)
    by_category = recorder.read_all(filter=ReadAllFilter(category="account"))
    assert [(s.stream, s.type) for s in by_category] == [
        ("account-1", "Deposited"),
        ("account-1", "Withdrawn"),
    ]
    by_type = recorder.read_all(filter=ReadAllFilter(types=frozenset({"Deposited"})))
    assert [s.stream for s in by_type] == ["account-1", "account2-1"]
    both = ReadAllFilter(category="account", types=frozenset({"Withdrawn", "PriceChanged"}))
    assert [s.type for s in recorder.read_all(filter=both)] == ["Withdrawn"]


def test_read_all_by_several_types_pages_in_position_order(recorder: SqliteRecorder) -> None:
    # Interleaved types across more than one page of each, in three categories.
    kinds = ["A", "B", "C", "D"]
    for chunk in range(6):
        batch = [record(kinds[(chunk + i) % 4], i=i) for i in range(500)]
        recorder.append(f"cat{chunk % 3}-1", batch, ANY)
    everything = list(recorder.read_all())
    for wanted in ({"A", "C"}, {"B"}, {"A", "B", "D"}, set(kinds) | {f"T{i}" for i in range(40)}):
        expected = [s.position for s in everything if s.type in wanted]
        narrowing = ReadAllFilter(types=frozenset(wanted))
        assert [s.position for s in recorder.read_all(filter=narrowing)] == expected
        backwards = recorder.read_all(filter=narrowing, backwards=True)
        assert [s.position for s in backwards] == expected[::-1]
        middle = expected[len(expected) // 2]
        resumed = recorder.read_all(filter=narrowing, from_position=middle, limit=1100)
        assert [s.position for s in resumed] == [p for p in expected if p >= middle][:1100]
        back = recorder.read_all(filter=narrowing, from_position=middle, backwards=True, limit=7)
        assert [s.position for s in back] == [p for p in expected if p <= middle][::-1][:7]
        in_category = ReadAllFilter(category="cat1", types=frozenset(wanted))
        assert [s.position for s in recorder.read_all(filter=in_category)] == [
            s.position for s in everything if s.type in wanted and s.stream == "cat1-1"
        ]
    nothing = ReadAllFilter(types=frozenset())
    assert list(recorder.read_all(filter=nothing)) == []


def test_reads_are_lazy(recorder: SqliteRecorder) -> None:
    recorder.append("s-1", [record()], NO_STREAM)
    reader = recorder.read_all()
    recorder.append("s-1", [record()], 0)  # written after the call, before iterating
    assert len(list(reader)) == 2


def test_snapshots(recorder: SqliteRecorder) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    for version in (9, 19):
        snap = SnapshotRecord("account-1", version, "Account", b'{"balance":1}', when)
        recorder.save_snapshot(snap)
    newest = recorder.load_snapshot("account-1")
    assert newest is not None and newest.version == 19
    older = recorder.load_snapshot("account-1", max_version=18)
    assert older == SnapshotRecord("account-1", 9, "Account", b'{"balance":1}', when)
    assert recorder.load_snapshot("account-1", max_version=8) is None
    assert recorder.load_snapshot("nobody") is None
    assert list(recorder.read_all()) == []  # snapshots are not events


def test_empty_store(recorder: SqliteRecorder) -> None:
    assert recorder.head_position() == 0
    assert list(recorder.read_all()) == []
    assert list(recorder.read_stream("x")) == []
    assert list(recorder.list_streams()) == []


def test_stats(recorder: SqliteRecorder) -> None:
    recorder.append("s-1", [record()], NO_STREAM)
    stats = recorder.stats()
    assert stats["backend"] == "sqlite"
    assert stats["durability"] == "full"
    assert stats["writes"] == 1 and stats["commits"] == 1
    assert stats["head_position"] == 1


def test_url_options(tmp_path: Path) -> None:
    with open_recorder(f"sqlite:///{tmp_path}/a.db?durability=normal&timeout=1") as rec:
        assert rec.stats()["durability"] == "normal"
        assert rec.timeout == 1.0
    with open_recorder(f"sqlite:///{tmp_path}/a.db", durability="normal") as rec:
        assert rec.durability == "normal"
    conn = sqlite3.connect(tmp_path / "a.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    with pytest.raises(ProgrammingError, match="durability"):
        open_recorder(f"sqlite:///{tmp_path}/a.db?durability=sometimes")
    with pytest.raises(ProgrammingError, match="colour"):
        open_recorder(f"sqlite:///{tmp_path}/a.db", colour="red")
    with pytest.raises(InterfaceError):
        open_recorder(f"postgres:///{tmp_path}/a.db")


def test_an_in_memory_sqlite_url_points_to_memory_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InterfaceError, match="memory://"):
        open_recorder("sqlite:///:memory:")
    assert list(tmp_path.iterdir()) == []  # no file named ':memory:' either


def test_relative_url_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_recorder("sqlite:///bank.db") as rec:
        rec.append("a-1", [record()], NO_STREAM)
    assert (tmp_path / "bank.db").exists()


def test_closed_recorder_refuses_work(tmp_path: Path) -> None:
    rec = open_recorder(f"sqlite:///{tmp_path}/store.db")
    rec.close()
    rec.close()
    with pytest.raises(InterfaceError, match="closed"):
        rec.append("s-1", [record()], ANY)
    with pytest.raises(InterfaceError, match="closed"):
        list(rec.read_all())


def test_records_read_back_behave_like_constructed_ones(recorder: SqliteRecorder) -> None:
    # Reads convert whole pages of rows through msgspec, for speed.
    events = [record(n=1), record(n=2)]
    recorder.append("s-1", events, NO_STREAM)
    stored = list(recorder.read_stream("s-1"))
    rebuilt = [
        StoredRecord(
            uuid.UUID(str(s.id)),
            s.stream,
            s.version,
            s.position,
            s.type,
            s.data,
            s.metadata,
            s.recorded_at,
        )
        for s in stored
    ]
    assert stored == rebuilt
    assert [hash(s) for s in stored] == [hash(r) for r in rebuilt]
    assert [repr(s) for s in stored] == [repr(r) for r in rebuilt]
    assert [s.id for s in stored] == [e.id for e in events]
    assert stored[0].id.version == 4 and stored[0].id.hex == events[0].id.hex
    with pytest.raises(AttributeError):
        stored[0].version = 7  # type: ignore[misc]


def test_a_damaged_event_row_is_reported_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    rec = open_recorder(f"sqlite:///{path}")
    rec.append("s-1", [record(n=1), record(n=2)], NO_STREAM)
    rec.close()
    with sqlite3.connect(path) as db:  # a 3-byte id: no UUID can be read from it
        db.execute("UPDATE events SET id = x'000102' WHERE version = 1")
    db.close()
    rec = open_recorder(f"sqlite:///{path}")
    try:
        with pytest.raises(CorruptStoreError, match="damaged"):
            list(rec.read_stream("s-1"))
    finally:
        rec.close()


def test_recorded_at_never_goes_back_when_the_clock_does(
    recorder: SqliteRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamsource.eventstore.backends.sqlite import writes

    year = 365 * 24 * 3600 * 1_000_000
    ticks = iter([60 * year, 59 * year, 61 * year, 58 * year])  # back a year, forward, back
    monkeypatch.setattr(writes, "now_micros", lambda: next(ticks))
    recorder.append("s-1", [record()], NO_STREAM)  # the one-statement path of one event
    recorder.append("s-1", [record()], 0)
    recorder.append("s-1", [record()], ANY)
    recorder.append("s-1", [record(), record()], 2)  # the general path
    times = [s.recorded_at for s in recorder.read_stream("s-1")]
    assert times == sorted(times) and times[0] < times[2] == times[3] == times[4]


def test_opening_a_store_does_not_wait_for_another_writers_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    with open_recorder(url) as recorder:
        recorder.append("a-1", [EventRecord(uuid.uuid4(), "Opened", b"{}", b"{}")], NO_STREAM)
    holder = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process's writer, mid-transaction
        with open_recorder(f"{url}?timeout=0") as recorder:  # would fail at once if it waited
            assert [s.version for s in recorder.read_stream("a-1")] == [0]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
