"""Per-partition state stores: a file on local disk (SQLite, or RocksDB through ``rocksdict``)
and a compacted changelog topic.

Each stateful operation owns a store *name*; each input partition has its own store file
(``STATE_DIR/<name>/<partition>.sqlite``, or ``.rocksdb``) and its own partition of the
changelog topic, so state moves with partitions: the member that is assigned partition ``p``
rebuilds the file from changelog partition ``p`` (from the offset the file last recorded)
before it processes a record of ``p``, and a member that restarts with an empty disk
rebuilds it all.

Between checkpoints a store works in memory: reads go through a cache in front of the file,
writes collect in ``dirty``. A checkpoint sends the dirty entries to the changelog (keys and
values in MessagePack, a deletion as a tombstone) and, once the broker has them (for
exactly-once: once the transaction committed), writes them to the file together with the
changelog offset they reach, atomically. Processing goes on meanwhile (writes collect in a
new ``dirty``; the entries in flight stay readable). The file is never ahead of the
changelog, so replaying the changelog from the recorded offset always reproduces the state. Since the
file is touched only at checkpoints, on cache misses and when windows are rebuilt, the
backend barely shows in a job's throughput (``benchmarks/streams_state.py`` measures both).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from streamsource.streams.errors import DataflowError, StreamsError

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode
_ABSENT = object()
MAX_CACHED = 200_000
"""Entries kept in memory per store partition after a checkpoint (the rest stay on disk)."""
BACKENDS = ("sqlite", "rocksdict")


def decode_key(data: bytes) -> Any:
    return _hashable(_decode(data))


def _hashable(value: Any) -> Any:
    """MessagePack gives arrays back as lists; keys must be hashable again (tuples)."""
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    return value


class StoreFile:
    """One store partition: its file, the cache in front of it and the writes not
    checkpointed yet."""

    def __init__(self, path: Path, changelog: str, partition: int, backend: str = "sqlite") -> None:
        if backend not in BACKENDS:
            raise DataflowError(f"state_backend must be one of {BACKENDS}, got {backend!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.changelog = changelog
        self.partition = partition
        self._file: SqliteFile | RocksFile = (
            RocksFile(path.with_suffix(".rocksdb")) if backend == "rocksdict" else SqliteFile(path)
        )
        self._cache: dict[Any, Any] = {}
        self.dirty: dict[Any, Any] = {}  # key -> value, None for a deletion
        self.sending: dict[Any, Any] = {}  # sent to the changelog, not yet in the file
        self.changelog_end = -1  # last changelog offset the broker confirmed (delivery reports)

    # -- processing ----------------------------------------------------------------------

    def get(self, key: Any, default: Any = None) -> Any:
        value = self._cache.get(key, _ABSENT)
        if value is _ABSENT:
            raw = self._file.read(_encode(key))
            value = None if raw is None else _decode(raw)
            self._cache[key] = value
        return default if value is None else value

    def set(self, key: Any, value: Any) -> None:
        self._cache[key] = value
        self.dirty[key] = value

    def delete(self, key: Any) -> None:
        self._cache[key] = None
        self.dirty[key] = None

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Every entry, on disk and not yet checkpointed (streamed from the file)."""
        dirty, sending = self.dirty, self.sending
        for raw_key, raw_value in self._file.scan():
            key = decode_key(raw_key)
            if key not in dirty and key not in sending:
                yield key, _decode(raw_value)
        for key, value in list(sending.items()):
            if value is not None and key not in dirty:
                yield key, value
        for key, value in list(dirty.items()):
            if value is not None:
                yield key, value

    # -- checkpoints ---------------------------------------------------------------------

    def send_changelog(self, produce: Callable[..., None]) -> None:
        """Produce the dirty entries to this partition of the changelog; they are in flight
        until :meth:`write_checkpoint` (one checkpoint at a time)."""
        if self.sending:
            raise StreamsError(f"{self.path}: a checkpoint is already in flight")
        self.sending, self.dirty = self.dirty, {}
        if not self.sending:
            return
        topic, partition = self.changelog, self.partition
        last = len(self.sending) - 1
        for n, (key, value) in enumerate(self.sending.items()):
            data = None if value is None else _encode(value)
            if n == last:  # the offset the file will record: only the last one matters
                produce(topic, data, _encode(key), partition=partition, on_delivery=self._sent)
            else:
                produce(topic, data, _encode(key), partition=partition)

    def _sent(self, error: Any, message: Any) -> None:
        if error is None:
            self.changelog_end = max(self.changelog_end, message.offset())

    def write_checkpoint(self) -> None:
        """Write the entries in flight to the file (the changelog has them)."""
        sending = self.sending
        if not sending:
            return
        self._file.write(
            [(_encode(k), _encode(v)) for k, v in sending.items() if v is not None],
            [_encode(k) for k, v in sending.items() if v is None],
            self.changelog_end + 1,
        )
        self.sending = {}
        if len(self._cache) > MAX_CACHED:
            self._cache = dict(self.dirty)  # written since: not in the file yet

    def drop_unsaved(self) -> None:
        """Forget writes not checkpointed (an aborted transaction): read the file again."""
        self.dirty = {}
        self.sending = {}
        self._cache = {}

    # -- restore -------------------------------------------------------------------------

    def restore_from(self) -> int:
        """The changelog offset to replay from (0 for a new file)."""
        return self._file.offset()

    def apply_changelog(self, records: list[tuple[bytes, bytes | None]], next_offset: int) -> None:
        """Apply replayed changelog records (raw key, raw value or None) up to ``next_offset``."""
        latest = dict(records)  # a key written, then deleted, then written: the last wins
        self._file.write(
            [(k, v) for k, v in latest.items() if v is not None],
            [k for k, v in latest.items() if v is None],
            next_offset,
        )
        self._cache = {}

    def close(self) -> None:
        self._file.close()


class SqliteFile:
    """A store partition in SQLite (WAL; no fsync at commit: the changelog is the durable copy)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.executescript(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL)"
                " WITHOUT ROWID;"
                "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER);"
            )
        except sqlite3.Error as exc:
            raise StreamsError(f"cannot open the state store {path}: {exc}") from None

    def read(self, key: bytes) -> bytes | None:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def scan(self) -> Iterator[tuple[bytes, bytes]]:
        yield from self._db.execute("SELECT key, value FROM kv")

    def offset(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'changelog_offset'").fetchone()
        return 0 if row is None else int(row[0])

    def write(self, upserts: list[tuple[bytes, bytes]], deletes: list[bytes], end: int) -> None:
        db = self._db
        try:
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", upserts)
            db.executemany("DELETE FROM kv WHERE key = ?", [(k,) for k in deletes])
            db.execute("INSERT OR REPLACE INTO meta VALUES ('changelog_offset', ?)", (end,))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StreamsError(f"cannot write the state store {self.path}: {exc}") from None

    def close(self) -> None:
        self._db.close()


_OFFSET_KEY = b"\xc1changelog-offset"  # 0xc1 never starts MessagePack: no store key collides


class RocksFile:
    """A store partition in RocksDB through ``rocksdict`` (``App(state_backend="rocksdict")``,
    the ``streams`` extra); a checkpoint is one atomic ``WriteBatch`` with the offset."""

    def __init__(self, path: Path) -> None:
        from streamsource.extras import require

        self._rocksdict: Any = require("rocksdict", "streams", "the rocksdict state backend")
        self.path = path
        try:
            self._db = self._rocksdict.Rdict(str(path), self._rocksdict.Options(raw_mode=True))
        except Exception as exc:  # rocksdict raises plain exceptions: translated here
            raise StreamsError(f"cannot open the state store {path}: {exc}") from None

    def read(self, key: bytes) -> bytes | None:
        value = self._db.get(key)
        return None if value is None else bytes(value)

    def scan(self) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._db.items():
            if key != _OFFSET_KEY:
                yield key, value

    def offset(self) -> int:
        raw = self._db.get(_OFFSET_KEY)
        return 0 if raw is None else int(raw)

    def write(self, upserts: list[tuple[bytes, bytes]], deletes: list[bytes], end: int) -> None:
        batch = self._rocksdict.WriteBatch(raw_mode=True)
        for key, value in upserts:
            batch.put(key, value)
        for key in deletes:
            batch.delete(key)
        batch.put(_OFFSET_KEY, str(end).encode())
        try:
            self._db.write(batch)
        except Exception as exc:
            raise StreamsError(f"cannot write the state store {self.path}: {exc}") from None

    def close(self) -> None:
        self._db.close()
