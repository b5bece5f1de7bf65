"""How a caught-up subscriber learns that new events may be there.

Three sources, all feeding the store's in-process :class:`~streamsource.eventstore.appended.AppendSignal`
or bounding the wait on it:

* appends made through a store facade in this process notify the signal directly;
* where the recorder declares a NOTIFY to LISTEN for (PostgreSQL), a listener thread (one
  per store, started on first use) turns those from any process into notifications of the
  same signal;
* everything else (another process appending to the same SQLite file) is seen by the
  poll that ends each wait: a subscriber never waits longer than its poll interval.

What a store offers comes from its recorder's declared ``wakeups``
(:class:`~streamsource.eventstore.recorder.Wakeups`) and nothing else.
"""

from __future__ import annotations

from streamsource.eventstore.appended import AppendSignal, signal_for
from streamsource.eventstore.recorder import AsyncRecorder, Recorder

LOCAL_POLL_INTERVAL = 0.2
"""Seconds between polls of a file store, where other processes may append unseen."""

NOTIFIED_POLL_INTERVAL = 2.0
"""Seconds between polls of a store whose every append is signalled in process (memory)."""

LISTENING_POLL_INTERVAL = 1.0
"""Seconds between polls of a PostgreSQL store: NOTIFY wakes subscribers, but an event can
stay invisible behind an older transaction that is not an append (no NOTIFY at its end)."""


def wakeup_for(recorder: Recorder | AsyncRecorder) -> tuple[AppendSignal, float]:
    """The signal to wait on for ``recorder``'s store and the longest wait between polls."""
    signal = signal_for(recorder)
    wakeups = recorder.wakeups
    if wakeups.listen is not None:
        from streamsource.eventstore.subscriptions import pg_listen

        pg_listen.start_listener(recorder, wakeups.listen, signal)
        return signal, LISTENING_POLL_INTERVAL
    if wakeups.only_this_process:
        return signal, NOTIFIED_POLL_INTERVAL
    return signal, LOCAL_POLL_INTERVAL
