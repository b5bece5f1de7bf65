"""Shared fixtures for the Kafka tests: a real broker, in-process or as a subprocess.

In-process (fast, most tests)::

    def test_x(broker):                     # started EmbeddedBroker, port 0, tmp data dir
        KafkaProducer(bootstrap_servers=broker.bootstrap)

    def test_y(broker_factory):             # several brokers, or custom settings
        b = broker_factory(auto_create_topics=False, fsync="always")
        b.stop(); b2 = broker_factory(data_dir=b.data_dir)  # restart on the same data

As a subprocess through the CLI (restart, SIGTERM, kill -9), a
``streamsource.kafka.broker.process.BrokerProcess`` (also usable outside tests)::

    def test_z(broker_process):
        proc = broker_process(fsync="always")      # BrokerProcess, already listening
        proc.kill()                                # SIGKILL, no clean shutdown
        proc.start()                               # same data dir, same port
        proc.terminate()                           # SIGTERM, waits, returns the exit code

Every broker started by a fixture is stopped (or killed) when the test ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported lazily: the codec/log/records tests must not need the broker
    from streamsource.kafka import EmbeddedBroker
    from streamsource.kafka.broker.process import BrokerProcess


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[..., EmbeddedBroker]]:
    """``make(**config_fields) -> EmbeddedBroker`` already started (port 0, tmp data dir).

    Fields are ``BrokerConfig``'s (``data_dir``, ``fsync``, ``auto_create_topics``,
    ``default_partitions``...); the initial rebalance delay is 0 unless given. Pass the ``data_dir`` of a stopped broker to restart it.
    """
    from streamsource.kafka import EmbeddedBroker

    started: list[EmbeddedBroker] = []
    counter = 0

    def make(**overrides: Any) -> EmbeddedBroker:
        nonlocal counter
        counter += 1
        overrides.setdefault("data_dir", tmp_path / f"broker-{counter}")
        overrides.setdefault("port", 0)
        # Kafka's 3 s first-rebalance delay would add 3 s to every group test; the tests
        # that are about the delay set it themselves
        overrides.setdefault("group_initial_rebalance_delay_ms", 0)
        broker = EmbeddedBroker(**overrides)
        broker.start()
        started.append(broker)
        return broker

    yield make
    errors: list[BaseException] = []
    for broker in reversed(started):
        try:
            broker.stop()
        except Exception as exc:  # stop the others, then report
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def broker(broker_factory: Callable[..., EmbeddedBroker]) -> EmbeddedBroker:
    """A started in-process broker with default settings, on an ephemeral port."""
    return broker_factory()


@pytest.fixture
def broker_process(tmp_path: Path) -> Iterator[Callable[..., BrokerProcess]]:
    """``make(**cli_options) -> BrokerProcess`` already listening (tmp data dir, port 0).

    Options are CLI flags with underscores: ``fsync="always"``, ``partitions=3``,
    ``auto_create=False`` (-> ``--no-auto-create``); ``data_dir`` and ``port`` are taken
    too. A broker that cannot start raises ``BrokerError`` with its output. Killed at the
    end of the test if alive.
    """
    from streamsource.kafka.broker.process import BrokerProcess

    procs: list[BrokerProcess] = []

    def make(**options: Any) -> BrokerProcess:
        n = len(procs) + 1
        data_dir = options.pop("data_dir", tmp_path / f"broker-proc-{n}")
        port = options.pop("port", 0)
        options.setdefault("group_initial_rebalance_delay_ms", 0)
        proc = BrokerProcess(data_dir, tmp_path / f"broker-proc-{n}.log", port, **options)
        procs.append(proc)
        return proc.start()

    yield make
    for proc in procs:
        if proc.alive:
            proc.kill()
