"""Real faults injected into each backend come out translated once, classified the same way.

Every backend turns its driver's errors into :mod:`streamsource.errors` types in one place
(``backends/*/faults.py``), also for what components run through the database the store
hands out. ``retriable`` is true only for faults worth retrying.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest

import streamsource as ss
from conformance.helpers import events, log_of


def _backend(store: Any) -> str:
    return str(store.recorder.backend)


def test_a_missing_table_is_a_permanent_programming_error(store: Any) -> None:
    if store.recorder.database is None:
        return  # no SQL to get wrong: test_conformance_database checks the refusal
    with pytest.raises(ss.ProgrammingError) as missing, store.transaction() as tx:
        tx.execute("SELECT * FROM no_such_table")
    assert not missing.value.retriable
    assert "no_such_table" in str(missing.value)
    assert store.recorder.database.where in str(missing.value)  # names the database


def test_a_constraint_violation_is_a_permanent_integrity_error(store: Any) -> None:
    if store.recorder.database is None:
        return
    with store.transaction() as tx:
        tx.execute("CREATE TABLE IF NOT EXISTS once (k TEXT PRIMARY KEY)")
    with store.transaction() as tx:
        tx.execute(f"INSERT INTO once VALUES ({tx.dialect.placeholder})", ("a",))
    with pytest.raises(ss.IntegrityError) as duplicate, store.transaction() as tx:
        tx.execute(f"INSERT INTO once VALUES ({tx.dialect.placeholder})", ("a",))
    assert not duplicate.value.retriable


def test_a_store_locked_by_another_writer_is_retriable(
    store: Any, request: pytest.FixtureRequest
) -> None:
    backend = _backend(store)
    if backend == "memory":
        return  # one process, one lock: nothing can hold it from outside
    if backend == "sqlite":
        path = store.recorder.database.where
        with ss.open_store(f"sqlite:///{path}?timeout=0") as impatient:
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            try:
                with pytest.raises(ss.OperationalError) as locked:
                    impatient.append("account-1", events("Opened"))
            finally:
                other.execute("ROLLBACK")
                other.close()
        assert locked.value.retriable
        assert "locked" in str(locked.value)
        assert log_of(store) == []
        return
    # PostgreSQL: another session holds a lock ours waits for, beyond our lock_timeout. An
    # advisory lock rather than a row lock: it takes no transaction id, which would hold
    # back what read_all shows to every other test on the server meanwhile.
    import psycopg

    with psycopg.connect(request.getfixturevalue("pg_server_url"), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(424242)")
        with pytest.raises(ss.OperationalError) as locked, store.transaction() as tx:
            tx.execute("SET LOCAL lock_timeout = '10ms'")
            tx.execute("SELECT pg_advisory_xact_lock(424242)")
        holder.execute("SELECT pg_advisory_unlock(424242)")
    assert locked.value.retriable
    assert "lock" in str(locked.value)


def test_a_read_only_or_full_database_is_permanent(store: Any) -> None:
    backend = _backend(store)
    if backend != "sqlite":
        return  # (PostgreSQL's disk-full class, DiskFull, is not retriable either)
    with store.transaction() as tx:
        tx.execute("CREATE TABLE IF NOT EXISTS blobs (b BLOB)")
    # read-only: SQLite refuses the write itself (SQLITE_READONLY), as for a read-only file
    with pytest.raises(ss.OperationalError) as read_only, store.transaction() as tx:
        tx.connection.execute("PRAGMA query_only = 1")
        try:
            tx.execute("INSERT INTO blobs VALUES (x'00')")
        finally:
            tx.connection.execute("PRAGMA query_only = 0")
    assert not read_only.value.retriable
    # full: the database may not grow beyond its pages (SQLITE_FULL, as on a full disk)
    with pytest.raises(ss.OperationalError) as full, store.transaction() as tx:
        (pages,) = tx.connection.execute("PRAGMA page_count").fetchone()
        tx.connection.execute(f"PRAGMA max_page_count = {pages}")
        try:
            tx.execute("INSERT INTO blobs VALUES (?)", (b"x" * 1_000_000,))
        finally:
            tx.connection.execute("PRAGMA max_page_count = 4294967294")
    assert not full.value.retriable
    assert "full" in str(full.value)
    # the store goes on afterwards
    assert store.append("account-1", events("Opened")).version == 0


def test_a_connection_killed_mid_transaction_is_retriable_and_then_recovers(
    store: Any, request: pytest.FixtureRequest
) -> None:
    if _backend(store) != "postgresql":
        return  # embedded backends have no connection to lose
    import psycopg

    def kill(pid: int) -> None:
        with psycopg.connect(request.getfixturevalue("pg_server_url"), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    with pytest.raises(ss.OperationalError) as lost, store.transaction() as tx:
        tx.append("account-1", events("Opened"))
        (pid,) = tx.execute("SELECT pg_backend_pid()")[0]
        killer = threading.Thread(target=kill, args=(pid,))
        killer.start()
        killer.join(timeout=30)
        tx.execute("SELECT 1")
    assert lost.value.retriable
    assert log_of(store) == []  # the transaction did not commit
    assert store.append("account-1", events("Opened")).version == 0  # a fresh connection


def test_bad_credentials_are_permanent(store: Any, request: pytest.FixtureRequest) -> None:
    if _backend(store) != "postgresql":
        return  # embedded backends have no credentials
    server = request.getfixturevalue("pg_server_url")
    scheme, rest = server.split("://", 1)
    host = rest.split("@", 1)[-1]
    with pytest.raises(ss.OperationalError) as refused:
        ss.open_store(f"{scheme}://no_such_role@{host}").close()
    assert not refused.value.retriable
    assert "credentials" in str(refused.value)
