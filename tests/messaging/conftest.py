"""Fixtures of the messaging tests: stores of each backend (SQLite files, the test
PostgreSQL server), a new empty one per call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import streamsource as ss
from conformance.backends import BACKEND_MARKS, BACKENDS

MESSAGING_BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(
    params=[
        pytest.param(backend, marks=BACKEND_MARKS.get(backend, []))
        for backend in MESSAGING_BACKENDS
    ]
)
def store_url_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], str]]:
    """``make() -> url`` of a new empty store of this test's backend."""
    counter = iter(range(1_000_000))

    def make() -> str:
        directory = tmp_path / f"store{next(counter)}"
        directory.mkdir()
        return BACKENDS[request.param](directory, request)

    yield make


@pytest.fixture
def open_store(store_url_factory: Callable[[], str]) -> Iterator[Callable[[], Any]]:
    """``open_store() -> EventStore``: a new empty store, closed at the end."""
    opened: list[ss.EventStore] = []

    def make() -> ss.EventStore:
        store = ss.open_store(store_url_factory())
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Any]:
    """A real ``streamsource broker`` process on an ephemeral port (topics of 3 partitions),
    killed at the end."""
    from streamsource.kafka.broker.process import BrokerProcess

    with BrokerProcess(
        tmp_path / "broker",
        tmp_path / "broker.log",
        partitions=3,
        group_initial_rebalance_delay_ms=0,  # no 3 s per group
    ) as started:
        yield started
