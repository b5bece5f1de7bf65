"""Read-your-writes for ``read_all`` and ``head_position`` on one recorder.

Reads of the global log stop below the oldest transaction still running anywhere on the
server (see :mod:`.queries`). The recorder's own :mod:`.notifier` runs such a transaction
right after an append (a NOTIFY takes a transaction id at commit), so without this an
``append`` followed at once by ``read_all`` on the same store could miss the event it just
wrote. Before reading the log, a recorder whose own appends are ahead of what it last saw
settled re-reads the settled head for a short while; another client's long transaction
still holds the log back once :data:`WAIT` has passed (the documented settled-log rule).
"""

from __future__ import annotations

import threading

WAIT = 1.0
"""Seconds a log read waits for the recorder's own appends to settle before reading anyway."""

PAUSE = 0.001
"""Seconds between two reads of the settled head while waiting."""


class OwnWrites:
    """The highest position this recorder appended, and the highest it has seen settled."""

    __slots__ = ("_lock", "seen", "written")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.written = 0
        self.seen = 0

    def wrote(self, position: int) -> None:
        with self._lock:
            if position > self.written:
                self.written = position

    def ahead(self) -> int:
        """The position a log read should wait for, or 0 when nothing is pending."""
        written = self.written
        return written if written > self.seen else 0

    def settled(self, position: int) -> None:
        """Reads need not wait for anything up to ``position`` again (seen, or given up on)."""
        with self._lock:
            if position > self.seen:
                self.seen = position
