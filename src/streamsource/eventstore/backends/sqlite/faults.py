"""Translation of sqlite3 exceptions into streamsource errors, at the backend's boundary.

Every message names the database file, so a user with several stores knows which one failed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from streamsource.errors import (
    CorruptStoreError,
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StoreError,
)

# Primary SQLite result codes (the low byte of an extended code).
_SQLITE_ERROR = 1
_SQLITE_PERM = 3
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_NOMEM = 7
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_TOOBIG = 18
_SQLITE_CONSTRAINT = 19
_SQLITE_NOTADB = 26


class StoreLockedError(OperationalError):
    """Another connection held the database's write lock for longer than the timeout."""

    retriable = True


class StoreReadOnlyError(OperationalError):
    """The database file or its directory cannot be written."""

    retriable = False


class StoreDirectoryMissing(OperationalError):
    """The directory that should hold the database file does not exist."""

    retriable = False


class DiskFullError(OperationalError):
    """The disk (or the database's size limit) is full: not retriable (see errors.py)."""

    retriable = False


def translate(exc: sqlite3.Error, path: str) -> StoreError:
    """The streamsource error for a sqlite3 exception raised while using the store at ``path``."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    detail = str(exc)
    if primary in (_SQLITE_NOTADB, _SQLITE_CORRUPT):
        return CorruptStoreError(f"{path}: not a valid streamsource SQLite store ({detail})")
    if primary in (_SQLITE_READONLY, _SQLITE_PERM, _SQLITE_CANTOPEN):
        return StoreReadOnlyError(
            f"cannot write {path}: the file or its directory is read-only or cannot be"
            f" opened ({detail})"
        )
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StoreLockedError(
            f"{path}: the database stayed locked by another writer beyond the timeout ({detail})"
        )
    if primary == _SQLITE_FULL:
        return DiskFullError(f"cannot write {path}: the disk is full ({detail})")
    if primary == _SQLITE_TOOBIG:
        return DataError(f"{path}: a value is too large for SQLite ({detail})")
    if primary == _SQLITE_ERROR and detail.startswith("no such table"):
        return ProgrammingError(f"{path}: a table is missing ({detail})")
    if primary == _SQLITE_CONSTRAINT or isinstance(exc, sqlite3.IntegrityError):
        return IntegrityError(f"{path}: {detail}")
    if primary in (_SQLITE_IOERR, _SQLITE_NOMEM) or isinstance(exc, sqlite3.OperationalError):
        return OperationalError(f"{path}: {detail}")
    if isinstance(exc, sqlite3.ProgrammingError):
        return InterfaceError(f"{path}: {detail}")
    return DatabaseError(f"{path}: {detail}")


@contextmanager
def map_exceptions(path: str) -> Iterator[None]:
    """Re-raise any sqlite3 exception escaping the block as a streamsource error."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(exc, path) from exc
