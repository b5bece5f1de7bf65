"""Stores for the subscription tests: the in-memory reference and a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import streamsource as ss


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    return f"sqlite:///{tmp_path}/store.db"


@pytest.fixture
def store(store_url: str) -> Iterator[ss.EventStore]:
    with ss.open_store(store_url) as opened:
        yield opened


def deposit(store: ss.EventStore, stream: str, amount: int) -> ss.AppendResult:
    """Append one Deposited event."""
    return store.append(stream, [ss.NewEvent("Deposited", {"amount": amount})])
