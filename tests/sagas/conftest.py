"""Fixtures of the saga tests: a clock the test moves (deadlines are measured against it,
so no test sleeps for one). Stores of each backend come from ``store_url_factory`` and
``open_store`` in ``tests/conftest.py``."""

from __future__ import annotations

import pytest


class Clock:
    """Seconds since the epoch, as the test sets them."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()
