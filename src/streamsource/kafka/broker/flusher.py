"""Group commit: many acks=all produces, one fsync per partition; and the interval flush.

With ``--fsync always`` an acks=all Produce is answered only once its batch is on disk.
Calling fsync per request would serialise every producer behind the disk; instead each
request marks its partitions dirty and waits, and a single flush round (run in a worker
thread so the event loop keeps reading requests) syncs every partition dirtied so far and
releases every request that was waiting when the round began. Requests arriving during a
round wait for the next one, which then covers all of them at once.

Every append is also on disk within ``interval_s`` (``--flush-interval-ms``), whatever the
acks: ``appended`` starts one timer for the first append after a flush, and the round it
fires covers every partition appended to meanwhile, and every other broker file written
without an fsync of its own meanwhile (``written``: the transaction log under ``--fsync
interval``). An idle broker has no timer at all (a fixed one-second tick cost CPU and a
thread hop forever, data or not). The log writer notes its own appends
(``appended_from_thread``): it wakes the event loop only to start that timer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from typing import Protocol

from streamsource.kafka.broker.partition import Partition

log = logging.getLogger(__name__)


class Syncable(Protocol):
    """A file with writes of its own to make durable (``KeyedLog``)."""

    async def sync(self) -> None: ...


class GroupFlusher:
    """Batches concurrent flush requests into rounds of one fsync per dirty partition."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self._dirty: set[Partition] = set()
        self._waiters: list[asyncio.Future[None]] = []
        self._round: asyncio.Task[None] | None = None
        # _appended and _timer change under _lock: the log writer notes appends too
        self._lock = threading.Lock()
        self._appended: set[Partition] = set()  # since the interval timer was started
        self._written: set[Syncable] = set()  # likewise
        self._timer: asyncio.TimerHandle | None = None
        self._timer_asked = False  # by the log writer, from its thread
        self._interval_round: asyncio.Task[None] | None = None

    async def flush(self, partitions: Iterable[Partition]) -> None:
        """Return once everything appended to ``partitions`` so far is on disk."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._dirty.update(partitions)
        self._waiters.append(waiter)
        if self._round is None or self._round.done():
            self._round = loop.create_task(self._run_rounds())
        await waiter

    def appended(self, partitions: Iterable[Partition]) -> None:
        """Note appends (on the event loop): they are flushed within ``interval_s``."""
        with self._lock:
            self._appended.update(partitions)
        self._start_timer()

    def appended_from_thread(
        self, partitions: Iterable[Partition], loop: asyncio.AbstractEventLoop
    ) -> None:
        """``appended``, from another thread (the log writer): one wake-up of ``loop`` to
        start the timer if it is not running, none otherwise."""
        with self._lock:
            self._appended.update(partitions)
            if self._timer is not None or self._timer_asked:
                return
            self._timer_asked = True
        try:
            loop.call_soon_threadsafe(self._start_asked_timer)
        except RuntimeError:
            pass  # the loop is closed: the broker's close flushes every log

    def _start_asked_timer(self) -> None:
        with self._lock:
            self._timer_asked = False
        self._start_timer()

    def written(self, file: Syncable) -> None:
        """Note a write to ``file`` (on the event loop): it is synced within ``interval_s``."""
        self._written.add(file)
        self._start_timer()

    def _start_timer(self) -> None:
        with self._lock:
            if self._timer is None and (self._appended or self._written):
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(self.interval_s, self._interval_due)

    @property
    def timer_pending(self) -> bool:
        """Whether an interval flush is scheduled (appends not yet flushed)."""
        return self._timer is not None

    def stop(self) -> None:
        """Cancel the interval timer (the broker's close flushes every log anyway)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if self._interval_round is not None:
            self._interval_round.cancel()

    def _interval_due(self) -> None:
        with self._lock:
            self._timer = None
            partitions, self._appended = self._appended, set()
        files, self._written = self._written, set()
        self._interval_round = asyncio.get_running_loop().create_task(
            self._flush_interval(partitions, files)
        )

    async def _flush_interval(self, partitions: set[Partition], files: set[Syncable]) -> None:
        try:
            if partitions:
                await self.flush(partitions)
        except Exception:
            log.exception("periodic flush failed")
            self.appended(p for p in partitions if not p.closed)  # tried again in an interval
        for file in files:
            try:
                await file.sync()
            except Exception:
                log.exception("periodic sync failed")
                self.written(file)

    async def _run_rounds(self) -> None:
        while self._waiters:
            dirty, self._dirty = self._dirty, set()
            waiters, self._waiters = self._waiters, []
            try:
                await asyncio.to_thread(_flush_each, [p for p in dirty if not p.closed])
            except BaseException as exc:
                log.error("flush failed: %s", exc)
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(exc if isinstance(exc, Exception) else OSError(exc))
                if not isinstance(exc, Exception):
                    raise
            else:
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)


def _flush_each(partitions: list[Partition]) -> None:
    for partition in partitions:
        partition.log.flush()
        partition.txns.flush()
