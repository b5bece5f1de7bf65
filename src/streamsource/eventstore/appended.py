"""In-process "an append committed" signals, so subscribers wake at once instead of polling.

The store facades call :func:`notify` after every successful append. Subscribers of the same
store in this process (same SQLite file, same memory recorder, ...) wait on the
:class:`AppendSignal` that :func:`signal_for` returns. Writers in *other* processes cannot
reach this signal: subscribers also wake every poll interval (SQLite) or on a PostgreSQL
NOTIFY, so this is an accelerator, never the only wakeup.

A signal counts appends. A waiter reads :attr:`AppendSignal.seq` *before* it looks for new
events and passes it to ``wait``, which returns at once if an append came in between: no
wakeup can be lost between "found nothing" and "started waiting".
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from typing import Any


class AppendSignal:
    """A counter of appends that threads and asyncio tasks can wait on."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._seq = 0
        self._futures: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()
        self._blocked = 0  # threads inside wait()

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
        for loop, future in futures:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                pass

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
_signals: dict[object, AppendSignal] = {}
_keys: weakref.WeakKeyDictionary[Any, object] = weakref.WeakKeyDictionary()


def signal_key(recorder: Any) -> object:
    """What identifies the store behind ``recorder`` within this process.

    A recorder may name it with a ``signal_key`` attribute; a file-backed recorder (one with
    a ``path``) is keyed by the file's real path, so two stores opened on the same file share
    a signal; a server store (PostgreSQL) by its connection settings and schema; an adapter with a ``recorder`` attribute (the threaded async one) by its inner
    recorder; anything else (memory) by its identity.
    """
    explicit = getattr(recorder, "signal_key", None)
    if explicit is not None:
        return explicit
    path = getattr(recorder, "path", None)
    if isinstance(path, str):
        return ("file", os.path.realpath(path))
    settings = getattr(recorder, "settings", None)  # a server store: its database and schema
    conninfo = getattr(settings, "conninfo", None)
    if isinstance(conninfo, str):
        return ("server", conninfo, getattr(settings, "schema", None))
    inner = getattr(recorder, "recorder", None)
    if inner is not None and inner is not recorder:
        return signal_key(inner)
    return ("object", id(recorder))


def _cached_key(recorder: Any) -> object:
    try:
        key = _keys.get(recorder)
    except TypeError:  # not weak-referenceable: compute each time
        return signal_key(recorder)
    if key is None:
        key = _keys[recorder] = signal_key(recorder)
    return key


def signal_for(recorder: Any) -> AppendSignal:
    """The signal that appends to ``recorder``'s store in this process set."""
    key = _cached_key(recorder)
    with _lock:
        signal = _signals.get(key)
        if signal is None:
            signal = _signals[key] = AppendSignal()
        return signal


def notify(recorder: Any) -> None:
    """Called by the store facades after an append to ``recorder`` committed."""
    if not _signals:  # nobody subscribes anywhere: the common case costs one test
        return
    signal = _signals.get(_cached_key(recorder))
    if signal is not None:
        signal.notify()
