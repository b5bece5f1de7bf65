"""Fixtures of the messaging tests: a broker process. Stores of each backend come from
``store_url_factory`` and ``open_store`` in ``tests/conftest.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


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
