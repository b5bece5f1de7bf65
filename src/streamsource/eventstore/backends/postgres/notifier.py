"""Append wakeups for other processes: ``NOTIFY streamsource_appended, '<schema>'``.

Sent after the append committed, off the caller's path and coalesced: the first append
after a quiet spell is announced at once, then at most one NOTIFY every :data:`MIN_INTERVAL`
seconds however many appends there are (one per append cost a round trip each: sequential
appends ran at half speed), so cross-process subscribers wake within milliseconds of a lone
append and at most ``MIN_INTERVAL`` behind a steady stream of them. Closing the recorder
sends the NOTIFY still owed for its last appends (a writer that exits right after appending
must not leave other processes' subscribers to their next poll).

Not inside the append's transaction: a NOTIFY there takes PostgreSQL's cluster-wide notify
lock from before COMMIT until after it, which serialises every writer's commit and fsync
(measured with 16 writers: ~2,700 appends/s fell to ~700). Not on a pooled connection
either: the pool hands its idle connections out in turn, so one borrowed for a NOTIFY made a
single writer alternate between two server processes (one-event appends measured 0.70x the
raw INSERT+COMMIT floor on one connection, 0.61x alternating). The notifier keeps a
connection of its own, opened on first use.

Subscribers also poll, so a NOTIFY lost to a failure only delays them.
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import TYPE_CHECKING

import psycopg

from streamsource.errors import ProgrammingError
from streamsource.eventstore.recorder import Listen, Wakeups

if TYPE_CHECKING:
    from .settings import Settings

CHANNEL = "streamsource_appended"
"""The LISTEN channel; the payload is the store's schema."""

MIN_INTERVAL = 0.05
"""Seconds between two NOTIFYs of one recorder (appends in between share the later one).

Each NOTIFY is a transaction on the server and a wakeup of the notifier: one-event appends
measured 0.79x the raw INSERT+COMMIT floor with 5 ms, 0.84x with 50 ms, 0.90x without any."""

_CLOSE_WAIT = 5.0  # seconds close() waits for a NOTIFY in flight (a hung server: give up)
_SAFE_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def wakeups_of(settings: Settings) -> Wakeups:
    """What a recorder on ``settings`` declares: the store is its database and schema, and
    subscribers LISTEN for the NOTIFYs that :class:`Notifier` sends for it."""
    return Wakeups(
        key=("postgresql", settings.conninfo, settings.schema),
        listen=Listen(settings.conninfo, CHANNEL, settings.schema),
    )


def notify_statement(schema: str) -> bytes:
    """The NOTIFY for ``schema``, in a transaction of its own that does not wait for fsync.

    A NOTIFY is a transaction with an id, so its COMMIT is a WAL flush like an append's;
    nobody needs it durable (a lost wakeup only delays subscribers until their poll). No
    parameters, so psycopg sends it with the simple protocol, all four statements in one
    round trip. ``schema`` is a validated lower-case SQL name (see ``settings``).
    """
    if not _SAFE_NAME.fullmatch(schema):  # inlined in SQL: never anything but a plain name
        raise ProgrammingError(f"not a plain schema name: {schema!r}")
    return (
        "BEGIN; SET LOCAL synchronous_commit TO off;"
        f" SELECT pg_notify('{CHANNEL}', '{schema}'); COMMIT"
    ).encode()


class Notifier:
    """A daemon thread that sends one NOTIFY after each burst of :meth:`appended` calls."""

    def __init__(self, conninfo: str, schema: str) -> None:
        self._conninfo = conninfo
        self._schema = schema
        self._statement = notify_statement(schema)
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._appends = 0  # appends signalled so far
        self._announced = 0  # appends covered by a NOTIFY that was sent
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def appended(self) -> None:
        """Called after a commit: make sure a NOTIFY follows."""
        with self._lock:
            self._appends += 1
        self._wanted.set()
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._closed:
                    self._thread = threading.Thread(
                        target=self._run, name=f"streamsource-notify-{self._schema}", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()  # appends from here on get the next NOTIFY
                closing = self._closed  # read after the clear: a close() now sets it again
                # On close, only appends not announced yet need a last NOTIFY.
                if not closing or self._unannounced():
                    self._send()
                if closing:
                    return
                self._stopping.wait(MIN_INTERVAL)  # the pause between NOTIFYs; close() ends it
        finally:
            if self._conn is not None:
                self._conn.close()

    def _unannounced(self) -> bool:
        with self._lock:
            return self._appends != self._announced

    def _send(self) -> None:
        with self._lock:
            appends = self._appends
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._conninfo, autocommit=True)
            self._conn.execute(self._statement)
        except psycopg.Error:  # the server is away: they poll; reconnect next time
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            return
        with self._lock:
            self._announced = appends

    def close(self) -> None:
        """Stop the thread, after a last NOTIFY if appends since the previous one need it."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wanted.set()
        self._stopping.set()
        if thread is not None:
            thread.join(timeout=_CLOSE_WAIT)


class AsyncNotifier:
    """The asyncio form of :class:`Notifier`: a task instead of a thread.

    Closing never cancels the task in the middle of a NOTIFY: a query cancelled on an async
    psycopg connection makes psycopg cancel it on the server over a new connection, which
    under load took longer than close() was willing to wait, leaving the task running while
    the store closed. The task is asked to stop and finishes its NOTIFY (and the last one
    owed) by itself.
    """

    def __init__(self, conninfo: str, schema: str) -> None:
        self._conninfo = conninfo
        self._schema = schema
        self._statement = notify_statement(schema)
        self._wanted = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._appends = 0  # appends signalled so far
        self._announced = 0  # appends covered by a NOTIFY that was sent
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    def appended(self) -> None:
        """Called after a commit: make sure a NOTIFY follows."""
        self._appends += 1
        self._wanted.set()
        if self._task is None and not self._closing.is_set():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                await self._wanted.wait()
                self._wanted.clear()
                closing = self._closing.is_set()
                if not closing or self._appends != self._announced:
                    await self._send()
                if closing:
                    return
                try:  # the pause between two NOTIFYs, cut short by close()
                    await asyncio.wait_for(self._closing.wait(), MIN_INTERVAL)
                except TimeoutError:
                    pass
        finally:
            if self._conn is not None:
                await self._conn.close()

    async def _send(self) -> None:
        appends = self._appends
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            await self._conn.execute(self._statement)
        except psycopg.Error:  # the server is away: they poll; reconnect next time
            if self._conn is not None:
                await self._conn.close()
                self._conn = None
            return
        self._announced = appends

    async def close(self) -> None:
        """Stop the task, after a last NOTIFY if appends since the previous one need it."""
        self._closing.set()
        self._wanted.set()
        task = self._task
        if task is None:
            return
        await asyncio.wait({task}, timeout=_CLOSE_WAIT)
        if not task.done():  # the server hangs: give up on the wakeup (subscribers poll)
            task.cancel()
            await asyncio.wait({task}, timeout=1)
