"""How long the relay and the inbox consumer wait before trying a retriable fault again.

Capped exponential backoff with full jitter (the delay is drawn uniformly between 0 and
``min(cap, base * 2**attempt)``): many relays or consumers hit by the same outage spread
their retries instead of hammering the recovering broker or database in step. A pure
function of the attempt number and a random draw, so it is tested without sleeping.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from streamsource.errors import InterfaceError


@dataclass(frozen=True, slots=True)
class Backoff:
    """``base`` seconds for the first retry's bound, doubling per attempt up to ``cap``."""

    base: float = 0.1
    cap: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.base <= self.cap:
            raise InterfaceError(f"backoff needs 0 < base <= cap, got {self.base} and {self.cap}")

    def bound(self, attempt: int) -> float:
        """The longest delay before retry number ``attempt`` (0 for the first)."""
        # capped exponent: 2.0**1100 would overflow a float
        return min(self.cap, self.base * 2.0 ** min(attempt, 64))

    def delay(self, attempt: int, draw: float | None = None) -> float:
        """The delay before retry ``attempt``; ``draw`` in [0, 1) (default: a random one)."""
        if draw is None:
            draw = random.random()
        return draw * self.bound(attempt)
