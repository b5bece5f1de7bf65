"""Group commit: many acks=all produces, one fsync per partition.

With ``--fsync always`` an acks=all Produce is answered only once its batch is on disk.
Calling fsync per request would serialise every producer behind the disk; instead each
request marks its partitions dirty and waits, and a single flush round (run in a worker
thread so the event loop keeps reading requests) syncs every partition dirtied so far and
releases every request that was waiting when the round began. Requests arriving during a
round wait for the next one, which then covers all of them at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from streamsource.kafka.broker.partition import Partition

log = logging.getLogger(__name__)


class GroupFlusher:
    """Batches concurrent flush requests into rounds of one fsync per dirty partition."""

    def __init__(self) -> None:
        self._dirty: set[Partition] = set()
        self._waiters: list[asyncio.Future[None]] = []
        self._round: asyncio.Task[None] | None = None

    async def flush(self, partitions: Iterable[Partition]) -> None:
        """Return once everything appended to ``partitions`` so far is on disk."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._dirty.update(partitions)
        self._waiters.append(waiter)
        if self._round is None or self._round.done():
            self._round = loop.create_task(self._run_rounds())
        await waiter

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
