"""``KafkaTransport(shared_consumer=True)`` against a real broker process: one consumer group
for a process's services; each message reaches every service subscribed to its topic exactly
once, unreadable ones are parked by each of them, and a restarted transport resumes from the
group's offsets without applying anything twice."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from bridge.kafka_helpers import read_topic
from deadline import wait_until
from messaging.shop import (
    CHANNELS,
    AccountCharged,
    Charge,
    answers,
    orders_service,
    payments_service,
    registry,
)
from streamsource.eventstore.store import EventStore
from streamsource.messaging import Context, KafkaTransport, Service
from streamsource.messaging.dead_letters import dead_letters


def auditor(name: str, store: Any) -> tuple[Service, list[tuple[str, int]]]:
    """A service that records every AccountCharged it receives from payments (in memory:
    what it was handed, so a second delivery would show)."""

    seen: list[tuple[str, int]] = []
    service = Service(name, store, registry=registry, channels=CHANNELS)

    def charged(ctx: Context, event: AccountCharged) -> None:
        seen.append((event.account, event.amount))

    service.handle(AccountCharged, charged, source="payments")
    return service, seen


def committed(bootstrap: str, group: str, topic: str) -> int:
    """The messages of ``topic`` (3 partitions) that ``group`` committed offsets past."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(partitions, timeout=30))
    finally:
        consumer.close()


def test_one_consumer_delivers_each_message_to_every_subscriber_once(
    open_store: Callable[[], Any], broker: Any
) -> None:
    orders, payments = orders_service(open_store()), payments_service(open_store())
    audit_a, seen_a = auditor("audita", open_store())
    audit_b, seen_b = auditor("auditb", open_store())
    services = [orders, payments, audit_a, audit_b]
    with KafkaTransport(services, broker.bootstrap, shared_consumer=True) as transport:
        assert list(transport.consumers) == ["audita+auditb+orders+payments"]
        sent = [orders.send(Charge(f"acc-{n}", 10, "EUR"), to="payments") for n in range(5)]
        wait_until(lambda: len(answers(orders.store)) == 5, 60, "five replies")
        wait_until(lambda: len(seen_a) == 5 and len(seen_b) == 5, 60, "both auditors")

    # the offsets are the one group's (committed when the transport stopped, if not before)
    group = "shop.audita+auditb+orders+payments"
    assert committed(broker.bootstrap, group, "shop.payments.events") == 5
    assert committed(broker.bootstrap, "shop.audita", "shop.payments.events") == 0
    replies = {row[1]: row[3] for row in answers(orders.store)}
    assert replies == {envelope.message_id: "Charged" for envelope in sent}
    expected = sorted((f"acc-{n}", 10) for n in range(5))
    assert sorted(seen_a) == expected and sorted(seen_b) == expected

    # a new transport in the same group resumes after what was committed: nothing twice
    more = orders.send(Charge("acc-9", 10, "EUR"), to="payments")
    with KafkaTransport(services, broker.bootstrap, shared_consumer=True):
        wait_until(lambda: len(answers(orders.store)) == 6, 60, "the sixth reply")
        wait_until(lambda: len(seen_a) == 6 and len(seen_b) == 6, 60, "both auditors again")
    assert {row[1] for row in answers(orders.store)} >= {more.message_id}
    assert sorted(seen_a) == sorted(seen_b) == sorted([*expected, ("acc-9", 10)])
    assert len(read_topic(broker.bootstrap, "shop.payments.events", 6)) == 6
    assert committed(broker.bootstrap, group, "shop.payments.events") == 6


def test_an_unreadable_message_is_parked_by_each_subscriber_and_the_rest_goes_on(
    open_store: Callable[[], Any], broker: Any
) -> None:
    from confluent_kafka import Producer

    orders, payments = orders_service(open_store()), payments_service(open_store())
    audit_a, seen_a = auditor("audita", open_store())
    audit_b, _ = auditor("auditb", open_store())
    services = [orders, payments, audit_a, audit_b]
    with KafkaTransport(services, broker.bootstrap, shared_consumer=True) as transport:
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        producer.produce("shop.payments.events", b"\xff not json", b"k")
        assert producer.flush(30) == 0
        orders.send(Charge("acc-1", 10, "EUR"), to="payments")
        wait_until(lambda: answers(orders.store) and seen_a, 60, "the reply and the event")
        for audit in (audit_a, audit_b):
            wait_until(partial(_parked, audit.store), 60, f"{audit.name} parked")
        [consumer] = transport.consumers.values()
        assert consumer.failed is None  # still consuming

    for audit in (audit_a, audit_b):
        [letter] = dead_letters(audit.store)
        assert letter.name == "streamsource.Unreadable"
        assert "shop.payments.events[" in letter.error
    assert list(dead_letters(orders.store)) == list(dead_letters(payments.store)) == []


def _parked(store: EventStore) -> bool:
    return bool(list(dead_letters(store)))
