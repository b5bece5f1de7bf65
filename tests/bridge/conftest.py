"""Fixtures for the bridge tests: a real embedded broker, a real SQLite store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import streamsource as ss


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``make(**config) -> EmbeddedBroker`` started on an ephemeral port, stopped at the end."""
    from streamsource.kafka import EmbeddedBroker

    started: list[Any] = []

    def make(**overrides: Any) -> Any:
        overrides.setdefault("data_dir", tmp_path / f"broker-{len(started)}")
        overrides.setdefault("port", 0)
        overrides.setdefault("group_initial_rebalance_delay_ms", 0)  # no 3 s per group
        broker = EmbeddedBroker(**overrides)
        broker.start()
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.stop()


@pytest.fixture
def broker(broker_factory: Callable[..., Any]) -> Any:
    """A started broker whose auto-created topics have 3 partitions."""
    return broker_factory(default_partitions=3)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}?durability=normal"


@pytest.fixture
def store(store_url: str) -> Iterator[ss.EventStore]:
    with ss.open_store(store_url) as opened:
        yield opened
