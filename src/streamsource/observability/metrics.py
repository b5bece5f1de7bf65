"""Prometheus metrics: what is counted where things happen, named as Prometheus advises.

Nothing here costs anything until :func:`enable_metrics` is called (by ``--metrics-port``
on the CLI, or by an application that serves ``/metrics`` itself): the hooks in the store,
the broker and the bridge read one module global, :data:`INSTRUMENTS`, and do nothing while
it is None. prometheus-client (extra ``metrics``) is imported only on enabling, so the core
install does not need it.

Two kinds of metric:

* **events** (appends, requests, publishes, errors) are counted or timed at the moment they
  happen, through the instruments below;
* **levels** (lag, log size, connections, parked messages) are read from the running
  objects when Prometheus scrapes, by the collectors of :mod:`.collectors`; nothing is
  computed between scrapes.

Names start with ``streamsource_``, carry their unit (``_seconds``, ``_bytes``) and end in
``_total`` for counters (https://prometheus.io/docs/practices/naming/).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from streamsource.extras import require

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = [
    "INSTRUMENTS",
    "Instruments",
    "disable_metrics",
    "enable_metrics",
    "metrics_text",
    "serve_metrics",
]

# Appends of one event commit in tens of microseconds (memory, SQLite without fsync) to tens
# of milliseconds (fsync on a slow disk, PostgreSQL over a network).
_LATENCY_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Instruments:
    """Every event-kind metric of the process, registered once in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        pc = require("prometheus_client", "metrics", "Prometheus metrics")
        self.registry = registry
        self.store_appends = pc.Counter(
            "streamsource_store_appends_total",
            "Appends committed to the event store.",
            ["backend"],
            registry=registry,
        )
        self.store_events = pc.Counter(
            "streamsource_store_appended_events_total",
            "Events committed to the event store.",
            ["backend"],
            registry=registry,
        )
        self.store_append_seconds = pc.Histogram(
            "streamsource_store_append_duration_seconds",
            "Time from an append call to its commit.",
            ["backend"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.store_batch_size = pc.Histogram(
            "streamsource_store_group_commit_batch_size",
            "Writes that shared one commit (group commit).",
            ["backend"],
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.broker_request_seconds = pc.Histogram(
            "streamsource_broker_request_duration_seconds",
            "Time the broker took to answer a request, by Kafka API.",
            ["api"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.broker_produced_records = pc.Counter(
            "streamsource_broker_produced_records_total",
            "Records appended to a topic's logs by Produce requests.",
            ["topic"],
            registry=registry,
        )
        self.broker_produced_bytes = pc.Counter(
            "streamsource_broker_produced_bytes_total",
            "Bytes of record batches appended to a topic's logs by Produce requests.",
            ["topic"],
            registry=registry,
        )
        self.broker_fetched_records = pc.Counter(
            "streamsource_broker_fetched_records_total",
            "Records sent to consumers of a topic (from the offset they asked for).",
            ["topic"],
            registry=registry,
        )
        self.broker_fetched_bytes = pc.Counter(
            "streamsource_broker_fetched_bytes_total",
            "Bytes of record batches sent to consumers of a topic.",
            ["topic"],
            registry=registry,
        )
        self.relay_published = pc.Counter(
            "streamsource_relay_published_events_total",
            "Events the relay published and Kafka acknowledged.",
            ["relay"],
            registry=registry,
        )
        self.relay_send_errors = pc.Counter(
            "streamsource_relay_send_errors_total",
            "Events Kafka refused or did not acknowledge (each is sent again or stops the relay).",
            ["relay"],
            registry=registry,
        )
        self.projection_events = pc.Counter(
            "streamsource_projection_handled_events_total",
            "Events projections read and handled.",
            registry=registry,
        )
        self.projection_errors = pc.Counter(
            "streamsource_projection_errors_total",
            "Failures of a projection's handler or of its database, by projection.",
            ["projection"],
            registry=registry,
        )
        self._children: dict[tuple[int, str], Any] = {}

    def child(self, metric: Any, label: str) -> Any:
        """``metric.labels(label)``, cached: labels() costs a lock and a dict build each time."""
        key = (id(metric), label)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(label)
        return found


INSTRUMENTS: Instruments | None = None


def count_append(
    instruments: Instruments, backend: str, events: int, started: float, appends: int = 1
) -> None:
    """``appends`` appends of ``events`` events in all, committed together, the first of
    which was called at ``perf_counter() == started``."""
    child = instruments.child
    child(instruments.store_append_seconds, backend).observe(time.perf_counter() - started)
    child(instruments.store_appends, backend).inc(appends)
    child(instruments.store_events, backend).inc(events)


def count_batch(backend: str, appends: int) -> None:
    """One group commit of ``appends`` appends (metrics on)."""
    instruments = INSTRUMENTS
    if instruments is not None:
        instruments.child(instruments.store_batch_size, backend).observe(appends)


_made: Instruments | None = None
_enabling = threading.Lock()


def enable_metrics(registry: CollectorRegistry | None = None) -> Instruments:
    """Start counting. The instruments are made once per process (in ``registry``, by
    default prometheus-client's global one, which its ``start_http_server`` and
    ``make_asgi_app`` serve); later calls return them."""
    global INSTRUMENTS, _made
    with _enabling:
        if _made is None:
            pc = require("prometheus_client", "metrics", "Prometheus metrics")
            target = pc.REGISTRY if registry is None else registry
            from streamsource.observability.collectors import LiveObjects

            made = Instruments(target)
            target.register(LiveObjects())
            _made = made
        INSTRUMENTS = _made
        return _made


def disable_metrics() -> None:
    """Stop counting (the hooks cost nothing again); the counts so far are kept."""
    global INSTRUMENTS
    INSTRUMENTS = None


def serve_metrics(port: int, host: str = "127.0.0.1") -> tuple[Any, int]:
    """Enable metrics and serve ``/metrics`` on ``host:port`` from a daemon thread.

    Returns the HTTP server (``shutdown()`` it to stop) and the port it listens on (``port``
    0 picks a free one).
    """
    instruments = enable_metrics()
    pc = require("prometheus_client", "metrics", "Prometheus metrics")
    server, _thread = pc.start_http_server(port, addr=host, registry=instruments.registry)
    return server, int(server.server_port)


def metrics_text() -> bytes:
    """The exposition text of every metric (for an app that serves ``/metrics`` itself)."""
    instruments = enable_metrics()
    pc = require("prometheus_client", "metrics", "Prometheus metrics")
    return bytes(pc.generate_latest(instruments.registry))
