"""Append wakeups for other processes: ``NOTIFY streamsource_appended, '<schema>'``.

Sent after the append committed, off the caller's path and coalesced: at most one NOTIFY
every :data:`MIN_INTERVAL` seconds however many appends there are (one per append cost a
round trip each: sequential appends ran at half speed), so cross-process subscribers wake
within a few milliseconds. Not inside the append's transaction: a NOTIFY
there takes PostgreSQL's cluster-wide notify lock from before COMMIT until after it, which
serialises every writer's commit and fsync (measured with 16 writers: ~2,700 appends/s fell
to ~700). Subscribers also poll, so a NOTIFY lost to a failure only delays them.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

CHANNEL = "streamsource_appended"
"""The LISTEN channel; the payload is the store's schema."""

NOTIFY = f"SELECT pg_notify('{CHANNEL}', %s)"

_POOL_WAIT = 1.0  # seconds to wait for a pooled connection before giving this wakeup up

MIN_INTERVAL = 0.005
"""Seconds between two NOTIFYs of one recorder (appends in between share the later one)."""


class Notifier:
    """A daemon thread that sends one NOTIFY after each burst of :meth:`appended` calls."""

    def __init__(self, pool: Any, schema: str) -> None:
        self._pool = pool
        self._schema = schema
        self._wanted = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def appended(self) -> None:
        """Called after a commit: make sure a NOTIFY follows."""
        self._wanted.set()
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._closed:
                    self._thread = threading.Thread(
                        target=self._run, name=f"streamsource-notify-{self._schema}", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        pause = threading.Event()  # never set: a sleep that close() need not interrupt
        while True:
            self._wanted.wait()
            if self._closed:
                return
            self._wanted.clear()  # appends from here on get the next NOTIFY
            try:
                with self._pool.connection(timeout=_POOL_WAIT) as conn:
                    conn.execute(NOTIFY, (self._schema,))
            except Exception:  # the pool is closing or the server is away: they poll
                pass
            pause.wait(MIN_INTERVAL)

    def close(self) -> None:
        """Stop the thread (a NOTIFY in flight finishes first)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wanted.set()
        if thread is not None:
            thread.join(timeout=5)


class AsyncNotifier:
    """The asyncio form of :class:`Notifier`: a task instead of a thread."""

    def __init__(self, pool: Any, schema: str) -> None:
        self._pool = pool
        self._schema = schema
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def appended(self) -> None:
        self._wanted.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            try:
                async with self._pool.connection(timeout=_POOL_WAIT) as conn:
                    await conn.execute(NOTIFY, (self._schema,))
            except Exception:  # the pool is closing or the server is away: they poll
                pass
            await asyncio.sleep(MIN_INTERVAL)

    async def close(self) -> None:
        """Stop the task; never waits more than a moment (closing must not hang)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=2)
