"""The operator's web console: ``streamsource console``.

Server-rendered pages (Jinja2, with htmx for partial updates and Server-Sent Events for the
live log) over an event store and any Kafka cluster, each page with a JSON twin under
``/api/...`` described at ``/openapi.json``. Written here because no maintained console
covers both an event store of this shape and Kafka in one place; the web parts are FastAPI,
uvicorn and Jinja2, the Kafka reads go through confluent-kafka's AdminClient and Consumer,
so the console works against any Kafka cluster, not only streamsource's broker.
"""

from __future__ import annotations

from streamsource.console.app import create_app
from streamsource.console.config import ConsoleConfig

__all__ = ["ConsoleConfig", "create_app"]
