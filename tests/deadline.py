"""The one way tests wait: every poll loop has a deadline, and says what it waited for.

A deadline turns a hang into a failure naming what never happened; it measures nothing
(no test asserts how fast something was). Import it as ``from deadline import ...``
(``tests/`` is on the path, as for ``pg_server``)::

    wait_until(lambda: consumer.assignment(), what="an assignment")   # returns the value

    deadline = Deadline(30, "200 records")
    while len(got) < 200:
        deadline.check()              # AssertionError once the 30 s are gone
        got += poll(timeout=deadline.slice(0.2))
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0


class Deadline:
    """A point in monotonic time after which waiting for ``what`` is a failure."""

    def __init__(self, seconds: float = DEFAULT_TIMEOUT, what: str = "") -> None:
        self.seconds = seconds
        self.what = what
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left (0 once passed)."""
        return max(0.0, self._end - time.monotonic())

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self._end

    def check(self) -> None:
        """Raise ``AssertionError`` naming what never happened, once the deadline passed."""
        if self.passed:
            raise AssertionError(f"gave up after {self.seconds:g}s waiting for {self.what}")

    def slice(self, at_most: float) -> float:
        """A timeout for one blocking call: ``at_most``, or what is left if that is less."""
        return min(at_most, self.remaining())


def wait_until(
    probe: Callable[[], T],
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "",
    interval: float = 0.02,
) -> T:
    """Call ``probe`` until it returns something truthy, and return that.

    Raises ``AssertionError`` after ``timeout`` seconds. ``interval`` is the pause between
    calls (a poll, not a synchronisation: nothing relies on its length).
    """
    deadline = Deadline(timeout, what or getattr(probe, "__name__", "a condition"))
    while True:
        value = probe()
        if value:
            return value
        deadline.check()
        time.sleep(min(interval, deadline.remaining()))
