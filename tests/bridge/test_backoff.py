"""The retry delay of the relay and the inbox consumer: a pure function, tested without sleeping."""

from __future__ import annotations

import pytest

import streamsource as ss
from streamsource.bridge import Backoff


def test_the_bound_doubles_from_base_up_to_the_cap() -> None:
    backoff = Backoff(base=0.1, cap=3.0)
    assert [backoff.bound(n) for n in range(7)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.6, 3.0, 3.0]
    )
    assert backoff.bound(10_000) == 3.0  # no float overflow after a long outage


def test_full_jitter_spreads_the_delay_over_zero_to_the_bound() -> None:
    backoff = Backoff(base=0.5, cap=8.0)
    assert backoff.delay(3, draw=0.0) == 0.0
    assert backoff.delay(3, draw=0.5) == pytest.approx(2.0)
    assert backoff.delay(3, draw=0.999) == pytest.approx(3.996)
    drawn = [backoff.delay(4) for _ in range(2000)]  # the default draw is random
    assert all(0.0 <= d < 8.0 for d in drawn)
    assert min(drawn) < 1.0 and max(drawn) > 7.0  # spread over the range, not one value
    assert len(set(drawn)) > 1900


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_bounds_that_make_no_sense_are_refused(base: float, cap: float) -> None:
    with pytest.raises(ss.InterfaceError, match="0 < base <= cap"):
        Backoff(base=base, cap=cap)
