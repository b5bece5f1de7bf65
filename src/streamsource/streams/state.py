"""Per-partition state stores: a SQLite file on local disk, a compacted changelog topic.

Each stateful operation owns a store *name*; each input partition has its own store file
(``STATE_DIR/<name>/<partition>.sqlite``) and its own partition of the changelog topic, so
state moves with partitions: the member that is assigned partition ``p`` rebuilds the file
from changelog partition ``p`` (from the offset the file last recorded) before it processes
a record of ``p``, and a member that restarts with an empty disk rebuilds it all.

Between checkpoints a store works in memory: reads go through a cache in front of the file,
writes collect in ``dirty``. A checkpoint sends the dirty entries to the changelog (keys and
values in MessagePack, a deletion as a tombstone) and, once the broker has them (for
exactly-once: once the transaction committed), writes them to the file together with the
changelog offset they reach. The file is never ahead of the changelog, so replaying the
changelog from the recorded offset always reproduces the state.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from streamsource.streams.errors import StreamsError

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode
_ABSENT = object()
MAX_CACHED = 200_000
"""Entries kept in memory per store partition after a checkpoint (the rest stay on disk)."""


def encode(value: Any) -> bytes:
    return _encode(value)


def decode_key(data: bytes) -> Any:
    return _hashable(_decode(data))


def _hashable(value: Any) -> Any:
    """MessagePack gives arrays back as lists; keys must be hashable again (tuples)."""
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    return value


class StoreFile:
    """One store partition: the SQLite file, its cache and the writes not checkpointed yet."""

    def __init__(self, path: Path, changelog: str, partition: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.changelog = changelog
        self.partition = partition
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
        self._cache: dict[Any, Any] = {}
        self.dirty: dict[Any, Any] = {}  # key -> value, None for a deletion
        self.changelog_end = -1  # last changelog offset the broker confirmed (delivery reports)

    # -- processing ----------------------------------------------------------------------

    def get(self, key: Any, default: Any = None) -> Any:
        value = self._cache.get(key, _ABSENT)
        if value is _ABSENT:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (_encode(key),)).fetchone()
            value = None if row is None else _decode(row[0])
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
        dirty = self.dirty
        for raw_key, raw_value in self._db.execute("SELECT key, value FROM kv"):
            key = decode_key(raw_key)
            if key not in dirty:
                yield key, _decode(raw_value)
        for key, value in list(dirty.items()):
            if value is not None:
                yield key, value

    # -- checkpoints ---------------------------------------------------------------------

    def send_changelog(self, produce: Callable[..., None]) -> None:
        """Produce the dirty entries to this partition of the changelog."""
        if not self.dirty:
            return
        topic, partition = self.changelog, self.partition
        last = len(self.dirty) - 1
        for n, (key, value) in enumerate(self.dirty.items()):
            data = None if value is None else _encode(value)
            if n == last:  # the offset the file will record: only the last one matters
                produce(topic, data, _encode(key), partition=partition, on_delivery=self._sent)
            else:
                produce(topic, data, _encode(key), partition=partition)

    def _sent(self, error: Any, message: Any) -> None:
        if error is None:
            self.changelog_end = max(self.changelog_end, message.offset())

    def write_checkpoint(self) -> None:
        """Write the dirty entries to the file (the changelog has them)."""
        if not self.dirty:
            return
        self._write(
            [(_encode(k), _encode(v)) for k, v in self.dirty.items() if v is not None],
            [(_encode(k),) for k, v in self.dirty.items() if v is None],
            self.changelog_end + 1,
        )
        self.dirty = {}
        if len(self._cache) > MAX_CACHED:
            self._cache = {}

    def drop_unsaved(self) -> None:
        """Forget writes not checkpointed (an aborted transaction): read the file again."""
        self.dirty = {}
        self._cache = {}

    def _write(
        self, upserts: list[tuple[bytes, bytes]], deletes: list[tuple[bytes]], end: int
    ) -> None:
        db = self._db
        try:
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", upserts)
            db.executemany("DELETE FROM kv WHERE key = ?", deletes)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('changelog_offset', ?)", (end,))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StreamsError(f"cannot write the state store {self.path}: {exc}") from None

    # -- restore -------------------------------------------------------------------------

    def restore_from(self) -> int:
        """The changelog offset to replay from (0 for a new file)."""
        row = self._db.execute("SELECT value FROM meta WHERE name = 'changelog_offset'").fetchone()
        return 0 if row is None else int(row[0])

    def apply_changelog(self, records: list[tuple[bytes, bytes | None]], next_offset: int) -> None:
        """Apply replayed changelog records (raw key, raw value or None) up to ``next_offset``."""
        latest = dict(records)  # a key written, then deleted, then written: the last wins
        self._write(
            [(k, v) for k, v in latest.items() if v is not None],
            [(k,) for k, v in latest.items() if v is None],
            next_offset,
        )
        self._cache = {}

    def close(self) -> None:
        self._db.close()
