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
# text, int8, uuid, text, bytea, bytea (pg_type oids)
_TYPES = [25, 20, 2950, 25, 17, 17]
_FORMATS = [0, 1, 1, 0, 1, 1]  # text for the two texts, binary for the rest
_BINARY = 1

_prepared: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()


def append_event(
    conn: psycopg.Connection[Any],
    stream: str,
    expected: int,
    event_id: bytes,
    event_type: str,
    data: bytes,
    metadata: bytes,
) -> tuple[int, int]:
    """Call ``append_event`` on ``conn`` (idle, autocommit); its last version and position.

    Raises what psycopg would: the server's error as its ``psycopg.errors`` class, or
    :class:`psycopg.OperationalError` when the connection broke.
    """
    pgconn = conn.pgconn
    encoding = conn.info.encoding
    if conn not in _prepared:
        _check(conn, pgconn.prepare(STATEMENT, _SQL, _TYPES), pq.ExecStatus.COMMAND_OK)
        _prepared.add(conn)
    result = pgconn.exec_prepared(
        STATEMENT,
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
    assert version is not None and position is not None
    return int.from_bytes(version, "big", signed=True), int.from_bytes(position, "big", signed=True)


def _check(conn: psycopg.Connection[Any], result: pq.abc.PGresult, wanted: pq.ExecStatus) -> None:
    if result.status == wanted:
        return
    if conn.pgconn.status == pq.ConnStatus.BAD:  # as psycopg reports a lost connection
        _prepared.discard(conn)
        message = conn.pgconn.get_error_message(conn.info.encoding) or "connection lost"
        raise psycopg.OperationalError(f"consuming input failed: {message}")
    raise error_from_result(result, encoding=conn.info.encoding)
