"""What operators watch: Prometheus metrics (extra ``metrics``).

``enable_metrics()`` starts counting; ``serve_metrics(port)`` serves ``/metrics`` from a
thread; ``metrics_text()`` is the exposition for an app that serves it itself. Every
``streamsource ...`` command that runs something long (broker, relay, projections) takes
``--metrics-port``. The metric names are listed in the README and in the Grafana
dashboard under ``dashboards/``.
"""

from streamsource.observability.metrics import enable_metrics, metrics_text, serve_metrics

__all__ = ["enable_metrics", "metrics_text", "serve_metrics"]
