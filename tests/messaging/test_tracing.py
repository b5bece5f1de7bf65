"""With tracing on, a message's handling is a span that continues the sender's trace, and
the messages the handler sends carry its traceparent (OpenTelemetry's in-memory exporter)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from messaging.shop import Charge, orders_service, payments_service
from streamsource.messaging import LocalTransport, outbox_stream

TRACE = "0af7651916cd43dd8448eb211c80319c"


def test_handling_continues_the_senders_trace(
    open_store: Callable[[], Any], exporter: InMemorySpanExporter
) -> None:
    orders, payments = orders_service(open_store()), payments_service(open_store())
    with orders.transaction(traceparent=f"00-{TRACE}-b7ad6b7169203331-01") as ctx:
        sent = ctx.send(Charge("acc-1", 10, "EUR"), to="payments")
    assert sent.traceparent == f"00-{TRACE}-b7ad6b7169203331-01"
    LocalTransport([orders, payments]).drain()

    handled = [s for s in exporter.get_finished_spans()
               if s.name == "streamsource.messaging.handle"]  # fmt: skip
    by_service = {span.attributes["streamsource.service"]: span for span in handled}  # type: ignore[index]
    charge = by_service["payments"]
    assert charge.attributes["messaging.message.id"] == sent.message_id  # type: ignore[index]
    assert f"{charge.context.trace_id:032x}" == TRACE
    assert charge.parent is not None and f"{charge.parent.span_id:016x}" == "b7ad6b7169203331"
    [reply] = payments.store.read_stream(outbox_stream("payments", "shop.orders.replies"))
    span_id = f"{charge.context.span_id:016x}"
    assert reply.metadata["traceparent"] == f"00-{TRACE}-{span_id}-01"
    assert f"{by_service['orders'].parent.span_id:016x}" == span_id  # type: ignore[union-attr]
