"""Fixtures shared by every test directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import streamsource as ss
from conformance.backends import BACKEND_MARKS, BACKENDS
from pg_server import PgServer, ServerUnavailable, external_url, pg_store_url

# The suite shares 2 cores with other jobs: Hypothesis's wall-clock checks (a per-example
# deadline, "too slow" data generation) would fail properties for the machine's load, not for
# the code. Properties still run their full number of examples.
settings.register_profile(
    "shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("shared-machine")


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """The URL of a PostgreSQL server for this test session (each xdist worker starts its own).

    ``STREAMSOURCE_TEST_PG_URL`` names an existing server instead. Tests skip, saying why,
    when PostgreSQL is not installed.
    """
    given = external_url()
    if given is not None:
        yield given
        return
    try:
        # Semantics only here: crash and durability tests start their own, fully durable
        # server. Without fsync the suite runs several times faster on a shared disk.
        server = PgServer.start({"fsync": "off", "synchronous_commit": "off"})
    except ServerUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for the tests: {exc}")
    try:
        yield server.url
    finally:
        server.destroy()


@pytest.fixture
def pg_url(pg_server_url: str) -> str:
    """A ``postgresql://`` store URL of its own (a fresh schema) for one test."""
    return pg_store_url(pg_server_url)


@pytest.fixture
def exporter() -> Iterator[Any]:
    """Tracing on for one test, its spans kept by OpenTelemetry's in-memory exporter (the
    SDK's own); tracing off again afterwards."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from streamsource.observability import tracing

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.enable_tracing(provider)
    yield memory
    tracing.disable_tracing()
    provider.shutdown()


def _observability_as_it_was() -> Iterator[None]:
    """Metrics and tracing switched off again if they were off before: an app that turns them
    on (the mall, the console: ``add_metrics_route``) would otherwise leave them on for the
    rest of the worker, and the broker's code paths differ with them on (a produce answered
    from the log writer, a fetch answered straight from its frame, step aside)."""
    from streamsource.observability import metrics, tracing

    metrics_off, tracing_off = metrics.INSTRUMENTS is None, tracing.TRACER is None
    yield
    if metrics_off and metrics.INSTRUMENTS is not None:
        metrics.disable_metrics()
    if tracing_off and tracing.TRACER is not None:
        tracing.disable_tracing()


@pytest.fixture(autouse=True, scope="module")
def _observability_per_module() -> Iterator[None]:
    yield from _observability_as_it_was()


@pytest.fixture(autouse=True)
def _observability_per_test() -> Iterator[None]:
    yield from _observability_as_it_was()


# Messaging and sagas run on the backends that keep what they commit across a process.
DURABLE_BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(
    params=[
        pytest.param(backend, marks=BACKEND_MARKS.get(backend, [])) for backend in DURABLE_BACKENDS
    ]
)
def store_url_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], str]]:
    """``make() -> url`` of a new empty store of this test's backend (SQLite files, the test
    PostgreSQL server)."""
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
