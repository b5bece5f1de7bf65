"""``GET /metrics`` on our FastAPI apps (the console, the reference mall)."""

from __future__ import annotations

from typing import Any

from streamsource.extras import available
from streamsource.observability.metrics import enable_metrics, metrics_text


def add_metrics_route(app: Any) -> bool:
    """Serve this process's metrics at ``/metrics`` on ``app`` (a FastAPI app) and start
    counting; False (nothing added) without the ``metrics`` extra."""
    if not available("prometheus_client"):
        return False
    from prometheus_client import CONTENT_TYPE_LATEST
    from starlette.responses import Response

    enable_metrics()

    def metrics() -> Response:
        return Response(metrics_text(), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    return True
