"""The running objects whose levels the metrics collectors read when Prometheus scrapes.

Brokers, relays, projection runners and persistent subscriptions add themselves here when
they start (a weak reference: tracking never keeps one alive). Adding costs one set insert
per object, not per event, whether or not metrics are enabled, so that objects created
before ``enable_metrics`` are seen too.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Literal

Kind = Literal["broker", "relay", "projections", "subscription"]

_live: dict[Kind, weakref.WeakSet[Any]] = {
    "broker": weakref.WeakSet(),
    "relay": weakref.WeakSet(),
    "projections": weakref.WeakSet(),
    "subscription": weakref.WeakSet(),
}
_lock = threading.Lock()


def track(kind: Kind, obj: Any) -> None:
    """Have the collectors read ``obj`` while it lives."""
    with _lock:
        _live[kind].add(obj)


def untrack(kind: Kind, obj: Any) -> None:
    with _lock:
        _live[kind].discard(obj)


def live(kind: Kind) -> list[Any]:
    """The tracked objects of ``kind``, as a list (the set may change while we read it)."""
    with _lock:
        return list(_live[kind])
