"""PostgreSQL LISTEN/NOTIFY wakeups: one listener thread per store feeds its append signal.

After an append commits, the recorder that made it sends ``NOTIFY streamsource_appended,
'<schema>'`` (from a background thread or task, coalesced, and once more when it closes: see
:mod:`streamsource.eventstore.backends.postgres.notifier`). One thread per store (database
and schema) in this process listens on its own connection and notifies the store's
:class:`~streamsource.eventstore.appended.AppendSignal`, so subscribers wake for appends made
by any process. The thread reconnects after a lost connection (subscribers poll meanwhile)
and ends once every recorder of that store in this process is closed or gone.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from streamsource.eventstore.appended import AppendSignal

CHANNEL = "streamsource_appended"  # the channel of ..backends.postgres.notifier

RECONNECT_DELAY = 1.0
"""Seconds between attempts to re-establish a lost LISTEN connection."""

_lock = threading.Lock()
_listeners: dict[tuple[str, str], _Listener] = {}


class _Listener:
    def __init__(self, conninfo: str, schema: str, signal: AppendSignal) -> None:
        self.conninfo = conninfo
        self.schema = schema
        self.signal = signal
        self.recorders: weakref.WeakSet[Any] = weakref.WeakSet()
        self.thread = threading.Thread(
            target=self.run, name=f"streamsource-listen-{schema}", daemon=True
        )

    def wanted(self) -> bool:
        return any(not getattr(r, "_closed", False) for r in list(self.recorders))

    def run(self) -> None:
        import psycopg

        try:
            while self.wanted():
                try:
                    with psycopg.connect(self.conninfo, autocommit=True) as conn:
                        conn.execute(f"LISTEN {CHANNEL}")
                        self.signal.notify()  # events may have come while we were not listening
                        while self.wanted():
                            for note in conn.notifies(timeout=1.0):
                                if note.payload == self.schema:
                                    self.signal.notify()
                except psycopg.Error:
                    threading.Event().wait(RECONNECT_DELAY)
        finally:
            with _lock:
                if _listeners.get((self.conninfo, self.schema)) is self:
                    del _listeners[(self.conninfo, self.schema)]


def start_listener(recorder: Any, signal: AppendSignal) -> bool:
    """Make sure a thread turns NOTIFYs of ``recorder``'s store into ``signal``; True if so."""
    settings = getattr(recorder, "settings", None)
    conninfo = getattr(settings, "conninfo", None)
    schema = getattr(settings, "schema", None)
    if not isinstance(conninfo, str) or not isinstance(schema, str):
        return False
    with _lock:
        listener = _listeners.get((conninfo, schema))
        if listener is None or not listener.thread.is_alive():
            listener = _listeners[(conninfo, schema)] = _Listener(conninfo, schema, signal)
            listener.recorders.add(recorder)
            listener.thread.start()
        else:
            listener.recorders.add(recorder)
    return True
