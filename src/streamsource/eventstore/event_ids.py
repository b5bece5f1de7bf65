"""Default event ids: UUID version 7 (RFC 9562), strictly increasing within a process.

The first 48 bits are the Unix time in milliseconds, so ids made one after the other sort
together and the B-tree indexes keyed on event ids (the stores' unique index, the bridge's
inboxes) grow at their right edge instead of dirtying one random page per event as version 4
ids do. Measured with SQLite: appends of 100 events took a third less CPU (15 -> 10 us an
event) and the bridge's inbox less than half (25 -> 11 us an event).

Within one millisecond the ids are kept in order by RFC 9562's method 1, a dedicated counter:
42 bits (the 12 of ``rand_a`` and the top 30 of ``rand_b``), seeded at random for each new
millisecond with its top bit clear so increments have room, then incremented once per id. The
remaining 32 bits are random for every id, so two processes seeded alike still differ. If
the counter runs out, or the clock steps back, the timestamp is carried forward past the
last one used (RFC 9562 section 6.2 allows this), so ids never go backwards.

:func:`next_state` is the pure core (tested with hypothesis); :class:`EventIdGenerator`
adds the clock, the randomness and a lock, so threads share one ordered sequence.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import NamedTuple

COUNTER_BITS = 42
_COUNTER_LIMIT = 1 << COUNTER_BITS
_SEED_BITS = COUNTER_BITS - 1  # a fresh counter leaves its top bit clear: room for 2**41 ids
_TAIL_BITS = 32  # random bits of rand_b below the counter's 30
_VERSION_7 = 0x7 << 76
_VARIANT = 0b10 << 62
_MAX_MILLIS = (1 << 48) - 1


class IdState(NamedTuple):
    """The last timestamp and counter used; ``IdState(-1, 0)`` before the first id."""

    millis: int
    counter: int


def next_state(state: IdState, now_millis: int, seed: int) -> IdState:
    """The timestamp and counter of the next id, given the clock and a random ``seed``.

    A later millisecond starts a fresh counter from the low 41 bits of ``seed``; the same or
    an earlier one (a clock stepped back) increments the last counter, and an exhausted
    counter moves to the next millisecond. The result is always greater than ``state``.
    """
    if now_millis > state.millis:
        return IdState(now_millis, seed & ((1 << _SEED_BITS) - 1))
    counter = state.counter + 1
    if counter < _COUNTER_LIMIT:
        return IdState(state.millis, counter)
    return IdState(state.millis + 1, seed & ((1 << _SEED_BITS) - 1))


def uuid7_int(state: IdState, tail: int) -> int:
    """The 128-bit value of the UUIDv7 for ``state`` with 32 random bits ``tail``."""
    counter = state.counter
    return (
        (state.millis & _MAX_MILLIS) << 80
        | _VERSION_7
        | (counter >> 30) << 64  # rand_a: the counter's top 12 bits
        | _VARIANT
        | (counter & ((1 << 30) - 1)) << _TAIL_BITS  # rand_b: its low 30 bits ...
        | (tail & ((1 << _TAIL_BITS) - 1))  # ... then 32 random bits
    )


class EventIdGenerator:
    """Thread-safe source of UUIDv7 ids, each greater than the one before it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = IdState(-1, 0)

    def reset_lock(self) -> None:
        """A new lock, for a forked child (the parent's may have been held mid-fork)."""
        self._lock = threading.Lock()

    def __call__(self) -> uuid.UUID:
        random = int.from_bytes(os.urandom(10))
        now = time.time_ns() // 1_000_000
        with self._lock:
            state = self._state = next_state(self._state, now, random >> _TAIL_BITS)
        return uuid.UUID(int=uuid7_int(state, random))


_default = EventIdGenerator()
os.register_at_fork(after_in_child=_default.reset_lock)


def new_event_id() -> uuid.UUID:
    """A new event id: a UUID version 7, ordered by creation time and, within one process, by
    creation order (see the module docstring)."""
    return _default()
