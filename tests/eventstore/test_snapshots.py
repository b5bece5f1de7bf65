"""Snapshots every N events: stored apart from events, used on load, never past an as-of."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamsource as ss

events = ss.EventRegistry()


@events.event("Ticked")
class Ticked(msgspec.Struct, frozen=True):
    n: int


class Clock(ss.Aggregate):
    """Counts ticks; ``replayed`` (not part of the state) counts events applied since load."""

    registry = events
    snapshot_every = 3

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.ticks: list[int] = []
        self.replayed = 0

    def tick(self) -> None:
        self.record(Ticked(n=len(self.ticks)))

    @ss.applies(Ticked)
    def _ticked(self, event: Ticked) -> None:
        self.ticks.append(event.n)
        self.replayed += 1

    def snapshot_state(self) -> Any:
        return {"ticks": self.ticks}

    def restore_snapshot(self, state: Any) -> None:
        self.ticks = list(state["ticks"])


class NoHooks(ss.Aggregate):
    registry = events


class Unserialisable(Clock):
    def snapshot_state(self) -> Any:
        return {"ticks": object()}  # not JSON


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/store.db"


@pytest.fixture
def store(url: str) -> Iterator[ss.EventStore]:
    with ss.open_store(url) as opened:
        yield opened


def tick_and_save(repository: ss.Repository[Clock], id: str, ticks: int) -> None:
    clock = repository.load(id) if repository.exists(id) else repository.create(id)
    for _ in range(ticks):
        clock.tick()
    repository.save(clock)


def test_a_snapshot_is_stored_each_time_a_save_crosses_a_multiple_of_n(
    store: ss.EventStore,
) -> None:
    clocks = ss.Repository(store, Clock)
    tick_and_save(clocks, "c", 2)  # versions 0-1: no snapshot yet
    assert store.load_snapshot("clock-c") is None
    tick_and_save(clocks, "c", 2)  # versions 2-3: crossed 3 events
    snapshot = store.load_snapshot("clock-c")
    assert snapshot is not None
    assert snapshot.version == 3  # the state after the whole save
    assert snapshot.state == {"ticks": [0, 1, 2, 3]}
    tick_and_save(clocks, "c", 1)  # version 4: 5 events, no new snapshot
    assert store.load_snapshot("clock-c").version == 3  # type: ignore[union-attr]
    # snapshots are kept apart: the stream holds only the events
    assert [e.type for e in store.read_stream("clock-c")] == ["Ticked"] * 5


def test_load_starts_from_the_newest_snapshot_and_applies_only_the_tail(
    store: ss.EventStore,
) -> None:
    clocks = ss.Repository(store, Clock)
    tick_and_save(clocks, "c", 7)  # snapshot at version 6 (7 events crosses 3 and 6)
    tick_and_save(clocks, "c", 1)  # version 7
    clock = clocks.load("c")
    assert clock.ticks == list(range(8))
    assert clock.version == 7
    assert clock.replayed == 1  # only version 7 was applied, the rest came from the snapshot


def test_an_as_of_version_load_never_uses_a_newer_snapshot(store: ss.EventStore) -> None:
    clocks = ss.Repository(store, Clock)
    for _ in range(8):
        tick_and_save(clocks, "c", 1)  # snapshots at versions 2 and 5
    old = clocks.load("c", as_of_version=4)
    assert old.ticks == [0, 1, 2, 3, 4]
    assert old.version == 4
    assert old.replayed == 2  # from the snapshot at version 2
    assert clocks.load("c", as_of_version=1).ticks == [0, 1]
    assert clocks.load("c", as_of_version=5).replayed == 0


def test_an_as_of_time_load_never_uses_a_snapshot_past_that_time(store: ss.EventStore) -> None:
    clocks = ss.Repository(store, Clock)
    for _ in range(7):
        tick_and_save(clocks, "c", 1)  # snapshots at versions 2 and 5
    times = [e.recorded_at for e in store.read_stream("clock-c")]
    at_four = clocks.load("c", as_of_time=times[4])
    visible = [n for n, t in enumerate(times) if t <= times[4]]  # ties share a microsecond
    assert at_four.ticks == visible
    assert at_four.version == visible[-1]
    assert clocks.load("c", as_of_time=times[6] + timedelta(hours=1)).ticks == list(range(7))


def test_a_snapshot_of_another_schema_is_ignored(
    store: ss.EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clocks = ss.Repository(store, Clock)
    tick_and_save(clocks, "c", 4)  # snapshot (schema 1) at version 3
    monkeypatch.setattr(Clock, "snapshot_schema", 2)  # a deploy changed the state's shape
    clock = clocks.load("c")
    assert clock.ticks == [0, 1, 2, 3]
    assert clock.replayed == 4  # rebuilt from events


def test_the_repository_setting_overrides_the_class_setting(store: ss.EventStore) -> None:
    clocks = ss.Repository(store, Clock, snapshot_every=10)
    tick_and_save(clocks, "c", 9)
    assert store.load_snapshot("clock-c") is None
    tick_and_save(clocks, "c", 1)
    assert store.load_snapshot("clock-c").version == 9  # type: ignore[union-attr]


def test_snapshots_need_the_hooks_and_a_positive_interval(store: ss.EventStore) -> None:
    with pytest.raises(ss.ProgrammingError, match="need snapshot_state\\(\\) and restore"):
        ss.Repository(store, NoHooks, snapshot_every=5)
    with pytest.raises(ss.ProgrammingError, match="snapshot_every must be an int >= 0"):
        ss.Repository(store, Clock, snapshot_every=-1)
    ss.Repository(store, NoHooks)  # no snapshots asked for: fine
    ss.Repository(store, NoHooks, snapshot_every=0)


def test_unserialisable_state_fails_before_anything_is_written(store: ss.EventStore) -> None:
    clocks = ss.Repository(store, Unserialisable)
    clock = clocks.create("u")
    for _ in range(3):
        clock.tick()
    with pytest.raises(ss.EventNotSerializable, match="snapshot state of 'unserialisable-u'"):
        clocks.save(clock)
    assert store.stream_version("unserialisable-u") is None


async def test_async_repository_snapshots_the_same_way(url: str) -> None:
    store = await ss.open_async_store(url)
    try:
        clocks = ss.AsyncRepository(store, Clock)
        clock = clocks.create("a")
        for _ in range(4):
            clock.tick()
        await clocks.save(clock)
        snapshot = await store.load_snapshot("clock-a")
        assert snapshot is not None and snapshot.version == 3
        loaded = await clocks.load("a")
        assert loaded.ticks == [0, 1, 2, 3] and loaded.replayed == 0
        old = await clocks.load("a", as_of_version=2)
        assert old.ticks == [0, 1, 2] and old.replayed == 3
    finally:
        await store.close()


@settings(max_examples=40, deadline=None)
@given(
    saves=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=8),
    every=st.integers(min_value=1, max_value=4),
    as_of=st.integers(min_value=0, max_value=45),
)
def test_any_load_equals_a_plain_replay(saves: list[int], every: int, as_of: int) -> None:
    with ss.open_store("memory://") as store:
        clocks = ss.Repository(store, Clock, snapshot_every=every)
        plain = ss.Repository(store, Clock, snapshot_every=0)  # never uses snapshots
        total = 0
        for batch in saves:
            before = total
            tick_and_save(clocks, "c", batch)
            total += batch
            snapshot = store.load_snapshot("clock-c")
            if before // every < total // every:  # this save crossed a multiple of `every`
                assert snapshot is not None and snapshot.version == total - 1
        assert clocks.load("c").ticks == plain.load("c").ticks == list(range(total))
        assert plain.load("c").replayed == total
        expected = list(range(min(as_of, total - 1) + 1))
        assert clocks.load("c", as_of_version=as_of).ticks == expected
        assert plain.load("c", as_of_version=as_of).ticks == expected
