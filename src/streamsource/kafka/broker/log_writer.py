"""The thread that changes partition logs and the topic list, so the event loop never does.

Appends, topic creation and deletion, new partitions, DeleteRecords and producer-state
expiry run here one after another, in the order the event loop submitted them: that order
is each partition's order (a connection's requests are submitted in the order they came),
and the producer state, which judges appends, is only ever touched from this thread. The
event loop awaits the result and goes on serving every other connection meanwhile.
Reads (Fetch, ListOffsets) do not queue here: they run in the default thread pool, in
parallel, since the log takes its own lock.

A connection's requests are answered in order and each sees the effect of those before
it, as with Kafka: a Produce queued here need not hold up the Produce requests after it
(they queue behind it anyway), but any other request of that connection first waits until
its Produce requests are written (``settled``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")


class LogWriter:
    """A single worker thread for every change to the partition logs."""

    def __init__(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="log-writer"
        )
        self._last: dict[object, asyncio.Future[Any]] = {}  # per connection

    def submit(self, call: Callable[[], T], owner: object = None) -> asyncio.Future[T]:
        """Queue ``call`` now (its place in the order is taken here); await the result.

        ``owner`` (a connection) makes ``settled(owner)`` wait for it.
        """
        future = asyncio.wrap_future(self._executor.submit(call))
        if owner is not None:
            self._last[owner] = future
            future.add_done_callback(partial(self._forget, owner))
        return future

    async def settled(self, owner: object) -> None:
        """Return once everything ``owner`` submitted so far is done (failed ones too)."""
        pending = self._last.get(owner)
        if pending is not None:
            await asyncio.wait([pending])

    def _forget(self, owner: object, future: asyncio.Future[Any]) -> None:
        if self._last.get(owner) is future:
            del self._last[owner]

    async def run(self, call: Callable[[], T]) -> T:
        return await self.submit(call)

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        self._executor.shutdown(wait=True)
