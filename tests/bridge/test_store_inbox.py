"""An inbox in the event store's own database: a handler appends events, and they commit with
the inbox row or not at all (the basis of sagas), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import streamsource as ss
from streamsource.bridge import HandlerFailed, InboxConsumer, OutboxRelay, StoreInbox, TopicMapping

from .kafka_helpers import wait_until


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, store_url: str) -> Iterator[ss.EventStore]:
    url = store_url if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with ss.open_store(url) as opened:
        yield opened


def _invoice_on(store: ss.EventStore) -> Any:
    def handler(event: ss.RecordedEvent, tx: Any) -> None:
        order = event.stream.split("-", 1)[1]
        tx.append(  # fails if issued twice: the inbox must skip a redelivered order
            f"invoice-{order}",
            ss.NewEvent("InvoiceIssued", {"order": order}),
            expected_version=ss.NO_STREAM,
        )

    return handler


def _publish_orders(store: ss.EventStore, broker: Any, count: int) -> None:
    for n in range(count):
        last = store.append(f"order-{n}", ss.NewEvent("OrderPlaced", {"n": n})).position
    with OutboxRelay(store, broker.bootstrap, mapping=TopicMapping.of(["order"])) as relay:
        assert relay.wait_for(last)


def test_a_handler_appends_events_in_the_inbox_transaction_once_per_event(
    any_store: ss.EventStore, broker: Any
) -> None:
    store = any_store
    _publish_orders(store, broker, 5)
    inbox = StoreInbox(store)
    consumer = InboxConsumer(broker.bootstrap, "billing", ["order"], _invoice_on(store), inbox)
    try:
        assert wait_until(lambda: consumer.poll(0.2) >= 0 and consumer.handled == 5)
    finally:
        consumer.close()
    assert sorted(s.stream for s in store.list_streams() if s.stream.startswith("invoice")) == [
        f"invoice-{n}" for n in range(5)
    ]
    # the same messages again (another group, same inbox name): every one is skipped
    again = InboxConsumer(
        broker.bootstrap, "billing-replay", ["order"], _invoice_on(store), inbox, name="billing"
    )
    try:
        assert wait_until(lambda: again.poll(0.2) >= 0 and again.skipped == 5)
    finally:
        again.close()
    assert again.handled == 0
    assert inbox.applied("billing") == 5
    assert sum(1 for e in store.read_all() if e.type == "InvoiceIssued") == 5


def test_a_failing_handler_rolls_back_its_events_and_the_inbox_row(
    any_store: ss.EventStore, broker: Any
) -> None:
    store = any_store
    _publish_orders(store, broker, 1)
    issue = _invoice_on(store)

    def broken(event: ss.RecordedEvent, tx: Any) -> None:
        issue(event, tx)
        raise RuntimeError("the printer is on fire")

    inbox = StoreInbox(store)
    consumer = InboxConsumer(broker.bootstrap, "billing", ["order"], broken, inbox)
    try:
        with pytest.raises(HandlerFailed, match="printer is on fire"):
            assert wait_until(lambda: consumer.poll(0.2) > 0 and False, timeout=60)
    finally:
        consumer.close()
    assert store.stream_version("invoice-0") is None  # the appended event rolled back
    assert inbox.applied("billing") == 0
