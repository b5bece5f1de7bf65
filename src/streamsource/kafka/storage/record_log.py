"""``RecordLog``: an append-only file of checksummed records with group commit.

Each log has one writer thread. Callers on the event loop hand it payloads and await the
result; the thread takes everything queued since its last round, writes it with one
``write`` and one ``fsync``, and resolves every caller of the round. Fifty consumers
committing at once thus cost one fsync per round, not fifty, and none of them holds up
the event loop (heartbeats and produce requests go on while the disk works).

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

_Job = tuple[Callable[[], None] | bytes, concurrent.futures.Future[None]]


class RecordLog:
    """A durable, append-only sequence of payloads in one file (see the module docstring)."""

    def __init__(self, path: Path, magic: bytes, size: int, *, fsync: bool) -> None:
        self.path = path
        self._magic = magic
        self._fsync = fsync
        self._size = size  # bytes of intact records (and the magic) in the file
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
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

    # -- from the event loop ------------------------------------------------------------

    async def append(self, payloads: Sequence[bytes]) -> None:
        """Make ``payloads`` durable, in order, after everything submitted before."""
        await asyncio.wrap_future(self.submit(b"".join(frame(p) for p in payloads)))

    async def rewrite(self, payloads: Sequence[bytes]) -> None:
        """Replace the file's content with ``payloads`` atomically (after earlier appends)."""
        data = self._magic + b"".join(frame(p) for p in payloads)
        await asyncio.wrap_future(self._submit(lambda: self._replace(data)))

    # -- from any thread ----------------------------------------------------------------

    def submit(self, framed: bytes) -> concurrent.futures.Future[None]:
        """Queue already framed records; the future resolves once they are durable."""
        return self._submit(framed)

    def append_now(self, payloads: Sequence[bytes]) -> None:
        """``append`` for code off the event loop (tests, tools, shutdown): blocks."""
        self.submit(b"".join(frame(p) for p in payloads)).result()

    def close(self) -> None:
        """Finish pending work, stop the writer thread, close the file."""
        with self._wakeup:
            if self._closing:
                return
            self._closing = True
            self._wakeup.notify()
        self._thread.join()
        os.close(self._fd)

    def _submit(self, job: Callable[[], None] | bytes) -> concurrent.futures.Future[None]:
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._wakeup:
            if self._closing:
                raise RuntimeError(f"{self.path} is closed")
            self._jobs.append((job, future))
            self._wakeup.notify()
        return future

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
        pending: list[_Job] = []
        for job in jobs:
            call, future = job
            if isinstance(call, bytes):
                pending.append(job)
                continue
            self._write_appends(pending)
            pending = []
            try:
                call()
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(None)
        self._write_appends(pending)

    def _write_appends(self, jobs: list[_Job]) -> None:
        if not jobs:
            return
        data = b"".join(job[0] for job in jobs if isinstance(job[0], bytes))
        try:
            write_all(self._fd, data)
            if self._fsync:
                os.fsync(self._fd)
        except OSError as exc:
            self._cut_back()
            error = StorageError(self.path, "cannot append to", exc)
            for _, future in jobs:
                future.set_exception(error)
            return
        self._size += len(data)
        for _, future in jobs:
            future.set_result(None)

    def _cut_back(self) -> None:
        # a half-written record would hide every later one on replay: cut it off now
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            log.warning("%s: cannot cut back a failed append; replay will", self.path)

    def _replace(self, data: bytes) -> None:
        replace_file(self.path, data)  # StorageError: the old file stays, and stays open
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        os.close(self._fd)
        self._fd = fd
        self._size = len(data)
