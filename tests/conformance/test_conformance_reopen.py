"""What a durable backend must keep across closing and reopening the store."""

from __future__ import annotations

from typing import Any

import pytest

import streamsource as ss
from conformance.helpers import events, log_of


def test_events_versions_and_positions_survive_a_reopen(store: Any, reopen: Any) -> None:
    batch = events("A", "B")
    first = store.append("s-1", batch, ss.NO_STREAM)
    store.append("s-2", events("C"))
    before = log_of(store)
    store = reopen(store)
    assert log_of(store) == before
    assert store.stream_version("s-1") == 1
    assert store.append("s-1", batch, ss.NO_STREAM) == first  # a retry after a restart
    later = store.append("s-1", events("D"), 1)
    assert later.version == 2
    assert later.position > before[-1][2]
    assert store.head_position() == later.position


def test_metadata_snapshots_and_tombstones_survive_a_reopen(store: Any, reopen: Any) -> None:
    store.append("kept-1", events(*"ABCD"))
    store.set_stream_metadata("kept-1", ss.StreamMetadata(max_count=2, custom={"k": "v"}))
    store.save_snapshot("kept-1", 3, "State", {"total": 4})
    store.append("soft-1", events("A"))
    store.delete_stream("soft-1")
    store.append("gone-1", events("A"))
    store.delete_stream("gone-1", hard=True)
    store = reopen(store)
    assert store.get_stream_metadata("kept-1") == ss.StreamMetadata(max_count=2, custom={"k": "v"})
    assert [e.version for e in store.read_stream("kept-1")] == [2, 3]
    assert store.load_snapshot("kept-1").state == {"total": 4}
    assert list(store.read_stream("soft-1")) == []
    assert store.append("soft-1", events("B"), 0).version == 1
    with pytest.raises(ss.StreamDeleted):
        store.append("gone-1", events("B"))
    assert {s.stream: s.hard_deleted for s in store.list_streams()} == {
        "kept-1": False,
        "soft-1": False,
        "gone-1": True,
    }
