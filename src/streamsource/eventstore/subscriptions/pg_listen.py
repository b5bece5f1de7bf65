"""PostgreSQL LISTEN/NOTIFY wakeups: one listener thread per store feeds its append signal.

After an append commits, the recorder that made it sends the NOTIFY its ``wakeups.listen``
declares (``NOTIFY streamsource_appended, '<schema>'``, from a background thread or task,
coalesced, and once more when it closes: see
:mod:`streamsource.eventstore.backends.postgres.notifier`). One thread per declared
:class:`~streamsource.eventstore.recorder.Listen` (database and schema) in this process listens on its own connection and notifies the store's
:class:`~streamsource.eventstore.appended.AppendSignal`, so subscribers wake for appends made
by any process. The thread reconnects after a lost connection (subscribers poll meanwhile)
and ends once every recorder of that store in this process is closed or gone.
"""

from __future__ import annotations

import re
import threading
import weakref

from streamsource.errors import ProgrammingError
from streamsource.eventstore.appended import AppendSignal
from streamsource.eventstore.recorder import AsyncRecorder, Listen, Recorder

RECONNECT_DELAY = 1.0
"""Seconds between attempts to re-establish a lost LISTEN connection."""

_SAFE_NAME = re.compile(r"[a-z_][a-z0-9_]*")

_lock = threading.Lock()
_listeners: dict[Listen, _Listener] = {}


class _Listener:
    def __init__(self, listen: Listen, signal: AppendSignal) -> None:
        self.listen = listen
        self.signal = signal
        self.recorders: weakref.WeakSet[Recorder | AsyncRecorder] = weakref.WeakSet()
        self.thread = threading.Thread(
            target=self.run, name=f"streamsource-listen-{listen.payload}", daemon=True
        )

    def wanted(self) -> bool:
        return any(not r.closed for r in list(self.recorders))

    def run(self) -> None:
        import psycopg

        listen = self.listen
        try:
            while self.wanted():
                try:
                    with psycopg.connect(listen.conninfo, autocommit=True) as conn:
                        conn.execute(f"LISTEN {listen.channel}")
                        self.signal.notify()  # events may have come while we were not listening
                        while self.wanted():
                            for note in conn.notifies(timeout=1.0):
                                if note.payload == listen.payload:
                                    self.signal.notify()
                except psycopg.Error:
                    threading.Event().wait(RECONNECT_DELAY)
        finally:
            with _lock:
                if _listeners.get(listen) is self:
                    del _listeners[listen]


def start_listener(
    recorder: Recorder | AsyncRecorder, listen: Listen, signal: AppendSignal
) -> None:
    """Make sure a thread turns the NOTIFYs ``listen`` names into ``signal`` while
    ``recorder`` (or another recorder of the same store in this process) is open."""
    if not _SAFE_NAME.fullmatch(listen.channel):  # inlined in SQL: never anything but a name
        raise ProgrammingError(f"not a plain LISTEN channel name: {listen.channel!r}")
    with _lock:
        listener = _listeners.get(listen)
        if listener is None or not listener.thread.is_alive():
            listener = _listeners[listen] = _Listener(listen, signal)
            listener.recorders.add(recorder)
            listener.thread.start()
        else:
            listener.recorders.add(recorder)
