"""Scavenging: what stream metadata and deletes hide is removed for good, nothing else moves."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

import streamsource as ss
from conformance.helpers import events, log_of, versions


def kept(before: list[tuple[str, int, int, str]], *gone: tuple[str, int]) -> list[Any]:
    """The log ``before`` without the (stream, version) pairs in ``gone``."""
    return [row for row in before if (row[0], row[1]) not in gone]


def test_truncated_events_are_removed_and_every_other_event_keeps_its_position(
    store: Any,
) -> None:
    store.append("s-1", events(*"ABCDE"))
    store.append("other-1", events("X", "Y"))
    store.set_stream_metadata("s-1", ss.StreamMetadata(truncate_before=3))
    before = log_of(store)
    visible = [(e.version, e.position, e.data) for e in store.read_stream("s-1")]

    report = store.scavenge()

    assert (report.events_removed, report.streams_scavenged, report.streams_checked) == (3, 1, 2)
    assert log_of(store) == kept(before, ("s-1", 0), ("s-1", 1), ("s-1", 2))
    assert [(e.version, e.position, e.data) for e in store.read_stream("s-1")] == visible
    assert store.stats()["events"] == 4
    assert store.scavenge().events_removed == 0  # nothing left to do


def test_max_count_and_max_age_remove_what_they_hide(store: Any) -> None:
    store.append("counted-1", events(*"ABCDE"))
    store.set_stream_metadata("counted-1", ss.StreamMetadata(max_count=2))
    store.append("aged-1", events(*"ABC"))
    store.set_stream_metadata("aged-1", ss.StreamMetadata(max_age=timedelta(microseconds=1)))
    store.append("young-1", events(*"ABC"))
    store.set_stream_metadata("young-1", ss.StreamMetadata(max_age=timedelta(days=1)))
    store.append("tail-1", events("Z"))  # the newest event of the log is not ours

    assert store.scavenge().events_removed == 3 + 2

    assert [(e.stream, e.version) for e in store.read_all()] == [
        ("counted-1", 3),
        ("counted-1", 4),
        ("aged-1", 2),  # hidden by max_age, but a live stream keeps its last event
        ("young-1", 0),
        ("young-1", 1),
        ("young-1", 2),
        ("tail-1", 0),
    ]
    assert versions(store, "counted-1") == [3, 4]


def test_a_soft_deleted_stream_keeps_only_its_last_event_and_versions_continue(
    store: Any,
) -> None:
    store.append("s-1", events(*"ABC"))
    store.delete_stream("s-1", 2)
    store.append("other-1", events("X"))

    assert store.scavenge().events_removed == 2

    assert [(e.stream, e.version) for e in store.read_all()] == [("s-1", 2), ("other-1", 0)]
    assert versions(store, "s-1") == []
    assert store.stream_version("s-1") == 2
    assert store.append("s-1", events("D"), ss.NO_STREAM).version == 3  # a re-creation
    assert versions(store, "s-1") == [3]


def test_a_hard_deleted_stream_loses_every_event_and_stays_deleted(store: Any) -> None:
    store.append("gone-1", events(*"ABC"))
    store.append("other-1", events("X"))
    store.delete_stream("gone-1", 2, hard=True)
    head = store.head_position()

    assert store.scavenge().events_removed == 3

    assert [(e.stream, e.version) for e in store.read_all()] == [("other-1", 0)]
    assert store.head_position() == head
    with pytest.raises(ss.StreamDeleted):
        store.append("gone-1", events("D"))
    with pytest.raises(ss.StreamDeleted):
        list(store.read_stream("gone-1"))
    assert [s.stream for s in store.list_streams() if s.hard_deleted] == ["gone-1"]


def test_the_newest_event_of_the_log_stays_so_positions_are_never_reused(store: Any) -> None:
    store.append("gone-1", events("A", "B"))
    store.delete_stream("gone-1", hard=True)
    head = store.head_position()

    assert store.scavenge().events_removed == 1
    assert [(e.stream, e.version, e.position) for e in store.read_all()] == [("gone-1", 1, head)]
    assert store.head_position() == head

    after = store.append("next-1", events("X")).position
    assert after > head
    assert store.scavenge().events_removed == 1  # no longer the newest: now it goes
    assert [(e.stream, e.position) for e in store.read_all()] == [("next-1", after)]


def test_scavenge_beside_concurrent_appends_loses_none_of_them(store: Any) -> None:
    for n in range(20):
        store.append(f"old-{n}", events(*"ABCD"))
        store.delete_stream(f"old-{n}")
    store.append("busy-1", events(*"ABCDEF"))
    store.set_stream_metadata("busy-1", ss.StreamMetadata(max_count=3))
    written: list[tuple[str, int, int]] = []
    done = threading.Event()

    def appender() -> None:
        try:
            for n in range(60):
                stream = "busy-1" if n % 2 else f"new-{n % 7}"
                result = store.append(stream, events("Z"))
                written.append((stream, result.version, result.position))
        finally:
            done.set()

    thread = threading.Thread(target=appender)
    thread.start()
    removed = store.scavenge().events_removed
    thread.join(timeout=60)
    assert done.is_set() and not thread.is_alive()

    assert removed >= 20 * 3
    # PostgreSQL's read_all shows the settled prefix: another session's open transaction
    # (a parallel test on the same server) may hold back the newest positions for a moment
    newest = max(position for _, _, position in written)
    deadline = time.monotonic() + 30
    while (head := max(e.position for e in store.read_all(backwards=True, limit=1))) < newest:
        assert time.monotonic() < deadline, f"the log stays at {head}, below {newest}"
        time.sleep(0.01)  # a poll interval, bounded by the deadline
    log = {(e.stream, e.version, e.position) for e in store.read_all()}
    # every concurrent append is still there at its position, except what max_count hides
    assert {w for w in written if w[0] != "busy-1" or w[1] >= 6 + 30 - 3} <= log
    busy = [e.version for e in store.read_all() if e.stream == "busy-1"]
    assert busy == list(range(busy[0], 6 + 30))  # a suffix of its versions, no gap
    assert store.stream_version("busy-1") == 6 + 30 - 1
    for n in range(20):
        assert [e.version for e in store.read_all() if e.stream == f"old-{n}"] == [3]


def test_scavenge_of_an_empty_store_reports_nothing(store: Any) -> None:
    report = store.scavenge()
    assert isinstance(report, ss.ScavengeReport)
    assert (report.streams_checked, report.streams_scavenged, report.events_removed) == (0, 0, 0)
