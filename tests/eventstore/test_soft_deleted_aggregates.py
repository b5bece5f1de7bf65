"""Repositories and soft-deleted streams: a soft-deleted aggregate does not exist (even with
snapshots stored before the delete) and can be created again; versions continue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_snapshots import Clock, tick_and_save

import streamsource as ss


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/store.db"


@pytest.fixture
def store(url: str) -> Iterator[ss.EventStore]:
    with ss.open_store(url) as opened:
        yield opened


@pytest.mark.parametrize("every", [0, 3])
def test_a_soft_deleted_aggregate_is_gone_and_can_be_created_again(
    store: ss.EventStore, every: int
) -> None:
    clocks = ss.Repository(store, Clock, snapshot_every=every)
    tick_and_save(clocks, "c", 4)  # versions 0-3; with every=3, a snapshot at version 3
    store.delete_stream("clock-c", 3)

    assert not clocks.exists("c")
    with pytest.raises(ss.AggregateNotFound):
        clocks.load("c")
    with pytest.raises(ss.AggregateNotFound):
        clocks.load("c", as_of_version=3)  # a snapshot from before the delete is not used

    again = clocks.create("c")
    again.tick()
    again.tick()
    result = clocks.save(again)
    assert result is not None and result.version == 5  # versions continue after the delete
    assert again.version == 5 and again.saved_version == 5

    loaded = clocks.load("c")
    assert loaded.ticks == [0, 1] and loaded.version == 5
    assert clocks.exists("c")
    tick_and_save(clocks, "c", 1)  # an ordinary save of the re-created aggregate
    assert clocks.load("c").ticks == [0, 1, 2]
    assert [e.version for e in store.read_stream("clock-c")] == [4, 5, 6]


def test_a_snapshot_taken_after_the_re_creation_is_used(store: ss.EventStore) -> None:
    clocks = ss.Repository(store, Clock, snapshot_every=3)
    tick_and_save(clocks, "c", 3)  # snapshot at version 2
    store.delete_stream("clock-c")
    tick_and_save(clocks, "c", 1)  # re-created at version 3
    tick_and_save(clocks, "c", 2)  # versions 4, 5: crosses 6 events, snapshot at 5
    snapshot = store.load_snapshot("clock-c")
    assert snapshot is not None and snapshot.version == 5
    loaded = clocks.load("c")
    assert loaded.ticks == [0, 1, 2] and loaded.replayed == 0
    assert clocks.load("c", as_of_version=4).ticks == [0, 1]


def test_two_re_creations_race_and_one_wins(store: ss.EventStore) -> None:
    clocks = ss.Repository(store, Clock)
    tick_and_save(clocks, "c", 1)
    store.delete_stream("clock-c")
    first, second = clocks.create("c"), clocks.create("c")
    first.tick()
    second.tick()
    clocks.save(first)
    with pytest.raises(ss.WrongExpectedVersion) as caught:
        clocks.save(second)
    assert caught.value.actual == 1
    assert clocks.load("c").version == 1


async def test_the_async_repository_handles_soft_deletes_the_same_way(url: str) -> None:
    store = await ss.open_async_store(url)
    try:
        clocks = ss.AsyncRepository(store, Clock, snapshot_every=3)
        clock = clocks.create("c")
        for _ in range(4):
            clock.tick()
        await clocks.save(clock)  # snapshot at version 3
        await store.delete_stream("clock-c")
        assert not await clocks.exists("c")
        with pytest.raises(ss.AggregateNotFound):
            await clocks.load("c")
        again = clocks.create("c")
        again.tick()
        result = await clocks.save(again)
        assert result is not None and result.version == 4
        loaded = await clocks.load("c")
        assert loaded.ticks == [0] and loaded.version == 4
        assert await clocks.exists("c")
    finally:
        await store.close()


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=10),
    every=st.integers(min_value=1, max_value=4),
    as_of=st.integers(min_value=0, max_value=45),
)
def test_with_soft_deletes_any_load_still_equals_a_plain_replay(
    steps: list[int], every: int, as_of: int
) -> None:
    """Steps: 0 soft-deletes the clock, n > 0 saves n ticks (creating it if it is gone)."""
    with ss.open_store("memory://") as store:
        clocks = ss.Repository(store, Clock, snapshot_every=every)
        plain = ss.Repository(store, Clock, snapshot_every=0)  # never uses snapshots
        for step in steps:
            if step == 0:
                store.delete_stream("clock-c")
            else:
                tick_and_save(clocks, "c", step)
        assert clocks.exists("c") == plain.exists("c")
        option_sets: list[dict[str, Any]] = [{}, {"as_of_version": as_of}]
        for options in option_sets:
            try:
                expected = plain.load("c", **options).ticks
            except ss.AggregateNotFound:
                with pytest.raises(ss.AggregateNotFound):
                    clocks.load("c", **options)
            else:
                assert clocks.load("c", **options).ticks == expected
