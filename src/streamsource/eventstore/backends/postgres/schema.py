"""Versioned migrations: the numbered ``sql/NNNN_name.sql`` files shipped in this package.

``schema_migrations`` (in the store's schema) lists the versions applied. :func:`migrate`
applies the missing ones in order, in one transaction, under a transaction-scoped advisory
lock per schema: processes opening a new store at the same moment wait for each other, and
the later ones find the work done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import psycopg
from psycopg import sql

from streamsource.errors import CorruptStoreError, NotSupportedError, ProgrammingError

_FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
MIGRATION_LOCK = 1397976423  # first key of the advisory lock; the second is the schema's hash


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def migrations() -> tuple[Migration, ...]:
    """Every shipped migration, in version order (versions are 1, 2, 3, ... without gaps)."""
    found: list[Migration] = []
    for entry in resources.files(__package__).joinpath("sql").iterdir():
        match = _FILE_NAME.fullmatch(entry.name)
        if match is not None:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise AssertionError(f"migration files are not numbered 1..n: {[m.version for m in found]}")
    return tuple(found)


def latest_version() -> int:
    """The schema version this streamsource creates."""
    return len(migrations())


_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def migrate(conn: psycopg.Connection[tuple[object, ...]], schema: str, where: str) -> list[str]:
    """Create or upgrade the store in ``schema``; return the names of the migrations applied."""
    applied: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (MIGRATION_LOCK, schema))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        done = _applied_versions(conn, schema, where, create=True)
        for migration in migrations():
            if migration.version in done:
                continue
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            applied.append(f"{migration.version:04d}_{migration.name}")
        if _transaction_ids_from_the_future(conn):
            # restored from a logical dump into another cluster: these rows are all settled
            conn.execute(
                "UPDATE events SET tx_id = '0'::xid8"
                " WHERE tx_id >= pg_snapshot_xmax(pg_current_snapshot())"
            )
            applied.append("reset transaction ids of restored events")
    return applied


def check_current(conn: psycopg.Connection[tuple[object, ...]], schema: str, where: str) -> None:
    """Raise unless the store in ``schema`` is at the latest version (used with migrate=False)."""
    done = _applied_versions(conn, schema, where, create=False)
    missing = [m.version for m in migrations() if m.version not in done]
    if missing:
        raise ProgrammingError(
            f"{where}: the store schema is not up to date (missing migrations {missing});"
            " run `streamsource store migrate --store URL` or open it with migrate=True"
        )
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    if _transaction_ids_from_the_future(conn):
        raise CorruptStoreError(
            f"{where}: the events carry transaction ids from another cluster (a logical"
            " restore?); run `streamsource store migrate --store URL` once to reset them"
        )


def _transaction_ids_from_the_future(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    # Positions follow transaction ids, so the newest event has the highest one.
    row = conn.execute(
        "SELECT tx_id >= pg_snapshot_xmax(pg_current_snapshot())"
        " FROM events ORDER BY position DESC LIMIT 1"
    ).fetchone()
    return bool(row and row[0])


def _applied_versions(
    conn: psycopg.Connection[tuple[object, ...]], schema: str, where: str, *, create: bool
) -> set[int]:
    ledger = conn.execute(
        "SELECT to_regclass(format('%%I.schema_migrations', %s::text)) IS NOT NULL,"
        " to_regclass(format('%%I.events', %s::text)) IS NOT NULL",
        (schema, schema),
    ).fetchone()
    assert ledger is not None
    has_ledger, has_events = ledger
    if not has_ledger:
        if has_events:
            raise CorruptStoreError(
                f"{where}: schema {schema!r} has an 'events' table that is not a streamsource"
                " store's (no schema_migrations): use another schema"
            )
        if not create:
            return set()
        conn.execute(_CREATE_LEDGER)
    done = {int(row[0]) for row in conn.execute("SELECT version FROM schema_migrations")}  # type: ignore[call-overload]
    newer = sorted(v for v in done if v > latest_version())
    if newer:
        raise NotSupportedError(
            f"{where}: the store schema has version {max(newer)}; this streamsource knows up to"
            f" {latest_version()}: upgrade streamsource"
        )
    return done
