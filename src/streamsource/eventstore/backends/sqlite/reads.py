"""Lazy, paged reads: each page is one short query, keyset-paginated on position or version.

A page's query ends before the rows are handed out, so no read transaction stays open
between pages (it would pin the WAL and stop checkpoints) and a slow consumer holds nothing.
"""

from __future__ import annotations

import heapq
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import msgspec

from streamsource.errors import CorruptStoreError
from streamsource.eventstore.recorder import ReadAllFilter, StoredRecord, StreamInfo

PAGE_SIZE = 1000
_MAX_VERSION = 2**63 - 1

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COLUMNS = "id, stream, version, position, type, data, metadata, recorded_at"

Query = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]
"""Runs one query on some read connection and returns all its rows."""


def to_datetime(micros: int) -> datetime:
    """``recorded_at`` as stored (microseconds since the epoch) to an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=micros)


def to_micros(when: datetime) -> int:
    """An aware datetime (naive ones are taken as UTC) to exact microseconds since the epoch."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(microseconds=1)


# One page's rows checked and converted by msgspec in one call: the 16-byte ids become UUIDs
# (a third of what uuid.UUID(bytes=...) costs with its argument checks), and a row of the
# wrong shape (a damaged file) fails here with a clear error instead of deeper down.
_Row = tuple[uuid.UUID, str, int, int, str, bytes, bytes, int]
_convert_rows = msgspec.convert
_ROWS = list[_Row]


def _records(rows: list[tuple[Any, ...]]) -> list[StoredRecord]:
    try:
        converted: list[_Row] = _convert_rows(rows, _ROWS)
    except msgspec.ValidationError as exc:
        raise CorruptStoreError(f"an event row is damaged: {exc}") from None
    record = StoredRecord
    records: list[StoredRecord] = []
    add = records.append
    last_micros = -1
    when = _EPOCH
    for event_id, stream, version, position, type_, data, metadata, micros in converted:
        if micros != last_micros:  # the events of one append share their timestamp
            when = _EPOCH + timedelta(microseconds=micros)
            last_micros = micros
        add(record(event_id, stream, version, position, type_, data, metadata, when))
    return records


def read_stream(
    query: Query,
    stream: str,
    from_version: int | None,
    to_version: int | None,
    backwards: bool,
    limit: int | None,
) -> Iterator[StoredRecord]:
    """The events of ``stream`` between two versions (both inclusive), page by page."""
    remaining = _MAX_VERSION if limit is None else limit
    if backwards:
        cursor = _MAX_VERSION if from_version is None else from_version
        stop = -1 if to_version is None else to_version
        sql = (
            f"SELECT {_COLUMNS} FROM events WHERE stream = ? AND version <= ? AND version >= ?"
            " ORDER BY version DESC LIMIT ?"
        )
    else:
        cursor = 0 if from_version is None else from_version
        stop = _MAX_VERSION if to_version is None else to_version
        sql = (
            f"SELECT {_COLUMNS} FROM events WHERE stream = ? AND version >= ? AND version <= ?"
            " ORDER BY version LIMIT ?"
        )
    while remaining > 0:
        page = min(PAGE_SIZE, remaining)
        rows = query(sql, (stream, cursor, stop, page))
        yield from _records(rows)
        if len(rows) < page:
            return
        remaining -= len(rows)
        cursor = rows[-1][2] - 1 if backwards else rows[-1][2] + 1


# Up to this many types without a category, each type is read through events_by_type and the
# ordered pages merged here; one SQL query with ``type IN (...)`` would make SQLite sort every
# later match of the log again for each page.
_MERGED_TYPES = 32


def read_all(
    query: Query,
    from_position: int | None,
    backwards: bool,
    limit: int | None,
    filter: ReadAllFilter | None,
) -> Iterator[StoredRecord]:
    """The whole log in position order (optionally one category and/or some types)."""
    category = None if filter is None else filter.category
    types = None if filter is None else filter.types
    if types is not None and not types:
        return iter(())
    if category is None and types is not None and 1 < len(types) <= _MERGED_TYPES:
        page = max(100, PAGE_SIZE // len(types))
        per_type = [
            _read_log(query, from_position, backwards, None, None, type_, page)
            for type_ in sorted(types)
        ]
        merged = heapq.merge(*per_type, key=_position_of, reverse=backwards)
        return merged if limit is None else islice(merged, limit)
    if types is not None and len(types) == 1:
        (only,) = types
        return _read_log(query, from_position, backwards, limit, category, only, PAGE_SIZE)
    return _read_log(query, from_position, backwards, limit, category, types, PAGE_SIZE)


def _position_of(record: StoredRecord) -> int:
    return record.position


def _read_log(
    query: Query,
    from_position: int | None,
    backwards: bool,
    limit: int | None,
    category: str | None,
    types: frozenset[str] | str | None,
    page_size: int,
) -> Iterator[StoredRecord]:
    where: list[str] = []
    params: list[Any] = []
    if category is not None:
        where.append("category = ?")  # events_by_category: in position order
        params.append(category)
    if isinstance(types, str):
        where.append("type = ?")  # events_by_type: in position order
        params.append(types)
    elif types is not None:
        # "+type" keeps SQLite off events_by_type (it would sort); one JSON parameter
        # instead of one per type keeps any number of types under SQLite's variable limit.
        where.append("+type IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(types)))
    if backwards:
        cursor = _MAX_VERSION if from_position is None else from_position
        where.append("position <= ?")
        order = "DESC"
    else:
        cursor = 0 if from_position is None else from_position
        where.append("position >= ?")
        order = "ASC"
    sql = f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY position {order} LIMIT ?"
    remaining = _MAX_VERSION if limit is None else limit
    while remaining > 0:
        page = min(page_size, remaining)
        rows = query(sql, (*params, cursor, page))
        yield from _records(rows)
        if len(rows) < page:
            return
        remaining -= len(rows)
        cursor = rows[-1][3] - 1 if backwards else rows[-1][3] + 1


_STREAM_INFO = (
    "SELECT hard_deleted, metadata, (SELECT max(version) FROM events WHERE stream = name)"
    " FROM streams WHERE name = ?"
)


def stream_info(query: Query, stream: str) -> StreamInfo:
    """What the store knows of ``stream`` (an unknown stream has version None)."""
    rows = query(_STREAM_INFO, (stream,))
    if not rows:
        return StreamInfo(stream=stream, version=None, hard_deleted=False, metadata=None)
    deleted, metadata, version = rows[0]
    return StreamInfo(stream=stream, version=version, hard_deleted=bool(deleted), metadata=metadata)


def list_streams(query: Query, after: str = "") -> Iterator[StreamInfo]:
    """Every known stream named after ``after``, by name, page by page (stream names are
    never empty, so "" sorts before all of them)."""
    while True:
        rows = query(
            "SELECT name, (SELECT max(version) FROM events WHERE stream = name),"
            " hard_deleted, metadata FROM streams WHERE name > ? ORDER BY name LIMIT ?",
            (after, PAGE_SIZE),
        )
        for name, version, deleted, metadata in rows:
            yield StreamInfo(
                stream=name, version=version, hard_deleted=bool(deleted), metadata=metadata
            )
        if len(rows) < PAGE_SIZE:
            return
        after = rows[-1][0]
