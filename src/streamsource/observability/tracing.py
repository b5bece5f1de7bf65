"""OpenTelemetry traces (extra ``tracing``): one trace from a request through the store,
the relay, Kafka and the consumer.

The W3C ``traceparent`` travels where the data does: in an event's metadata (key
``traceparent``, set by the append that recorded it) and in a Kafka message's headers
(header ``traceparent``, set by the relay that published it). Each hop starts its span as
a child of what it received::

    request -> streamsource.store.append -> streamsource.relay.publish
            -> streamsource.broker.produce (the broker reads the first record's header)
            -> streamsource.inbox.handle (a consumer of the topic)
    streamsource.store.append -> streamsource.projection.handle

Nothing here costs anything until :func:`enable_tracing` is called: every hook reads one
module global, :data:`TRACER`, and does nothing while it is None (measured in
``benchmarks/observability.py``). The OpenTelemetry API is imported only on enabling.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from streamsource.extras import require

__all__ = [
    "TRACEPARENT",
    "TRACER",
    "current_traceparent",
    "disable_tracing",
    "enable_tracing",
    "header_traceparent",
    "metadata_traceparent",
    "span",
    "start_span",
]

TRACEPARENT = "traceparent"
# version 00 as W3C Trace Context writes it
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")

TRACER: Any | None = None
_propagator: Any | None = None


def enable_tracing(provider: Any | None = None) -> Any:
    """Start tracing with ``provider`` (default: OpenTelemetry's global tracer provider,
    which the application configures with its exporter). Returns the tracer."""
    global TRACER, _propagator
    trace = require("opentelemetry.trace", "tracing", "OpenTelemetry traces")
    propagation = require(
        "opentelemetry.trace.propagation.tracecontext", "tracing", "OpenTelemetry traces"
    )
    source = provider if provider is not None else trace.get_tracer_provider()
    _propagator = propagation.TraceContextTextMapPropagator()
    TRACER = source.get_tracer("streamsource")
    return TRACER


def disable_tracing() -> None:
    """Stop making spans (the hooks cost nothing again)."""
    global TRACER
    TRACER = None


def _context(traceparent: str | None) -> Any | None:
    if traceparent is None or _propagator is None:
        return None
    return _propagator.extract({TRACEPARENT: traceparent})


@contextmanager
def span(
    name: str,
    *,
    parent: str | None = None,
    kind: str = "INTERNAL",
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Any]:
    """A span named ``name``, child of the ``parent`` traceparent if given (else of the
    current span); yields None when tracing is off."""
    tracer = TRACER
    if tracer is None:
        yield None
        return
    from opentelemetry.trace import SpanKind

    with tracer.start_as_current_span(
        name,
        context=_context(parent),
        kind=SpanKind[kind],
        attributes=dict(attributes) if attributes else None,
    ) as current:
        yield current


def start_span(
    name: str,
    *,
    parent: str | None = None,
    kind: str = "INTERNAL",
    attributes: Mapping[str, Any] | None = None,
) -> Any | None:
    """A started span the caller ends (``span.end()``), for work that ends in a callback;
    not made current. None when tracing is off."""
    tracer = TRACER
    if tracer is None:
        return None
    from opentelemetry.trace import SpanKind

    return tracer.start_span(
        name,
        context=_context(parent),
        kind=SpanKind[kind],
        attributes=dict(attributes) if attributes else None,
    )


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span (None without one, or with tracing off)."""
    if TRACER is None or _propagator is None:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def with_traceparent(events: Any) -> Any:
    """``events`` (a NewEvent or an iterable of them) with the current span's traceparent in
    each one's metadata, unless one is there already. Anything else is returned as it came,
    for the append's own checks to refuse."""
    traceparent = current_traceparent()
    if traceparent is None:
        return events
    items = [events] if dataclasses.is_dataclass(events) else events
    if isinstance(items, str | bytes | Mapping):
        return events
    try:
        items = list(items)
    except TypeError:
        return events
    return [_with(e, traceparent) for e in items]


def _with(event: Any, traceparent: str) -> Any:
    metadata = getattr(event, "metadata", None)
    if (
        isinstance(event, type)
        or not dataclasses.is_dataclass(event)
        or not isinstance(metadata, Mapping)
        or TRACEPARENT in metadata
    ):
        return event
    return dataclasses.replace(cast(Any, event), metadata={**metadata, TRACEPARENT: traceparent})


def valid_traceparent(value: object) -> str | None:
    """``value`` if it is a well-formed traceparent (W3C: a malformed one is ignored)."""
    return value if isinstance(value, str) and _TRACEPARENT.fullmatch(value) else None


def metadata_traceparent(metadata: bytes | Mapping[str, Any] | None) -> str | None:
    """The traceparent in an event's metadata (JSON bytes as stored, or decoded)."""
    if not metadata:
        return None
    if isinstance(metadata, bytes | bytearray | memoryview):
        if b'"traceparent"' not in metadata:
            return None  # most events: no decode
        try:
            import msgspec

            metadata = msgspec.json.decode(metadata)
        except Exception:
            return None
    if not isinstance(metadata, Mapping):
        return None
    return valid_traceparent(metadata.get(TRACEPARENT))


def header_traceparent(headers: Sequence[tuple[str, bytes | None]] | None) -> str | None:
    """The traceparent among Kafka message headers, if any and well-formed."""
    for key, value in headers or ():
        if key == TRACEPARENT and value is not None:
            try:
                return valid_traceparent(value.decode("ascii"))
            except UnicodeDecodeError:
                return None
    return None
