"""The options of a ``postgresql://`` store: parsed from the URL query and keyword arguments.

Our own options are taken out of the URL; every other query parameter (``sslmode``,
``application_name``, ...) goes to libpq unchanged. Keywords win over the URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from streamsource.errors import InterfaceError, ProgrammingError

DEFAULT_SCHEMA = "public"
DEFAULT_POOL_SIZE = 10
DEFAULT_POOL_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 5
MAX_POOL_SIZE = 1000

# Lower-case identifiers only: they need no quoting in SQL nor in libpq's ``options``.
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_OURS = {"schema", "pool_size", "pool_min_size", "pool_timeout", "migrate"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything needed to connect to, and lay out, one PostgreSQL store."""

    conninfo: str  # libpq keyword/value string, with search_path and TimeZone set
    where: str  # postgresql://user@host:port/db?schema=..., no password: for messages
    schema: str
    pool_size: int
    pool_min_size: int
    pool_timeout: float
    connect_timeout: float
    migrate: bool


def parse(url: str, options: dict[str, Any]) -> Settings:
    """Settings for ``url`` (``postgresql://`` or ``postgres://``) plus keyword ``options``.

    Options: ``schema`` (default ``public``; several applications can share one database,
    each in its own schema), ``pool_size`` (most connections, default 10),
    ``pool_min_size`` (kept open, default 1), ``pool_timeout`` (seconds to wait for a free
    connection, default 30), ``connect_timeout`` (seconds, default 5; a libpq option) and
    ``migrate`` (default true: create or upgrade the schema on open).
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("postgresql", "postgres"):
        raise InterfaceError(f"not a PostgreSQL store URL: {_hide_password(url)!r}")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    ours = {key: query.pop(key) for key in list(query) if key in _OURS}
    merged: dict[str, Any] = {**ours, **options}
    if "connect_timeout" in options:
        query["connect_timeout"] = str(options.pop("connect_timeout"))
        merged.pop("connect_timeout")
    unknown = sorted(set(merged) - _OURS)
    if unknown:
        raise ProgrammingError(f"unknown PostgreSQL store option(s): {', '.join(unknown)}")
    schema = str(merged.get("schema", DEFAULT_SCHEMA))
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ProgrammingError(
            f"schema must be a lower-case SQL name ([a-z_][a-z0-9_]*, at most 63), not {schema!r}"
        )
    pool_size = _int(merged.get("pool_size", DEFAULT_POOL_SIZE), "pool_size", 1)
    pool_min_size = _int(merged.get("pool_min_size", 1), "pool_min_size", 0)
    pool_min_size = min(pool_min_size, pool_size)
    pool_timeout = _seconds(merged.get("pool_timeout", DEFAULT_POOL_TIMEOUT), "pool_timeout")
    connect_timeout = _seconds(
        query.setdefault("connect_timeout", str(DEFAULT_CONNECT_TIMEOUT)), "connect_timeout"
    )
    migrate = _bool(merged.get("migrate", True), "migrate")

    # quote, not quote_plus: libpq reads '+' in a URI as a plus sign, not a space
    # (options=-c%20statement_timeout%3D500 would reach the server as "-c+statement_timeout")
    base = urlunsplit(
        (parts.scheme, parts.netloc, parts.path, urlencode(query, quote_via=quote), "")
    )
    try:
        params = conninfo_to_dict(base)
    except Exception as exc:  # psycopg.ProgrammingError: a malformed URL
        raise InterfaceError(f"invalid PostgreSQL URL {_hide_password(url)!r}: {exc}") from None
    extra = str(params.pop("options", "") or "")
    params["options"] = f"{extra} -c search_path={schema} -c TimeZone=UTC".strip()
    return Settings(
        conninfo=make_conninfo("", **params),
        where=describe(params, schema),
        schema=schema,
        pool_size=pool_size,
        pool_min_size=pool_min_size,
        pool_timeout=pool_timeout,
        connect_timeout=connect_timeout,
        migrate=migrate,
    )


def describe(params: dict[str, Any], schema: str) -> str:
    """``postgresql://user@host:port/db?schema=s``: names the server without the password."""
    user = params.get("user")
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or 5432
    database = params.get("dbname") or user or ""
    who = f"{user}@" if user else ""
    return f"postgresql://{who}{host}:{port}/{database}?schema={schema}"


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _int(value: Any, name: str, least: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ProgrammingError(f"{name} must be an integer, not {value!r}") from None
    if isinstance(value, bool) or not least <= number <= MAX_POOL_SIZE:
        raise ProgrammingError(f"{name} must be between {least} and {MAX_POOL_SIZE}, not {value!r}")
    return number


def _seconds(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ProgrammingError(f"{name} must be a number of seconds, not {value!r}") from None
    if not 0 < number <= 3600:
        raise ProgrammingError(f"{name} must be between 0 and 3600 seconds, not {value!r}")
    return number


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ProgrammingError(f"{name} must be true or false, not {value!r}")
