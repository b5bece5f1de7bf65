"""A connection's Produce answers, written to its socket by the log writer thread itself.

A Produce at acks=1 (or acks=all under ``--fsync interval``) is done once the writer thread
has appended it. Handing the answer back to the event loop only to write it there cost the
loop a wake-up per request (an eventfd write and read, an epoll return, a context switch,
a GIL hand-over) and a run of callbacks: for a one-record Produce, more CPU than the append
itself. So the writer encodes the answer and writes it to a duplicate of the socket's
descriptor (non-blocking, as the transport's), and the event loop hears of it only when it
needs to:

- Later answers on the connection must follow it. The loop counts the jobs it gave the
  lane (``_submitted``, loop only) and the writer those it finished (``_finished``, under
  ``_lock``); while they differ, anything else the loop writes there waits (``settled``,
  ``barrier``), and only such a wait asks the writer for a wake-up.
- A write the socket buffer cannot take whole is finished by the loop: the writer hands it
  the rest, then every later answer of the lane, in order, until the loop finds the lane
  idle and the transport's buffer empty (``_handing_off``).
- The duplicate descriptor (so that a socket closed meanwhile can never be confused with
  a new one) is closed by whichever side sees the lane idle and closed last.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from streamsource.kafka.broker.connection import FrameConnection
from streamsource.kafka.broker.log_writer import LogWriter

log = logging.getLogger(__name__)

Chunks = list[Any]
_IOV_MAX = 1024  # writev's limit on Linux: longer answers are joined first (rare)


class WriterLane:
    """Jobs on the log writer whose answers (``Chunks``, or None: no answer, acks=0) the
    writer writes to ``connection`` itself, in the order they were submitted."""

    def __init__(self, connection: FrameConnection) -> None:
        self._connection = connection
        self._loop = asyncio.get_running_loop()
        self._fd: int | None = None  # the socket's duplicate, from the first submit on
        self._lock = threading.Lock()
        self._submitted = 0
        self._finished = 0
        self._handing_off = False  # answers go through the loop until the lane is idle
        self._waiters: list[tuple[int, asyncio.Future[Any]]] = []  # (job count, future)
        self._closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The connection's event loop (what the writer wakes, when it must)."""
        return self._loop

    @property
    def backlog(self) -> int:
        """Jobs submitted and not yet answered."""
        return self._submitted - self._finished

    def submit(self, writer: LogWriter, job: Callable[[], Chunks | None]) -> None:
        """On the event loop: run ``job`` on ``writer``, then write its answer here.

        Only while nothing else is queued to be written on this connection (the caller,
        ``ResponseQueue.lane``, sees to it): the answer is the next bytes on it.
        """
        if self._fd is None:
            sock = self._connection.get_extra_info("socket")
            self._fd = os.dup(sock.fileno())
        if self._submitted == self._finished:  # idle: the writer is not looking
            self._handing_off = bool(self._connection.transport.get_write_buffer_size())
        self._submitted += 1
        writer.post(lambda: self._run(job))

    async def settled(self) -> None:
        """Return once every job submitted so far is answered (or its connection failed)."""
        await self.barrier()

    def barrier(self) -> asyncio.Future[Chunks]:
        """A future that resolves (to no chunks) once the jobs submitted so far are
        answered: a ``ResponseQueue`` entry that what follows waits behind."""
        future: asyncio.Future[Any] = self._loop.create_future()
        with self._lock:
            if self._finished >= self._submitted:
                future.set_result([])
            else:
                self._waiters.append((self._submitted, future))
        return future

    def close(self) -> None:
        """On the event loop, at the connection's end: the descriptor goes once idle."""
        with self._lock:
            self._closed = True
            fd = self._fd if self._finished == self._submitted else None
            if fd is not None:
                self._fd = None
        if fd is not None:
            os.close(fd)

    # -- on the log writer thread --------------------------------------------------------

    def _run(self, job: Callable[[], Chunks | None]) -> None:
        failed = False
        try:
            chunks = job()
        except Exception:
            log.exception("closing a connection: a produce failed in the log writer")
            chunks, failed = None, True
        with self._lock:
            fd = None if self._handing_off or failed else self._fd
        rest = chunks
        if fd is not None and chunks:
            try:
                rest = _write_some(fd, chunks)
            except OSError:  # the peer is gone: the loop closes the connection
                rest, failed = None, True
        if rest or failed:
            with self._lock:
                self._handing_off = True
            self._call_soon(self._finish_on_loop, rest, failed)
            return
        self._finished_one()

    def _finished_one(self) -> None:
        ready = self._count_finished(failed=False)
        if ready:
            self._call_soon(_wake, ready)

    def _count_finished(self, failed: bool) -> list[asyncio.Future[Any]]:
        """One more job answered (on either side): the waiters it satisfies; the socket's
        duplicate closed if it was the last job of a closed lane (``failed``: closed now,
        no later answer uses the socket)."""
        with self._lock:
            if failed:
                self._closed = True
            self._finished += 1
            ready = self._ready_waiters()
            fd = None
            if self._closed and self._finished == self._submitted:
                fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        return ready

    def _ready_waiters(self) -> list[asyncio.Future[Any]]:
        """Under ``_lock``: the waiters now satisfied, removed from the list."""
        if not self._waiters:
            return []
        done = self._finished
        ready = [future for count, future in self._waiters if count <= done]
        if ready:
            self._waiters = [(c, f) for c, f in self._waiters if c > done]
        return ready

    def _call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            pass  # the loop is closed: nobody waits for this any more

    # -- on the event loop ---------------------------------------------------------------

    def _finish_on_loop(self, rest: Chunks | None, failed: bool) -> None:
        """An answer (or its rest) the writer handed over, in the writer's order."""
        connection = self._connection
        if failed:
            connection.close()
        elif rest and not connection.is_closing():
            for chunk in rest:
                connection.write(chunk)
        _wake(self._count_finished(failed))


def _wake(futures: list[asyncio.Future[Any]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result([])  # a barrier's result: no chunks


def _write_some(fd: int, chunks: Chunks) -> Chunks:
    """Write what the non-blocking socket takes of ``chunks`` now; the rest (or [])."""
    if len(chunks) > _IOV_MAX:
        chunks = [b"".join(chunks)]
    try:
        sent = os.writev(fd, chunks)
    except BlockingIOError:
        return chunks
    for i, chunk in enumerate(chunks):
        size = len(chunk)
        if sent < size:
            return [memoryview(chunk)[sent:], *chunks[i + 1 :]]
        sent -= size
    return []
