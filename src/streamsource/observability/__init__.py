"""What operators watch: Prometheus metrics (extra ``metrics``) and OpenTelemetry traces
(extra ``tracing``, :mod:`.tracing`).

``enable_metrics()`` starts counting; ``serve_metrics(port)`` serves ``/metrics`` from a
thread; ``metrics_text()`` is the exposition for an app that serves it itself. Every
``streamsource ...`` command that runs something long (broker, relay, projections) takes
``--metrics-port``. The metric names are listed in the README and in the Grafana
dashboard under ``dashboards/``.
"""

from streamsource.observability.metrics import (
    disable_metrics,
    enable_metrics,
    metrics_text,
    serve_metrics,
)
from streamsource.observability.tracing import disable_tracing, enable_tracing

__all__ = [  # noqa: RUF022 (grouped by topic)
    # metrics
    "disable_metrics",
    "enable_metrics",
    "metrics_text",
    "serve_metrics",
    # traces
    "disable_tracing",
    "enable_tracing",
]
