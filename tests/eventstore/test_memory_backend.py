"""What is particular to the memory backend (the shared contract is in tests/conformance)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import streamsource as ss
from streamsource.eventstore.backends import memory
from streamsource.eventstore.recorder import Recorder


def test_memory_recorder_implements_the_protocol() -> None:
    assert isinstance(memory.MemoryRecorder(), Recorder)


def test_each_memory_url_opens_a_separate_store() -> None:
    first, second = ss.open_store("memory://"), ss.open_store("memory://")
    first.append("s-1", ss.NewEvent("A", {}))
    assert list(second.read_all()) == []


def test_memory_takes_no_options() -> None:
    with pytest.raises(ss.InterfaceError, match="durability"):
        ss.open_store("memory://", durability="full")


def test_recorded_at_never_goes_back_when_the_clock_does() -> None:
    years = [2030, 2029, 2031]  # the clock steps back a year, then forward
    ticks = iter([datetime(year, 1, 1, tzinfo=UTC) for year in years])
    store = ss.EventStore(memory.MemoryRecorder(clock=lambda: next(ticks)))
    for _ in range(3):
        store.append("s-1", ss.NewEvent("A", {}))
    times = [e.recorded_at for e in store.read_stream("s-1")]
    assert times == [
        datetime(2030, 1, 1, tzinfo=UTC),
        datetime(2030, 1, 1, tzinfo=UTC),
        datetime(2031, 1, 1, tzinfo=UTC),
    ]


def test_max_age_uses_the_store_clock() -> None:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    store = ss.EventStore(memory.MemoryRecorder(clock=lambda: now[0]), clock=lambda: now[0])
    store.append("s-1", ss.NewEvent("Old", {}))
    now[0] += timedelta(hours=2)
    store.append("s-1", ss.NewEvent("New", {}))
    store.set_stream_metadata("s-1", ss.StreamMetadata(max_age=timedelta(hours=1)))
    assert [e.type for e in store.read_stream("s-1")] == ["New"]
    assert [e.type for e in store.read_stream("s-1", backwards=True)] == ["New"]
    now[0] += timedelta(hours=2)
    assert list(store.read_stream("s-1")) == []


@pytest.mark.parametrize(
    "count", [memory.PAGE_SIZE - 1, memory.PAGE_SIZE, 2 * memory.PAGE_SIZE + 3]
)
def test_reads_cross_page_boundaries(count: int) -> None:
    store = ss.open_store("memory://")
    store.append("s-1", [ss.NewEvent("E", n) for n in range(count)])
    assert [e.data for e in store.read_stream("s-1")] == list(range(count))
    assert [e.data for e in store.read_stream("s-1", backwards=True)] == list(range(count))[::-1]
    assert [e.data for e in store.read_all(backwards=True)] == list(range(count))[::-1]
    assert len(list(store.read_stream("s-1", from_version=1, limit=count))) == count - 1


def test_a_slow_reader_does_not_block_writers() -> None:
    store = ss.open_store("memory://")
    store.append("s-1", [ss.NewEvent("E", n) for n in range(2000)])
    reader = store.read_all()
    next(reader)
    store.append("s-2", ss.NewEvent("E", "later"))  # would deadlock if the reader held the lock
    assert sum(1 for _ in reader) == 2000  # the rest, and the later event (a live reader)
