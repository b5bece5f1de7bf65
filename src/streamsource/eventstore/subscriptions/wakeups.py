"""How a caught-up subscriber learns that new events may be there.

Three sources, all feeding the store's in-process :class:`~streamsource.eventstore.appended.AppendSignal`
or bounding the wait on it:

* appends made through a store facade in this process notify the signal directly;
* on PostgreSQL, a listener thread (one per database, started on first use) turns
  ``NOTIFY`` messages from any process into notifications of the same signal;
* everything else (another process appending to the same SQLite file) is seen by the
  poll that ends each wait: a subscriber never waits longer than its poll interval.
"""

from __future__ import annotations

from typing import Any

from streamsource.eventstore.appended import AppendSignal, signal_for, signal_key

LOCAL_POLL_INTERVAL = 0.2
"""Seconds between polls of a file store, where other processes may append unseen."""

NOTIFIED_POLL_INTERVAL = 2.0
"""Seconds between polls of a store whose every append is signalled in process (memory)."""

LISTENING_POLL_INTERVAL = 1.0
"""Seconds between polls of a PostgreSQL store: NOTIFY wakes subscribers, but an event can
stay invisible behind an older transaction that is not an append (no NOTIFY at its end)."""


def _is_postgres(recorder: Any) -> bool:
    return type(recorder).__module__.startswith("streamsource.eventstore.backends.postgres")


def _inner(recorder: Any) -> Any:
    inner = getattr(recorder, "recorder", None)
    return recorder if inner is None or inner is recorder else _inner(inner)


def wakeup_for(recorder: Any) -> tuple[AppendSignal, float]:
    """The signal to wait on for ``recorder``'s store and the longest wait between polls."""
    signal = signal_for(recorder)
    inner = _inner(recorder)
    if _is_postgres(inner):
        from streamsource.eventstore.subscriptions import pg_listen

        if pg_listen.start_listener(inner, signal):
            return signal, LISTENING_POLL_INTERVAL
        return signal, LOCAL_POLL_INTERVAL
    key = signal_key(recorder)
    if isinstance(key, tuple) and key and key[0] == "object":
        return signal, NOTIFIED_POLL_INTERVAL  # in-memory: only this process can append
    return signal, LOCAL_POLL_INTERVAL
