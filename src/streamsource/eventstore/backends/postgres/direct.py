"""One-event appends straight through libpq: the hot path of the synchronous recorder.

A one-event append is one call of ``append_event`` with six scalar parameters. Through
psycopg's ``execute`` (cursor, parameter adaptation, result loading) the call cost about
40 us of client CPU; sent with libpq's ``PQexecPrepared`` (``psycopg.pq``, psycopg's public
libpq wrapper, which releases the GIL while waiting) with parameters encoded here, about
12 us. On a loaded two-core machine, where CPU and not fsync bounds a commit, that was the
difference between 0.66x and 0.8x of a raw INSERT+COMMIT loop.

The statement is prepared once per connection (server-side, under a name of ours that
psycopg's own ``_pg3_*`` names never take): one extra round trip on a connection's first
append, then one round trip per append. Like psycopg's own automatic prepared statements,
this needs a session of its own on the server (not PgBouncer in transaction mode before
1.21). Errors become the psycopg exceptions psycopg itself would raise, so the recorder
translates them the same way.
"""

from __future__ import annotations

import weakref
from typing import Any

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result

STATEMENT = b"streamsource_append_event"
_SQL = b"SELECT last_version, last_position FROM append_event($1, $2, $3, $4, $5, $6)"
TRY_STATEMENT = b"streamsource_try_append_event"
_TRY_SQL = b"SELECT last_version, last_position FROM try_append_event($1, $2, $3, $4, $5, $6)"
# text, int8, uuid, text, bytea, bytea (pg_type oids)
_TYPES = [25, 20, 2950, 25, 17, 17]
_FORMATS = [0, 1, 1, 0, 1, 1]  # text for the two texts, binary for the rest
_BINARY = 1

_prepared: weakref.WeakKeyDictionary[psycopg.Connection[Any], set[bytes]] = (
    weakref.WeakKeyDictionary()
)


def append_event(
    conn: psycopg.Connection[Any],
    stream: str,
    expected: int,
    event_id: bytes,
    event_type: str,
    data: bytes,
    metadata: bytes,
    *,
    wait: bool = True,
) -> tuple[int, int] | None:
    """Call ``append_event`` on ``conn`` (idle, autocommit); its last version and position.

    ``wait=False`` calls ``try_append_event`` instead, which returns None (having done
    nothing) when another transaction holds the stream. Raises what psycopg would: the
    server's error as its ``psycopg.errors`` class, or :class:`psycopg.OperationalError`
    when the connection broke.
    """
    pgconn = conn.pgconn
    encoding = conn.info.encoding
    statement, sql = (STATEMENT, _SQL) if wait else (TRY_STATEMENT, _TRY_SQL)
    prepared = _prepared.setdefault(conn, set())
    if statement not in prepared:
        _check(conn, pgconn.prepare(statement, sql, _TYPES), pq.ExecStatus.COMMAND_OK)
        prepared.add(statement)
    result = pgconn.exec_prepared(
        statement,
        [
            stream.encode(encoding),
            expected.to_bytes(8, "big", signed=True),
            event_id,
            event_type.encode(encoding),
            data,
            metadata,
        ],
        _FORMATS,
        _BINARY,
    )
    _check(conn, result, pq.ExecStatus.TUPLES_OK)
    version = result.get_value(0, 0)
    position = result.get_value(0, 1)
    if version is None or position is None:
        return None  # try_append_event: the stream is busy
    return int.from_bytes(version, "big", signed=True), int.from_bytes(position, "big", signed=True)


def _check(conn: psycopg.Connection[Any], result: pq.abc.PGresult, wanted: pq.ExecStatus) -> None:
    if result.status == wanted:
        return
    if conn.pgconn.status == pq.ConnStatus.BAD:  # as psycopg reports a lost connection
        _prepared.pop(conn, None)
        message = conn.pgconn.get_error_message(conn.info.encoding) or "connection lost"
        raise psycopg.OperationalError(f"consuming input failed: {message}")
    raise error_from_result(result, encoding=conn.info.encoding)
