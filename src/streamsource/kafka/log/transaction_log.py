"""The transaction coordinator's durable state: an append-only file of keyed records.

Each record is ``length uint32 | crc32c uint32 | key-length uint16 | key | payload``; an
empty payload deletes the key. Opening replays the file (the latest record per key wins)
and cuts off a torn tail; when most of the file is superseded it is rewritten with the
live records and atomically swapped in. Payloads are opaque here (the coordinator encodes
its ``TxnMetadata``), so the file format does not change with the coordinator.

``fsync=True`` syncs every append (the broker's ``--fsync always``); otherwise appends
reach the page cache, which a ``kill -9`` of the broker does not lose, and ``flush``
syncs them. Not thread-safe: the broker calls it from one writer thread.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import crc32c

from streamsource.errors import CorruptStoreError
from streamsource.kafka.log.errors import LogStorageError

MAGIC = b"SSTXNL01"
MAX_RECORD_BYTES = 16 * 1024 * 1024
_HEADER = struct.Struct(">II")
_KEY_LEN = struct.Struct(">H")
_COMPACT_MIN_BYTES = 1 << 20


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TransactionLog:
    """Keyed records, latest per key kept; see the module docstring."""

    def __init__(self, path: Path, *, fsync: bool) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._live: dict[str, bytes] = {}
        self._live_bytes = 0  # what a compacted file would hold
        self._size = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists() or self.path.stat().st_size < len(MAGIC):
                self._write_new(self.path, {})
            self._replay()
            self._file = open(self.path, "ab")  # noqa: SIM115 - held for appends until close()
        except OSError as exc:
            raise LogStorageError(self.path, "opening", exc) from exc

    def records(self) -> Iterator[bytes]:
        """The live payloads (one per key), in the order they were last written."""
        return iter(list(self._live.values()))

    def append(self, key: str, payload: bytes | None) -> None:
        """Durably (per the fsync policy) set ``key`` to ``payload``; None deletes it."""
        frame = _frame(key, payload or b"")
        try:
            self._file.write(frame)
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())
        except OSError as exc:
            self._cut_to(self._size)
            raise LogStorageError(self.path, "appending to", exc) from exc
        self._size += len(frame)
        self._set(key, payload, len(frame))
        if self._size > _COMPACT_MIN_BYTES and self._size > 4 * self._live_bytes:
            self.compact()

    def flush(self) -> None:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise LogStorageError(self.path, "syncing", exc) from exc

    def compact(self) -> None:
        """Rewrite the file with the live records only (atomic swap)."""
        tmp = self.path.with_name(self.path.name + ".compact")
        try:
            self._write_new(tmp, self._live)
            self._file.close()
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
            self._file = open(self.path, "ab")  # noqa: SIM115
            self._size = self.path.stat().st_size
        except OSError as exc:
            raise LogStorageError(self.path, "compacting", exc) from exc

    def close(self) -> None:
        if not self._file.closed:
            try:
                self.flush()
            finally:
                self._file.close()

    # -- internals -----------------------------------------------------------------------

    def _replay(self) -> None:
        with open(self.path, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                raise CorruptStoreError(f"{self.path} is not a streamsource transaction log")
            pos = len(MAGIC)
            while True:  # streamed record by record: the file is never read whole
                head = f.read(_HEADER.size)
                if len(head) < _HEADER.size:
                    break
                length, crc = _HEADER.unpack(head)
                if length > MAX_RECORD_BYTES or length < _KEY_LEN.size:
                    break
                body = f.read(length)
                if len(body) < length or crc32c.crc32c(body) != crc:
                    break
                (key_len,) = _KEY_LEN.unpack_from(body)
                try:
                    key = body[2 : 2 + key_len].decode()
                except UnicodeDecodeError:
                    break
                payload = body[2 + key_len :]
                self._set(key, payload, _HEADER.size + length)
                pos += _HEADER.size + length
        self._size = pos
        if pos < self.path.stat().st_size:
            self._cut_to(pos)

    def _set(self, key: str, payload: bytes | None, frame_size: int) -> None:
        old = self._live.pop(key, None)
        if old is not None:
            self._live_bytes -= _HEADER.size + _KEY_LEN.size + len(key.encode()) + len(old)
        if payload:
            self._live[key] = payload
            self._live_bytes += frame_size

    def _cut_to(self, size: int) -> None:
        """Cut a torn tail off: a half-written record would hide every later one."""
        reopen = hasattr(self, "_file") and not self._file.closed
        if reopen:
            self._file.close()
        with open(self.path, "r+b") as f:
            f.truncate(size)
        if reopen:
            self._file = open(self.path, "ab")  # noqa: SIM115

    def _write_new(self, path: Path, live: dict[str, bytes]) -> None:
        with open(path, "wb") as f:
            f.write(MAGIC)
            for key, payload in live.items():
                f.write(_frame(key, payload))
            f.flush()
            os.fsync(f.fileno())


def _frame(key: str, payload: bytes) -> bytes:
    encoded = key.encode()
    body = _KEY_LEN.pack(len(encoded)) + encoded + payload
    return _HEADER.pack(len(body), crc32c.crc32c(body)) + body
