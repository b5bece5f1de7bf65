"""Fixtures for the stream-processing tests: a real broker, real clients, apps in threads.

The apps under test use only confluent-kafka; the tests start the broker (in-process, or
as a process for kill -9) and read results with a plain consumer, as a user would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streamsource.streams import App


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Any]:
    from streamsource.kafka import EmbeddedBroker

    started = EmbeddedBroker(
        data_dir=tmp_path / "broker", port=0, group_initial_rebalance_delay_ms=0
    )
    started.start()
    yield started
    started.stop()


class Running:
    """An app running in a thread; ``stop()`` waits for it (and raises what it raised)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.app.run()
        except BaseException as exc:
            self.error = exc

    def stop(self, timeout: float = 60) -> None:
        self.app.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the app did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def run_app() -> Iterator[Callable[[App], Running]]:
    running: list[Running] = []

    def start(app: App) -> Running:
        r = Running(app)
        running.append(r)
        return r

    yield start
    for r in running:
        if r.thread.is_alive():
            r.app.stop()
            r.thread.join(60)
