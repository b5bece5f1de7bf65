"""Default event ids are UUIDv7 and strictly increasing, also within one millisecond and
across threads (RFC 9562 method 1: a counter below the timestamp)."""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict

from hypothesis import given
from hypothesis import strategies as st

from streamsource.eventstore.event_ids import (
    COUNTER_BITS,
    IdState,
    new_event_id,
    next_state,
    uuid7_int,
)

_millis = st.integers(min_value=0, max_value=(1 << 48) - 2)
_seeds = st.integers(min_value=0, max_value=(1 << 64) - 1)
_tails = st.integers(min_value=0, max_value=(1 << 32) - 1)


@given(st.lists(st.tuples(_millis, _seeds, _tails), min_size=1, max_size=200))
def test_ids_increase_whatever_the_clock_does(steps: list[tuple[int, int, int]]) -> None:
    # the clock may stand still, jump ahead or step back: each id is still above the last
    state = IdState(-1, 0)
    last = -1
    for now, seed, tail in steps:
        state = next_state(state, now, seed)
        value = uuid7_int(state, tail)
        made = uuid.UUID(int=value)
        assert made.version == 7 and made.variant == uuid.RFC_4122
        assert value > last
        assert (value >> 80) == state.millis >= now  # the timestamp is never behind the clock
        last = value


@given(_millis, _seeds, st.integers(min_value=1, max_value=50))
def test_a_full_counter_carries_into_the_next_millisecond(now: int, seed: int, extra: int) -> None:
    state = IdState(now, (1 << COUNTER_BITS) - extra)
    for _ in range(extra - 1):
        state = next_state(state, now, seed)
        assert state.millis == now
    carried = next_state(state, now, seed)
    assert carried.millis == now + 1
    assert uuid7_int(carried, 0) > uuid7_int(state, (1 << 32) - 1)


@given(_millis, _seeds)
def test_a_new_millisecond_leaves_the_counter_room_to_grow(now: int, seed: int) -> None:
    state = next_state(IdState(now - 1, 0), now, seed)
    assert state.counter < 1 << (COUNTER_BITS - 1)


def test_many_ids_in_one_millisecond_from_several_threads_are_unique_and_ordered() -> None:
    per_thread = 5000
    start = threading.Barrier(8)
    made: list[list[uuid.UUID]] = [[] for _ in range(8)]

    def make(into: list[uuid.UUID]) -> None:
        start.wait(timeout=30)
        into.extend(new_event_id() for _ in range(per_thread))

    threads = [threading.Thread(target=make, args=(ids,)) for ids in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()

    for ids in made:
        assert ids == sorted(ids, key=lambda i: i.int)  # each thread sees them increase
        assert len(set(ids)) == per_thread
    everything = [i for ids in made for i in ids]
    assert len(set(everything)) == len(everything)

    # Under the lock, one millisecond's ids take consecutive counter values whoever made
    # them: nothing was handed out twice and no increment was lost.
    counters: dict[int, list[int]] = defaultdict(list)
    owners: dict[int, set[int]] = defaultdict(set)
    for thread_index, ids in enumerate(made):
        for i in ids:
            counters[i.int >> 80].append(
                ((i.int >> 64) & 0xFFF) << 30 | (i.int >> 32) & (2**30 - 1)
            )
            owners[i.int >> 80].add(thread_index)
    for values in counters.values():
        values.sort()
        assert values == list(range(values[0], values[0] + len(values)))
    busiest = max(counters, key=lambda millis: len(counters[millis]))
    assert len(counters[busiest]) > 100  # many ids shared one millisecond ...
    assert any(len(threads_in) > 1 for threads_in in owners.values())  # ... across threads
