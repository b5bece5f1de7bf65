"""In-process "an append committed" signals, so subscribers wake at once instead of polling.

The store facades call :func:`notify` after every successful append. Subscribers of the same
store in this process (same SQLite file, same memory recorder, ...: whatever the recorders
declare as their ``wakeups.key``) wait on the :class:`AppendSignal` that :func:`signal_for`
returns. Writers in *other* processes cannot reach this signal: subscribers also wake every
poll interval (SQLite) or on a PostgreSQL NOTIFY, so this is an accelerator, never the only
wakeup.

A signal counts appends. A waiter reads :attr:`AppendSignal.seq` *before* it looks for new
events and passes it to ``wait``, which returns at once if an append came in between: no
wakeup can be lost between "found nothing" and "started waiting".
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamsource.eventstore.recorder import AsyncRecorder, Recorder


class AppendSignal:
    """A counter of appends that threads and asyncio tasks can wait on."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._seq = 0
        self._futures: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()
        self._blocked = 0  # threads inside wait()
        self._events: set[threading.Event] = set()  # set on every append (see watch)

    @property
    def seq(self) -> int:
        """How many appends were signalled so far (read it before looking for events)."""
        return self._seq

    @property
    def waiting(self) -> int:
        """How many threads and asyncio tasks are waiting for the next append now."""
        with self._condition:
            return self._blocked + len(self._futures)

    def notify(self) -> None:
        """Record one append and wake every waiter."""
        with self._condition:
            self._seq += 1
            self._condition.notify_all()
            futures, self._futures = self._futures, set()
            events = list(self._events)
        for event in events:
            event.set()
        for loop, future in futures:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                pass

    def watch(self, event: threading.Event) -> None:
        """Set ``event`` on every append from now on (until :meth:`unwatch`): how one thread
        waits for the appends of several stores at once."""
        with self._condition:
            self._events.add(event)

    def unwatch(self, event: threading.Event) -> None:
        with self._condition:
            self._events.discard(event)

    def wait(self, seen: int, timeout: float) -> bool:
        """Block until :attr:`seq` differs from ``seen`` or ``timeout`` passes; True if it did."""
        with self._condition:
            self._blocked += 1
            try:
                return self._condition.wait_for(lambda: self._seq != seen, timeout)
            finally:
                self._blocked -= 1

    async def wait_async(self, seen: int, timeout: float) -> bool:
        """The asyncio form of :meth:`wait` (no thread is blocked while waiting)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._condition:
            if self._seq != seen:
                return True
            self._futures.add(entry)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return True
        except TimeoutError:
            return self._seq != seen
        finally:
            with self._condition:
                self._futures.discard(entry)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_lock = threading.Lock()
_signals: dict[Hashable, AppendSignal] = {}


def signal_for(recorder: Recorder | AsyncRecorder) -> AppendSignal:
    """The signal that appends to ``recorder``'s store in this process set: one per store,
    as the recorder declares it (``recorder.wakeups.key``)."""
    key = recorder.wakeups.key
    with _lock:
        signal = _signals.get(key)
        if signal is None:
            signal = _signals[key] = AppendSignal()
        return signal


def notify(recorder: Recorder | AsyncRecorder) -> None:
    """Called by the store facades after an append to ``recorder`` committed."""
    if not _signals:  # nobody subscribes anywhere: the common case costs one test
        return
    signal = _signals.get(recorder.wakeups.key)
    if signal is not None:
        signal.notify()
