"""Optional dependencies, imported only where a feature needs them.

The core install (msgspec, click, crc32c and cramjam, plain psycopg) runs the event store,
the broker and the CLI. The package extras add the rest:

* ``kafka``: confluent-kafka (librdkafka), the client of the bridge (outbox relay, inbox
  consumers) and of the demo's streaming sections;
* ``postgres``: psycopg's binary build, which carries libpq (the library itself depends on
  plain ``psycopg``, which uses the system's libpq, as psycopg's maintainers advise
  libraries to);
* ``cli``: rich, for the demo's panels and tables in a terminal (plain text without it);
* ``web``: FastAPI on uvicorn, Jinja2 and argon2, for the HTTP apps (the reference mall's
  API, the operator's console), and kafka-python for the console's topic sizes
  (DescribeLogDirs, which confluent-kafka cannot send);
* ``metrics``: prometheus-client, for ``/metrics`` endpoints;
* ``tracing``: the OpenTelemetry API and SDK, for spans and ``traceparent`` propagation;
* ``streams``: confluent-kafka and rocksdict, for stream-processing apps with RocksDB state
  (``streamsource.streams``; SQLite state needs only ``kafka``);
* ``all``: every one of them.

A feature checks for its dependency once, where the user reaches it, and raises
:class:`~streamsource.errors.MissingExtra` naming the extra, instead of an ``ImportError``
from deep inside a call.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from streamsource.errors import MissingExtra


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module``; if it cannot be imported, raise MissingExtra for ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(what, extra, str(exc)) from None


def available(module: str) -> bool:
    """Whether ``module`` can be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
