"""The SQLite event-store backend: one file, WAL mode, group commit.

URL: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``, with optional query
parameters ``durability`` and ``timeout`` (also accepted as keyword options).

Durability
----------
``durability="full"`` (the default): WAL with ``synchronous=FULL``. The WAL is fsync'd at
every commit, so an append that returned survives a ``kill -9`` of the process *and* a power
loss or OS crash.

``durability="normal"``: WAL with ``synchronous=NORMAL``. Commits are not fsync'd (only
checkpoints are): an acknowledged append survives a crash of the process, but the last
commits may be lost on a power loss or OS crash. Much faster for single writers.

Concurrency
-----------
Writers in threads of one process go through a group committer (see
:mod:`.groupcommit`): concurrent appends share one transaction and one fsync, each in its own
SAVEPOINT so that each caller gets its own result or error. The asyncio store's tasks reach
it in shared thread hops (the appends made while one hop is in flight travel together in the
next: see :mod:`streamsource.eventstore.backends.threaded`). Writers in several processes on
the same file serialise on SQLite's write lock (``BEGIN IMMEDIATE``, waiting up to
``timeout`` seconds, default 5); expected versions are checked inside the write transaction,
so exactly one writer wins per expected version. A lock held beyond the timeout raises a
retriable :class:`~streamsource.errors.OperationalError`.

Reads are paged (1,000 rows a query, keyset pagination) on pooled read connections, which
WAL lets run beside the writer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from streamsource.errors import InterfaceError, ProgrammingError

from .faults import (
    DiskFullError,
    StoreDirectoryMissing,
    StoreLockedError,
    StoreReadOnlyError,
    map_exceptions,
)
from .recorder import SqliteRecorder
from .schema import Durability

_DURABILITIES: dict[str, Durability] = {"full": "full", "normal": "normal"}


def parse_url(url: str) -> tuple[str, dict[str, str]]:
    """The file path and query options of a ``sqlite:///...`` URL."""
    if not url.startswith("sqlite:///"):
        raise InterfaceError(f"not a SQLite store URL (expected sqlite:///PATH): {url!r}")
    parts = urlsplit(url)
    path = unquote(url[len("sqlite:///") :].split("?", 1)[0])
    if not path:
        raise InterfaceError(f"the SQLite store URL has no file path: {url!r}")
    if path == ":memory:":  # SQLite's in-memory database cannot use WAL nor be shared
        raise InterfaceError(f"{url!r} is not supported: use memory:// for a store in memory")
    return path, dict(parse_qsl(parts.query, keep_blank_values=True))


def open_recorder(url: str, **options: Any) -> SqliteRecorder:
    """Open (creating if needed) the store named by ``url``.

    Options (keyword or URL query; keywords win): ``durability`` ``"full"`` (default) or
    ``"normal"``; ``timeout``, seconds to wait for another writer's lock (default 5).
    """
    path, query = parse_url(url)
    merged: dict[str, Any] = {**query, **options}
    unknown = sorted(set(merged) - {"durability", "timeout"})
    if unknown:
        raise ProgrammingError(f"unknown SQLite store option(s) {', '.join(unknown)} for {path}")
    durability = _DURABILITIES.get(str(merged.get("durability", "full")).lower())
    if durability is None:
        raise ProgrammingError(
            f"durability must be 'full' or 'normal', not {merged['durability']!r} ({path})"
        )
    try:
        timeout = float(merged.get("timeout", 5.0))
    except (TypeError, ValueError):
        raise ProgrammingError(f"timeout must be a number of seconds ({path})") from None
    if not timeout >= 0:
        raise ProgrammingError(f"timeout must be >= 0 seconds ({path})")
    return SqliteRecorder(path, durability=durability, timeout=timeout)


__all__ = [
    "DiskFullError",
    "SqliteRecorder",
    "StoreDirectoryMissing",
    "StoreLockedError",
    "StoreReadOnlyError",
    "map_exceptions",
    "open_recorder",
    "parse_url",
]
