"""``KeyedLog``: the latest value per key, kept in a ``RecordLog`` (state of named things).

For state that is a set of named entries, each replaced as a whole: the transaction
coordinator's metadata per transactional id, and likewise group metadata per group. A
record is ``key-length uint16 | key (UTF-8) | value``; an empty value deletes the key.
Replaying keeps the latest record per key. When the file holds more than four times what
the live entries need (and at least ``compact_min_bytes``), it is rewritten with the live
entries only, once no write is in flight (the rewrite then holds every change before it).
"""

from __future__ import annotations

import struct
from pathlib import Path

from streamsource.errors import CorruptStoreError
from streamsource.kafka.storage.files import RECORD_HEADER, StorageError
from streamsource.kafka.storage.record_log import RecordLog

_KEY_LENGTH = struct.Struct(">H")
MAX_KEY_BYTES = 0xFFFF


def _encode(key: str, value: bytes) -> bytes:
    encoded = key.encode()
    if len(encoded) > MAX_KEY_BYTES:
        raise ValueError(f"a key of {len(encoded)} bytes exceeds {MAX_KEY_BYTES}")
    return _KEY_LENGTH.pack(len(encoded)) + encoded + value


def _framed_size(key: str, value: bytes) -> int:
    return RECORD_HEADER.size + _KEY_LENGTH.size + len(key.encode()) + len(value)


def _decode(payload: bytes) -> tuple[str, bytes]:
    if len(payload) < _KEY_LENGTH.size:
        raise CorruptStoreError("a keyed record is shorter than its key length")
    (length,) = _KEY_LENGTH.unpack_from(payload)
    end = _KEY_LENGTH.size + length
    if end > len(payload):
        raise CorruptStoreError("a keyed record is shorter than its key")
    try:
        key = payload[_KEY_LENGTH.size : end].decode()
    except UnicodeDecodeError as exc:
        raise CorruptStoreError(f"a keyed record's key is not UTF-8: {exc}") from exc
    return key, payload[end:]


class KeyedLog:
    """Durable ``key -> value`` entries; see the module docstring."""

    def __init__(self, records: RecordLog, live: dict[str, bytes], compact_min_bytes: int):
        self._records = records
        self._live = live
        self._compact_min_bytes = compact_min_bytes
        self._live_bytes = sum(_framed_size(k, v) for k, v in live.items())
        self._in_flight = 0
        self._compacting = False

    @classmethod
    def open(
        cls, path: Path, magic: bytes, *, fsync: bool = True, compact_min_bytes: int = 1 << 20
    ) -> KeyedLog:
        """Open (creating) and replay the file; blocking, for start-up."""
        records, payloads = RecordLog.open(path, magic, fsync=fsync)
        live: dict[str, bytes] = {}
        try:
            for payload in payloads:
                key, value = _decode(payload)
                live.pop(key, None)  # re-inserted last: iteration follows the latest writes
                if value:
                    live[key] = value
        except BaseException:
            records.close()
            raise
        return cls(records, live, compact_min_bytes)

    @property
    def path(self) -> Path:
        return self._records.path

    @property
    def synced_size(self) -> int:
        """``RecordLog.synced_size`` of the file."""
        return self._records.synced_size

    @property
    def size(self) -> int:
        return self._records.size

    async def sync(self) -> None:
        """Make every ``put`` so far durable (for a log opened with ``fsync=False``)."""
        await self._records.sync()

    def items(self) -> dict[str, bytes]:
        """The live entries, in the order they were last written."""
        return dict(self._live)

    async def put(self, key: str, value: bytes | None) -> None:
        """Make ``key -> value`` durable (None or empty deletes the key), then take it in.

        Raises ``StorageError``; the entry is then unchanged.
        """
        self._in_flight += 1
        try:
            await self._records.append([_encode(key, value or b"")])
        finally:
            self._in_flight -= 1
        await self.took(key, value)

    def put_from_thread(self, key: str, value: bytes | None) -> None:
        """``put``'s write, on the calling worker thread (not the event loop), in order
        with every other write (``RecordLog.append_here``). The event loop then calls
        ``took``; meanwhile nothing may ``put`` (the caller serialises them). Raises
        ``StorageError``."""
        self._records.append_here([_encode(key, value or b"")])

    async def took(self, key: str, value: bytes | None) -> None:
        """Take in an entry written (on the event loop, after ``put_from_thread``)."""
        old = self._live.pop(key, None)
        if old is not None:
            self._live_bytes -= _framed_size(key, old)
        if value:
            self._live[key] = value
            self._live_bytes += _framed_size(key, value)
        await self._maybe_compact()

    async def _maybe_compact(self) -> None:
        size = self._records.size
        if (
            self._compacting
            or self._in_flight
            or size < self._compact_min_bytes
            or size <= 4 * self._live_bytes
        ):
            return
        self._compacting = True
        try:
            await self._records.rewrite([_encode(k, v) for k, v in self._live.items()])
        except StorageError:
            pass  # the old file stays whole; compaction is tried again after the next put
        finally:
            self._compacting = False

    def close(self) -> None:
        """Finish pending writes and close the file."""
        self._records.close()
