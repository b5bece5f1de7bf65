"""One trace from an HTTP request through the store, the relay, Kafka and a consumer, read
back from OpenTelemetry's in-memory exporter (the SDK's own, not a stand-in)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import streamsource as ss
from deadline import Deadline, wait_until
from streamsource.bridge import OutboxRelay, SqliteInbox, TopicMapping
from streamsource.bridge.consumer import InboxConsumer
from streamsource.kafka import EmbeddedBroker
from streamsource.observability import tracing

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


class Served:
    """A FastAPI app on a real uvicorn server in a thread, on a free port."""

    def __init__(self, app: FastAPI) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        wait_until(lambda: self.server.started, what="uvicorn to start")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class OrderCount(ss.Projection):
    name = "order_count"
    tables = ("orders",)
    category = "order"

    def create(self, db: Any) -> None:
        db.execute("CREATE TABLE {orders} (id TEXT)")

    def handle(self, event: ss.RecordedEvent, db: Any) -> None:
        db.execute("INSERT INTO {orders} (id) VALUES (?)", (event.stream,))


def test_one_trace_from_the_http_request_to_the_consumer(
    tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    broker = EmbeddedBroker(data_dir=tmp_path / "broker", port=0, default_partitions=1)
    broker.start()
    store = ss.open_store(f"sqlite:///{tmp_path / 'shop.db'}")
    app = FastAPI()

    @app.post("/orders/{order_id}")
    def place(order_id: str, request: Request) -> dict[str, str]:
        # what an instrumented web framework does: the request's span, child of the caller's
        with tracing.span("POST /orders", parent=request.headers.get("traceparent"), kind="SERVER"):
            store.append(f"order-{order_id}", ss.NewEvent("OrderPlaced", {"total": 42}))
        return {"id": order_id}

    handled: list[ss.RecordedEvent] = []
    try:
        with Served(app) as url:
            answer = httpx.post(
                f"{url}/orders/7",
                headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"},
                timeout=10,
            )
            assert answer.status_code == 200
        recorded = next(iter(store.read_stream("order-7")))
        assert recorded.metadata["traceparent"].split("-")[1] == CLIENT_TRACE

        with OutboxRelay(
            store, broker.bootstrap, mapping=TopicMapping.of((), ()), name="t"
        ) as relay:
            assert relay.wait_for(recorded.position, timeout=30)
        consumer = InboxConsumer(
            broker.bootstrap,
            "shipping",
            ["order"],
            lambda event, tx: handled.append(event),
            SqliteInbox(str(tmp_path / "inbox.db"), durability="normal"),
        )
        try:
            wait_until(lambda: consumer.poll(0.2) >= 0 and handled, what="the consumer's event")
        finally:
            consumer.close()
        with ss.ProjectionRunner(store, [OrderCount()]) as runner:
            runner.run_until_caught_up()
    finally:
        store.close()
        broker.stop()

    spans = {
        s.name: s for s in exporter.get_finished_spans() if s.name != "streamsource.broker.fetch"
    }
    chain = [
        "POST /orders",
        "streamsource.store.append",
        "streamsource.relay.publish",
        "streamsource.broker.produce",
        "streamsource.inbox.handle",
        "streamsource.projection.handle",
    ]
    assert set(chain) <= set(spans), sorted(spans)
    for name in chain:
        assert f"{spans[name].context.trace_id:032x}" == CLIENT_TRACE, name

    def parent_of(name: str) -> int | None:
        span: ReadableSpan = spans[name]
        return None if span.parent is None else span.parent.span_id

    assert f"{parent_of('POST /orders'):016x}" == CLIENT_SPAN
    request, append = spans["POST /orders"], spans["streamsource.store.append"]
    publish = spans["streamsource.relay.publish"]
    assert parent_of("streamsource.store.append") == request.context.span_id
    assert parent_of("streamsource.relay.publish") == append.context.span_id
    assert parent_of("streamsource.broker.produce") == publish.context.span_id
    assert parent_of("streamsource.inbox.handle") == publish.context.span_id
    assert parent_of("streamsource.projection.handle") == append.context.span_id


async def test_the_asyncio_inbox_consumer_handles_each_event_in_a_span(
    tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    """AsyncInboxConsumer: the sync consumer's span, child of the message's traceparent."""
    broker = EmbeddedBroker(data_dir=tmp_path / "broker", port=0, default_partitions=1)
    broker.start()
    handled: list[ss.RecordedEvent] = []

    async def ship(event: ss.RecordedEvent, tx: Any) -> None:
        await tx.execute("INSERT INTO shipments (stream) VALUES (?)", (event.stream,))
        handled.append(event)

    try:
        with ss.open_store(f"sqlite:///{tmp_path / 'shop.db'}") as store:
            with tracing.span("POST /orders", kind="SERVER"):
                store.append("order-8", ss.NewEvent("OrderPlaced", {"total": 42}))
            recorded = next(iter(store.read_stream("order-8")))
            with OutboxRelay(
                store, broker.bootstrap, mapping=TopicMapping.of((), ()), name="t"
            ) as relay:
                assert relay.wait_for(recorded.position, timeout=30)
        async with await ss.open_async_store(f"sqlite:///{tmp_path / 'ship.db'}") as shipping:
            database = shipping.recorder.database
            assert database is not None
            async with database.transaction() as tx:
                await tx.execute("CREATE TABLE shipments (stream TEXT)")
            inbox = ss.AsyncStoreInbox(shipping)
            async with ss.AsyncInboxConsumer(
                broker.bootstrap, "shipping", ["order"], ship, inbox
            ) as consumer:
                deadline = Deadline(30, "the asyncio consumer's event")
                while not handled:
                    deadline.check()
                    await consumer.poll(deadline.slice(0.2))
    finally:
        broker.stop()

    spans = {s.name: s for s in exporter.get_finished_spans()}
    request, publish = spans["POST /orders"], spans["streamsource.relay.publish"]
    handle = spans["streamsource.inbox.handle"]
    assert handle.context.trace_id == request.context.trace_id
    assert handle.parent is not None and handle.parent.span_id == publish.context.span_id
    assert handle.attributes is not None
    assert handle.attributes["streamsource.consumer"] == "shipping"
    assert handle.attributes["streamsource.stream"] == "order-8"
    assert [e.stream for e in handled] == ["order-8"]


def test_with_tracing_off_nothing_is_added(tmp_path: Path) -> None:
    tracing.disable_tracing()
    with ss.open_store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        store.append("order-1", ss.NewEvent("OrderPlaced", {}))
        assert "traceparent" not in next(iter(store.read_stream("order-1"))).metadata
    assert asyncio.run(_async_append(tmp_path)) is None


async def _async_append(tmp_path: Path) -> str | None:
    async with await ss.open_async_store(f"sqlite:///{tmp_path / 'b.db'}") as store:
        await store.append("order-1", ss.NewEvent("OrderPlaced", {}))
        events = [e async for e in store.read_stream("order-1")]
        found: str | None = events[0].metadata.get("traceparent")
        return found
