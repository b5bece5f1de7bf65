"""The thread that changes partition logs and the topic list, so the event loop never does.

Appends, topic creation and deletion, new partitions, DeleteRecords, markers and
producer-state expiry run here one after another, in the order the event loop submitted
them: that order is each partition's order (a connection's requests are submitted in the
order they came), and the producer state, which judges appends, is only ever touched from
this thread. The event loop awaits the result and goes on serving every other connection
meanwhile. Reads (Fetch, ListOffsets) do not queue here: they run in the default thread
pool, in parallel, since the log takes its own lock.

A connection's requests are answered in order and each sees the effect of those before
it, as with Kafka: a Produce queued here need not hold up the Produce requests after it
(they queue behind it anyway), but any other request of that connection first waits until
its Produce requests are written (``settled``).

The hand-off is cheaper than an executor's (this is on every produce): a plain queue in,
and one wake-up of the event loop for every run of jobs the thread found queued, not one
per job; and none for a job ``post``ed (a Produce the thread answers itself,
``writer_lane``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

Then = Callable[[BaseException | None], None]  # told on the loop that a job ran (its error)
_Job = tuple[
    Callable[[], Any],
    asyncio.Future[Any] | None,
    asyncio.AbstractEventLoop | None,
    object,
    Then | None,
]
_Done = tuple[asyncio.Future[Any], Any, BaseException | None, object, Then | None]


class LogWriter:
    """A single worker thread for every change to the partition logs."""

    def __init__(self) -> None:
        self._jobs: SimpleQueue[_Job | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._last: dict[object, asyncio.Future[Any]] = {}  # per connection

    def submit(
        self, call: Callable[[], T], owner: object = None, then: Then | None = None
    ) -> asyncio.Future[T]:
        """Queue ``call`` now (its place in the order is taken here); await the result.

        ``owner`` (a connection) makes ``settled(owner)`` wait for it. ``then`` is called on
        the event loop once ``call`` ran, with its error or None, even if the future was
        cancelled meanwhile (a connection that failed): cancelling cannot undo a write, so
        what follows one (waking readers, noting it for the flush) must not hang on it.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._ensure_started()
        self._jobs.put((call, future, loop, owner, then))
        if owner is not None:
            self._last[owner] = future  # forgotten when delivered (no callback per job)
        return future

    def post(self, call: Callable[[], object]) -> None:
        """Queue ``call`` now, like ``submit``, with no future: nothing wakes the event loop
        once it ran (``call`` tells whoever needs to know, and handles its own errors;
        ``writer_lane``)."""
        self._ensure_started()
        self._jobs.put((call, None, None, None, None))

    async def run(self, call: Callable[[], T]) -> T:
        return await self.submit(call)

    def busy(self, owner: object) -> bool:
        """Whether ``settled(owner)`` would wait: something ``owner`` submitted is not done."""
        return owner in self._last

    async def settled(self, owner: object) -> None:
        """Return once everything ``owner`` submitted so far is done (failed ones too)."""
        pending = self._last.get(owner)
        if pending is not None:
            await asyncio.wait([pending])

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join()

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._work, name="log-writer", daemon=True
                    )
                    self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            done: dict[asyncio.AbstractEventLoop, list[_Done]] = {}
            while job is not None:
                call, future, loop, owner, then = job
                if future is None or loop is None:
                    _run_posted(call)
                else:
                    try:
                        outcome: _Done = (future, call(), None, owner, then)
                    except BaseException as exc:
                        outcome = (future, None, exc, owner, then)
                    done.setdefault(loop, []).append(outcome)
                if self._jobs.empty():
                    break
                job = self._jobs.get()
            for loop, outcomes in done.items():
                try:
                    loop.call_soon_threadsafe(self._deliver, outcomes)
                except RuntimeError:
                    pass  # the loop is closed: nobody waits for these any more
            if job is None:
                return

    def _deliver(self, outcomes: list[_Done]) -> None:
        """On the event loop: resolve the futures of a run of finished jobs."""
        last = self._last
        for future, result, error, owner, then in outcomes:
            if owner is not None and last.get(owner) is future:
                del last[owner]
            if then is not None:
                then(error)
            if future.cancelled():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)


def _run_posted(call: Callable[[], object]) -> None:
    try:
        call()
    except Exception:  # a posted job answers for its own errors: this is a bug in one
        log.exception("a job posted to the log writer failed")
