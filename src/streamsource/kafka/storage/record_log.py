"""``RecordLog``: an append-only file of checksummed records with group commit.

Each log has one writer thread. Callers on the event loop hand it payloads and await the
result; the thread takes everything queued since its last round, writes it with one
``write`` and one ``fsync``, and resolves every caller of the round. Fifty consumers
committing at once thus cost one fsync per round, not fifty, and none of them holds up
the event loop (heartbeats and produce requests go on while the disk works); the loop is
woken once per round, not once per caller.

A log opened with ``fsync=False`` (the broker's ``--fsync interval``) writes its rounds
without an fsync; ``sync`` then makes everything written so far durable, queued after it
(the broker's interval flush calls it), and ``synced_size`` says how far that reached.

A caller that orders its own writes (the transaction coordinator, one decision at a time)
may also write on its worker thread (``append_here``: the log writer thread's EndTxn job),
with no hand-off to this thread; a lock keeps that and the rounds apart.

A round that fails (ENOSPC, EIO) is cut back off the file, so a half-written record can
never hide the records after it, and its callers get ``StorageError``; the next round
tries again. Submission order is file order: a ``rewrite`` (compaction) sees the file with
every append submitted before it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from streamsource.errors import CorruptStoreError
from streamsource.kafka.storage.files import (
    MAGIC_BYTES,
    StorageError,
    check_magic,
    frame,
    iter_records,
    replace_file,
    write_all,
)

log = logging.getLogger(__name__)

# who waits for a job: a thread (a concurrent future) or a coroutine (its loop's future)
_Waiter = concurrent.futures.Future[None] | tuple[asyncio.Future[None], asyncio.AbstractEventLoop]
_Job = tuple[Callable[[], None] | bytes, _Waiter]
_HERE: _Waiter = concurrent.futures.Future()  # marks append_here's write (never resolved)


class RecordLog:
    """A durable, append-only sequence of payloads in one file (see the module docstring)."""

    def __init__(self, path: Path, magic: bytes, size: int, *, fsync: bool) -> None:
        self.path = path
        self._magic = magic
        self._fsync = fsync
        self._size = size  # bytes of intact records (and the magic) in the file
        self._synced_size = size  # of which known to be on disk (what open found counts)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._file_lock = threading.Lock()  # the writer thread's rounds, or append_here
        self._jobs: deque[_Job] = deque()
        self._wakeup = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"storage:{path.name}", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, path: Path, magic: bytes, *, fsync: bool = True) -> tuple[RecordLog, list[bytes]]:
        """Open (creating) the file; returns the log and the payloads it holds, in order.

        Blocking: call it at start-up or from a worker thread. A torn tail is cut off; a
        file of another kind raises ``CorruptStoreError``; a write failure ``StorageError``.
        """
        check_magic(magic)
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            data = path.read_bytes() if path.exists() else b""
            if len(data) < MAGIC_BYTES and magic.startswith(data):
                # new, or a crash while the file was first created
                replace_file(path, magic)
                data = magic
        except OSError as exc:
            raise StorageError(path, "cannot open", exc) from exc
        if data[:MAGIC_BYTES] != magic:
            raise CorruptStoreError(f"{path} is not a {magic.decode(errors='replace')} file")
        payloads: list[bytes] = []
        end = MAGIC_BYTES
        for payload, after in iter_records(data, MAGIC_BYTES):
            payloads.append(payload)
            end = after
        if end < len(data):
            log.warning("%s: cutting a torn tail of %d bytes", path, len(data) - end)
            try:
                os.truncate(path, end)
            except OSError as exc:
                raise StorageError(path, "cannot cut the torn tail of", exc) from exc
        return cls(path, magic, end, fsync=fsync), payloads

    @property
    def size(self) -> int:
        """Bytes the file holds (magic included)."""
        return self._size

    @property
    def synced_size(self) -> int:
        """Bytes of the file known to be on disk: ``size`` after each round with
        ``fsync=True``, and after ``sync`` otherwise."""
        return self._synced_size

    # -- from the event loop ------------------------------------------------------------

    async def append(self, payloads: Sequence[bytes]) -> None:
        """Make ``payloads`` durable, in order, after everything submitted before."""
        await self._submit_from_loop(b"".join(frame(p) for p in payloads))

    async def rewrite(self, payloads: Sequence[bytes]) -> None:
        """Replace the file's content with ``payloads`` atomically (after earlier appends)."""
        data = self._magic + b"".join(frame(p) for p in payloads)
        await self._submit_from_loop(lambda: self._replace(data))

    async def sync(self) -> None:
        """Make everything appended before durable (for a log opened with ``fsync=False``).

        Raises ``StorageError`` if the fsync fails."""
        await self._submit_from_loop(self._sync_now)

    def _submit_from_loop(self, job: Callable[[], None] | bytes) -> asyncio.Future[None]:
        # a loop future, resolved with every other of its round in one loop wake-up
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue(job, (future, loop))
        return future

    # -- from any thread ----------------------------------------------------------------

    def submit(self, framed: bytes) -> concurrent.futures.Future[None]:
        """Queue already framed records; the future resolves once they are durable."""
        return self._submit(framed)

    def append_here(self, payloads: Sequence[bytes]) -> None:
        """Write ``payloads`` on the calling thread (a worker, never the event loop), with
        an fsync if the log makes one per round: no hand-off to the log's thread and back.
        The caller orders this against its other writes (it awaits each before the next).
        Raises ``StorageError``; nothing of the call is then kept."""
        self._write_appends([(b"".join(frame(p) for p in payloads), _HERE)], [])

    def append_now(self, payloads: Sequence[bytes]) -> None:
        """``append`` for code off the event loop (tests, tools, shutdown): blocks."""
        self.submit(b"".join(frame(p) for p in payloads)).result()

    def close(self) -> None:
        """Finish pending work, stop the writer thread, sync and close the file."""
        with self._wakeup:
            if self._closing:
                return
            self._closing = True
            self._wakeup.notify()
        self._thread.join()
        try:
            if not self._fsync and self._synced_size < self._size:
                os.fsync(self._fd)  # a clean stop leaves everything on disk
        except OSError as exc:
            log.warning("%s: cannot sync on close: %s", self.path, exc)
        finally:
            os.close(self._fd)

    def _submit(self, job: Callable[[], None] | bytes) -> concurrent.futures.Future[None]:
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue(job, future)
        return future

    def _queue(self, job: Callable[[], None] | bytes, waiter: _Waiter) -> None:
        with self._wakeup:
            if self._closing:
                raise RuntimeError(f"{self.path} is closed")
            self._jobs.append((job, waiter))
            self._wakeup.notify()

    # -- the writer thread --------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._jobs and not self._closing:
                    self._wakeup.wait()
                if not self._jobs:
                    return
                jobs = list(self._jobs)
                self._jobs.clear()
            self._round(jobs)

    def _round(self, jobs: list[_Job]) -> None:
        """Run ``jobs`` in order: consecutive appends share one write and one fsync."""
        outcomes: list[tuple[_Waiter, BaseException | None]] = []
        pending: list[_Job] = []
        for job in jobs:
            call, waiter = job
            if isinstance(call, bytes):
                pending.append(job)
                continue
            self._write_appends(pending, outcomes)
            pending = []
            try:
                call()
            except BaseException as exc:
                outcomes.append((waiter, exc))
            else:
                outcomes.append((waiter, None))
        self._write_appends(pending, outcomes)
        _deliver_all(outcomes)

    def _write_appends(
        self, jobs: list[_Job], outcomes: list[tuple[_Waiter, BaseException | None]]
    ) -> None:
        if not jobs:
            return
        data = b"".join(job[0] for job in jobs if isinstance(job[0], bytes))
        error: StorageError | None = None
        with self._file_lock:
            try:
                write_all(self._fd, data)
                if self._fsync:
                    os.fsync(self._fd)
            except OSError as exc:
                self._cut_back()
                error = StorageError(self.path, "cannot append to", exc)
            else:
                self._size += len(data)
                if self._fsync:
                    self._synced_size = self._size
        if jobs[0][1] is _HERE:  # append_here: the caller is the one waiting
            if error is not None:
                raise error
            return
        outcomes.extend((waiter, error) for _, waiter in jobs)

    def _sync_now(self) -> None:
        """On the writer thread: fsync what the rounds before wrote."""
        with self._file_lock:
            size, fd = self._size, os.dup(self._fd)
        try:
            os.fsync(fd)
        except OSError as exc:
            raise StorageError(self.path, "cannot sync", exc) from exc
        finally:
            os.close(fd)
        self._synced_size = max(self._synced_size, size)

    def _cut_back(self) -> None:
        # a half-written record would hide every later one on replay: cut it off now
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            log.warning("%s: cannot cut back a failed append; replay will", self.path)

    def _replace(self, data: bytes) -> None:
        with self._file_lock:
            replace_file(self.path, data)  # StorageError: the old file stays, and stays open
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            os.close(self._fd)
            self._fd = fd
            self._size = self._synced_size = len(data)  # replace_file synced it


def _deliver_all(outcomes: list[tuple[_Waiter, BaseException | None]]) -> None:
    """Resolve a round's waiters: threads at once, each event loop with one wake-up."""
    by_loop: dict[
        asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], BaseException | None]]
    ]
    by_loop = {}
    for waiter, error in outcomes:
        if isinstance(waiter, concurrent.futures.Future):
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)
        else:
            future, loop = waiter
            by_loop.setdefault(loop, []).append((future, error))
    for loop, resolved in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, resolved)
        except RuntimeError:
            pass  # the loop is closed: nobody waits any more


def _resolve(resolved: list[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    for future, error in resolved:
        if future.cancelled():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
