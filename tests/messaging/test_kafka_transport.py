"""The Kafka transport against a real broker process: the relay publishes each service's
outbox to its channels' topics with the envelope as headers, consumers apply each message
once through the inbox, dead letters reach the dead-letter topic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bridge.kafka_helpers import read_topic
from deadline import wait_until
from messaging.shop import Charge, answers, orders_service, payments_service
from streamsource.messaging import Context, KafkaTransport, TransientFault


def test_a_command_and_its_reply_cross_the_broker_once(
    open_store: Callable[[], Any], broker: Any
) -> None:
    orders, payments = orders_service(open_store()), payments_service(open_store())
    with KafkaTransport([orders, payments], broker.bootstrap):
        sent = [orders.send(Charge(f"acc-{n}", 10, "EUR"), to="payments") for n in range(6)]
        wait_until(lambda: len(answers(orders.store)) == 6, 60, "six replies")

    replies = {row[1]: row[3] for row in answers(orders.store)}
    assert replies == {envelope.message_id: "Charged" for envelope in sent}
    for n in range(6):
        [debited] = payments.store.read_stream(f"account-acc-{n}")
        assert debited.causation_id == sent[n].message_id

    [command] = read_topic(broker.bootstrap, "shop.payments.commands", 1)
    headers = dict(command.headers())
    assert headers["message-name"] == b"Charge"
    assert headers["message-kind"] == b"command"
    assert headers["reply-to"] == b"shop.orders.replies"
    assert headers["source"] == b"orders"
    assert headers["correlation-id"] == headers["message-id"]
    assert command.key() == headers["correlation-id"]

    published = read_topic(broker.bootstrap, "shop.payments.events", 6)
    assert sorted(m.key() for m in published) == [f"acc-{n}".encode() for n in range(6)]
    assert {dict(m.headers())["message-name"] for m in published} == {b"AccountCharged"}


def test_a_parked_command_reaches_the_dead_letter_topic_and_is_answered(
    open_store: Callable[[], Any], broker: Any
) -> None:
    def broken(charge: Any) -> Any:
        def handler(ctx: Context, command: Charge) -> Any:
            raise TransientFault("ledger unreachable")

        return handler

    from streamsource.bridge.backoff import Backoff

    orders = orders_service(open_store())
    payments = payments_service(open_store(), broken, max_attempts=2, backoff=Backoff(0.001, 0.002))
    with KafkaTransport([orders, payments], broker.bootstrap):
        sent = orders.send(Charge("acc-1", 10, "EUR"), to="payments")
        wait_until(lambda: answers(orders.store), 60, "the failure reply")
        [letter] = read_topic(broker.bootstrap, "shop.payments.dead-letters", 1)

    [(_, causation, _, name, detail)] = answers(orders.store)
    assert (causation, name, detail) == (sent.message_id, "streamsource.Failure",
                                         "fault: ledger unreachable")  # fmt: skip
    headers = dict(letter.headers())
    assert headers["message-name"] == b"Charge"
    assert b"ledger unreachable" in headers["metadata"]
    assert headers["channel"] == b"shop.payments.commands"


def test_a_message_that_is_no_outbox_message_is_parked_not_fatal(
    open_store: Callable[[], Any], broker: Any
) -> None:
    from confluent_kafka import Producer

    from streamsource.messaging.dead_letters import dead_letters

    orders, payments = orders_service(open_store()), payments_service(open_store())
    with KafkaTransport([orders, payments], broker.bootstrap) as transport:
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        producer.produce("shop.payments.commands", b"\xff not json", b"k",
                         headers=[("event-id", b"nope")])  # fmt: skip
        producer.produce("shop.payments.commands", b"{}", b"k")  # no headers at all
        assert producer.flush(30) == 0
        sent = orders.send(Charge("acc-1", 10, "EUR"), to="payments")
        wait_until(lambda: answers(orders.store), 60, "the reply")
        wait_until(lambda: len(list(dead_letters(payments.store))) == 2, 60, "two parked")
        assert transport.consumers["payments"].failed is None  # still consuming

    [(_, causation, _, name, _)] = answers(orders.store)
    assert (causation, name) == (sent.message_id, "Charged")
    letters = list(dead_letters(payments.store))
    assert {letter.name for letter in letters} == {"streamsource.Unreadable"}
    assert all("shop.payments.commands[" in letter.error for letter in letters)
    assert {letter.record.data["value"] for letter in letters} == {"/yBub3QganNvbg==", "e30="}
