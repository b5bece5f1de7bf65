"""Translation of psycopg and pool exceptions into streamsource errors, at the backend boundary.

Every message names the server (``postgresql://user@host:port/db?schema=...``, never the
password), so a user with several stores knows which one failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import psycopg.errors
from psycopg_pool import PoolTimeout, TooManyRequests

from streamsource.errors import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    StoreError,
)

# Our own SQLSTATEs, raised by the functions of sql/0001..0003 (handled by the recorder)
WRONG_EXPECTED_VERSION = "SS001"
STREAM_DELETED = "SS002"
NOT_FIRST_WRITE = "SS003"
ID_STORED = "SS004"  # append_batch (sql/0003_append_batch.sql), atomic mode
UNIQUE_VIOLATION = "23505"
EVENT_ID_CONSTRAINT = "events_id_unique"
DRIVER_ERRORS = (psycopg.Error, PoolTimeout, TooManyRequests)
"""What the driver and the pool raise; translated by :func:`translate`."""


class ConnectionLost(OperationalError):
    """The connection to the server broke (server stopped, restarted or unreachable).

    An append interrupted this way either committed entirely or not at all: retry it with
    the same event ids (appends are idempotent) and it returns the original result if it had
    committed.
    """

    retriable = True


class CannotConnect(OperationalError):
    """No connection could be opened: the host is unreachable or refused it."""

    retriable = True


class AuthenticationFailed(OperationalError):
    """The server refused the user name or password: retrying will not help."""

    retriable = False


class PoolExhausted(OperationalError):
    """Every pooled connection stayed busy for longer than ``pool_timeout``."""

    retriable = True


class TransactionConflict(OperationalError):
    """The server rolled the transaction back to resolve a conflict (serialization failure,
    deadlock) or a lock wait or statement ran out of time: the same work may succeed again."""

    retriable = True


class DiskFull(OperationalError):
    """The server's disk is full: not retriable (see errors.py)."""


def translate(
    exc: Exception, where: str, pool_timeout: float | None = None, *, connecting: bool = False
) -> StoreError:
    """The streamsource error for a psycopg (or psycopg_pool) exception at store ``where``.

    ``connecting``: ``exc`` came from opening a connection (nothing was in flight).
    """
    detail = str(exc).strip() or type(exc).__name__
    if isinstance(exc, PoolTimeout | TooManyRequests):
        waited = f" within pool_timeout={pool_timeout:g}s" if pool_timeout is not None else ""
        return PoolExhausted(
            f"{where}: no free connection in the pool{waited}; every connection stayed busy"
            f" (raise pool_size or pool_timeout, or lower the load) ({detail})"
        )
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if isinstance(
        exc, psycopg.errors.InvalidAuthorizationSpecification | psycopg.errors.InvalidPassword
    ):
        return AuthenticationFailed(f"{where}: the server refused the credentials ({detail})")
    if sqlstate.startswith("28"):
        return AuthenticationFailed(f"{where}: the server refused the credentials ({detail})")
    if isinstance(exc, psycopg.OperationalError):
        # at connect time libpq reports the server's refusal as text, without a SQLSTATE
        if (
            "authentication failed" in detail
            or ("password" in detail and "supplied" in detail)
            or "no pg_hba.conf entry" in detail
            or ('role "' in detail and "does not exist" in detail)
        ):
            return AuthenticationFailed(f"{where}: the server refused the credentials ({detail})")
        if 'database "' in detail and "does not exist" in detail:
            return OperationalError(f"{where}: the database does not exist ({detail})")
        if connecting:
            return CannotConnect(f"{where}: cannot connect to the server ({detail})")
        if sqlstate.startswith("40") or sqlstate in ("55P03", "57014"):  # lock, timeout
            return TransactionConflict(f"{where}: the transaction conflicted ({detail})")
        if sqlstate == "53100":
            return DiskFull(f"{where}: the server's disk is full ({detail})")
        if not sqlstate or sqlstate.startswith(("08", "57P")):
            return ConnectionLost(
                f"{where}: the connection to the server failed or was lost; an append in"
                f" flight either committed entirely or not at all: retry it ({detail})"
            )
        return OperationalError(f"{where}: {detail}")
    if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedFunction):
        return ProgrammingError(
            f"{where}: the store's tables are missing or out of date; run"
            f" `streamsource store migrate --store URL` ({detail})"
        )
    if isinstance(exc, psycopg.IntegrityError):
        return IntegrityError(f"{where}: {detail}")
    if isinstance(exc, psycopg.DataError):
        return DataError(f"{where}: {detail}")
    if isinstance(exc, psycopg.NotSupportedError):
        return NotSupportedError(f"{where}: {detail}")
    if isinstance(exc, psycopg.ProgrammingError):
        return ProgrammingError(f"{where}: {detail}")
    if isinstance(exc, psycopg.InterfaceError):
        return InterfaceError(f"{where}: {detail}")
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return TransactionConflict(f"{where}: the statement was cancelled or timed out ({detail})")
    return DatabaseError(f"{where}: {detail}")


@contextmanager
def map_exceptions(
    where: str, pool_timeout: float | None = None, *, connecting: bool = False
) -> Iterator[None]:
    """Re-raise any psycopg or pool exception escaping the block as a streamsource error."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        raise translate(exc, where, pool_timeout, connecting=connecting) from exc


def is_connection_failure(exc: BaseException) -> bool:
    """True when ``exc`` means the connection itself is broken (the pool should be checked)."""
    if isinstance(exc, ConnectionLost):
        return True
    cause = exc.__cause__ if isinstance(exc, StoreError) else exc
    if not isinstance(cause, psycopg.OperationalError):
        return False
    sqlstate = getattr(cause, "sqlstate", None) or ""
    return not sqlstate or sqlstate.startswith(("08", "57P"))
