"""Snapshots, list_streams, head_position, stats, closing."""

from __future__ import annotations

from typing import Any

import pytest

import streamsource as ss
from conformance.helpers import events


def test_snapshots_save_and_load_with_max_version(store: Any) -> None:
    store.append("account-1", events(*"ABCDEFGHIJ"))
    assert store.load_snapshot("account-1") is None
    store.save_snapshot("account-1", 3, "AccountState", {"balance": 30})
    store.save_snapshot("account-1", 7, "AccountState", {"balance": 70, "owner": "ann"})
    newest = store.load_snapshot("account-1")
    assert (newest.stream, newest.version, newest.type) == ("account-1", 7, "AccountState")
    assert newest.state == {"balance": 70, "owner": "ann"}
    assert newest.recorded_at.tzinfo is not None
    assert store.load_snapshot("account-1", max_version=9).version == 7
    assert store.load_snapshot("account-1", max_version=7).version == 7
    assert store.load_snapshot("account-1", max_version=6).version == 3
    assert store.load_snapshot("account-1", max_version=2) is None
    assert store.load_snapshot("account-2") is None
    # snapshots are stored apart: the events are untouched
    assert len(list(store.read_stream("account-1"))) == 10
    assert len(list(store.read_all())) == 10


def test_snapshot_at_the_same_version_is_replaced(store: Any) -> None:
    store.append("s-1", events("A", "B"))
    store.save_snapshot("s-1", 1, "State", {"v": "old"})
    store.save_snapshot("s-1", 1, "State", {"v": "new"})
    assert store.load_snapshot("s-1").state == {"v": "new"}


def test_snapshot_beyond_the_stream_is_refused(store: Any) -> None:
    store.append("s-1", events("A", "B"))
    with pytest.raises(ss.ProgrammingError):
        store.save_snapshot("s-1", 2, "State", {})
    with pytest.raises(ss.ProgrammingError):
        store.save_snapshot("nobody-1", 0, "State", {})
    with pytest.raises(ss.ProgrammingError):
        store.save_snapshot("s-1", -1, "State", {})
    with pytest.raises(ss.EventNotSerializable):
        store.save_snapshot("s-1", 1, "State", {"x": object()})
    assert store.load_snapshot("s-1") is None


def test_list_streams(store: Any) -> None:
    assert list(store.list_streams()) == []
    store.append("account-1", events("A", "B"))
    store.append("order-1", events("A"))
    store.append("gone-1", events("A"))
    store.delete_stream("gone-1", hard=True)
    store.set_stream_metadata("only-metadata-1", ss.StreamMetadata(max_count=3))
    listed = {s.stream: s for s in store.list_streams()}
    assert set(listed) == {"account-1", "order-1", "gone-1"}
    assert (listed["account-1"].version, listed["account-1"].hard_deleted) == (1, False)
    assert (listed["gone-1"].version, listed["gone-1"].hard_deleted) == (0, True)


def test_list_streams_pages_by_name(store: Any) -> None:
    for name in ("b-2", "a-1", "c-3", "b-1"):
        store.append(name, events("A"))
    assert [s.stream for s in store.list_streams()] == ["a-1", "b-1", "b-2", "c-3"]
    assert [s.stream for s in store.list_streams(after="b-1")] == ["b-2", "c-3"]
    assert [s.stream for s in store.list_streams(after="b")] == ["b-1", "b-2", "c-3"]
    assert list(store.list_streams(after="c-3")) == []
    with pytest.raises(ss.InvalidStreamName):
        list(store.list_streams(after=""))


def test_head_position(store: Any) -> None:
    assert store.head_position() == 0
    first = store.append("s-1", events("A"))
    assert store.head_position() == first.position
    second = store.append("s-2", events("A", "B"))
    assert store.head_position() == second.position
    with pytest.raises(ss.WrongExpectedVersion):
        store.append("s-2", events("C"), ss.NO_STREAM)
    assert store.head_position() == second.position


def test_stats(store: Any) -> None:
    store.append("s-1", events("A", "B"))
    store.append("s-2", events("A"))
    stats = store.stats()
    assert isinstance(stats["backend"], str)
    assert stats["events"] == 3
    assert stats["streams"] == 2


def test_closed_store_refuses_calls(store: Any) -> None:
    store.append("s-1", events("A"))
    store.close()
    store.close()  # closing twice is harmless
    with pytest.raises(ss.InterfaceError):
        store.append("s-1", events("B"))
    with pytest.raises(ss.InterfaceError):
        list(store.read_stream("s-1"))
    with pytest.raises(ss.InterfaceError):
        store.head_position()


def test_store_is_a_context_manager(store: Any) -> None:
    with store as same:
        same.append("s-1", events("A"))
    with pytest.raises(ss.InterfaceError):
        store.append("s-1", events("B"))
