"""The backends the conformance suite runs against: the one place to add a backend.

Each entry maps a backend name to a factory ``(tmp_path, request) -> store URL``. The
factory is called once per store a test opens, with a fresh empty ``tmp_path`` each time,
and must return the URL of a new, empty store (derive a database or schema name from
``tmp_path`` if the backend is a server). A factory may use ``request.getfixturevalue(...)`` to reach a session fixture (say, a PostgreSQL
server) and may call ``pytest.skip`` when its server is unavailable. A backend whose module
is not installed yet is skipped by the ``store`` fixture.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

BackendFactory = Callable[[Path, pytest.FixtureRequest], str]


def _memory(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return "memory://"


def _sqlite(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return f"sqlite:///{tmp_path}/store.db"


def _postgresql(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    from pg_server import pg_store_url  # tests/pg_server.py; the server fixture: tests/conftest.py

    return pg_store_url(request.getfixturevalue("pg_server_url"))  # a new schema per store


BACKENDS: dict[str, BackendFactory] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgresql": _postgresql,
}

EPHEMERAL: set[str] = {"memory"}
"""Backends whose data does not outlive the store object (their reopen tests are skipped)."""

BACKEND_MARKS: dict[str, list[pytest.MarkDecorator]] = {"postgresql": [pytest.mark.postgres]}
"""Marks added to every test of a backend, e.g. ``{"postgresql": [pytest.mark.postgres]}``."""
