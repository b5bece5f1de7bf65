"""The relay's checkpoint rule: the lowest contiguous acknowledged position."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamsource.bridge import AckTracker


def test_out_of_order_acks_advance_only_over_a_contiguous_prefix() -> None:
    tracker = AckTracker(10)
    for position in (11, 13, 14, 20):
        tracker.sent(position)
    tracker.acked(14)
    tracker.acked(13)
    assert tracker.checkpoint == 10  # 11 is not acknowledged yet
    tracker.acked(11)
    assert tracker.checkpoint == 14
    assert tracker.in_flight == 1
    tracker.acked(20)
    assert tracker.checkpoint == 20
    assert tracker.in_flight == 0


def test_skipped_events_do_not_hold_the_checkpoint_back() -> None:
    tracker = AckTracker(0)
    tracker.skipped(1)
    assert tracker.checkpoint == 1
    tracker.sent(2)
    tracker.skipped(3)
    assert tracker.checkpoint == 1
    tracker.acked(2)
    assert tracker.checkpoint == 3


def test_positions_must_increase() -> None:
    tracker = AckTracker(5)
    with pytest.raises(ValueError):
        tracker.sent(5)
    tracker.sent(6)
    with pytest.raises(ValueError):
        tracker.skipped(6)


@given(
    st.lists(st.tuples(st.integers(1, 5), st.booleans()), min_size=1, max_size=60),
    st.randoms(use_true_random=False),
    st.integers(0, 60),
)
def test_the_checkpoint_never_passes_an_unacknowledged_event(
    steps: list[tuple[int, bool]],
    rng: random.Random,
    acks: int,
) -> None:
    tracker = AckTracker(0)
    position = 0
    sent: list[int] = []
    for gap, skip in steps:
        position += gap
        if skip:
            tracker.skipped(position)
        else:
            tracker.sent(position)
            sent.append(position)
    acked = set(rng.sample(sent, min(acks, len(sent))))
    order = list(acked)
    rng.shuffle(order)
    for p in order:
        tracker.acked(p)
    missing = [p for p in sent if p not in acked]
    if missing:
        assert tracker.checkpoint < min(missing)
        # everything below the first missing one was acknowledged or skipped: reached
        assert all(p <= tracker.checkpoint for p in sent if p < min(missing))
    else:
        assert tracker.checkpoint == position
