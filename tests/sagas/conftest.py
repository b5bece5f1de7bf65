"""Fixtures of the saga tests: a new empty store per call, on each backend, and a clock the
test moves (deadlines are measured against it, so no test sleeps for one)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import streamsource as ss
from conformance.backends import BACKEND_MARKS, BACKENDS

SAGA_BACKENDS = ("sqlite", "postgresql")


class Clock:
    """Seconds since the epoch, as the test sets them."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(
    params=[
        pytest.param(backend, marks=BACKEND_MARKS.get(backend, [])) for backend in SAGA_BACKENDS
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
def open_store(store_url_factory: Callable[[], str]) -> Iterator[Callable[..., Any]]:
    """``open_store(url=None) -> EventStore``: a new empty store (or ``url``), closed at
    the end."""
    opened: list[ss.EventStore] = []

    def make(url: str | None = None) -> ss.EventStore:
        store = ss.open_store(url or store_url_factory())
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
