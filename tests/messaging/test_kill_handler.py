"""Section 2's proof: a handler process killed with SIGKILL mid-stream and restarted loses
no message, applies none twice, and sends no outgoing message without its cause committed
(checked by reading both stores, and the topics): with the Kafka transport (a real broker
process) and with the in-process transport, on SQLite and PostgreSQL."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deadline import Deadline, wait_until
from messaging.shop import Charge, answers, orders_service
from streamsource.messaging import KafkaTransport, outbox_stream

TESTS = Path(__file__).resolve().parents[1]
COMMANDS = 600  # through Kafka: enough that the kill lands mid-stream (120 once did not)
LOCAL_COMMANDS = 1200  # in-process delivery is fast: enough that the kill lands mid-stream


@pytest.fixture
def payments_process(
    tmp_path: Path,
) -> Iterator[Callable[[str, str, str], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(mode: str, store_url: str, other: str) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"payments-{len(started)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, str(TESTS / "messaging" / "payments_process.py"), mode,
             store_url, other],
            env={**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(30)


def _whole_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every message of ``topic`` up to its current end (duplicates included)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader",
                         "enable.auto.commit": False})  # fmt: skip
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in partitions}  # fmt: skip
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        messages: list[Any] = []
        done = Deadline(60, f"the end of {topic}")
        left = {p for p, end in ends.items() if end > 0}
        while left:
            done.check()
            for message in consumer.consume(500, done.slice(0.5)):
                offset = message.offset()
                if message.error() is None and offset is not None:
                    messages.append(message)
                    if offset + 1 >= ends[message.partition()]:
                        left.discard(message.partition())
        return messages
    finally:
        consumer.close()


def _debited(store_url: str) -> int:
    import streamsource as ss

    with ss.open_store(store_url) as store:
        return sum(1 for e in store.read_all(types="Debited"))


def test_kill_9_of_the_handler_process_loses_and_repeats_nothing(
    store_url_factory: Callable[[], str],
    open_store: Callable[[], Any],
    broker: Any,
    payments_process: Callable[[str, str, str], subprocess.Popen[bytes]],
) -> None:
    payments_url = store_url_factory()
    orders = orders_service(open_store())
    with KafkaTransport([orders], broker.bootstrap) as transport:
        transport.create_topics()
        sent = _send(orders)
        _kill_midway_and_restart(
            lambda: payments_process("kafka", payments_url, broker.bootstrap), payments_url
        )
        wait_until(lambda: len(answers(orders.store)) >= COMMANDS, 180, "every reply")
    published, replied = _check_exactly_once(orders, payments_url, sent)

    # every outgoing message is on its topic (the relay may repeat what it had not
    # checkpointed after the kill, never invent one)
    on_topic = _whole_topic(broker.bootstrap, "shop.payments.events")
    ids = {dict(m.headers())["message-id"].decode() for m in on_topic}
    assert ids == {str(e.id) for e in published}
    replies_on_topic = _whole_topic(broker.bootstrap, "shop.orders.replies")
    assert {dict(m.headers())["message-id"].decode() for m in replies_on_topic} == {
        str(e.id) for e in replied
    }


def test_kill_9_of_the_in_process_transport_loses_and_repeats_nothing(
    store_url_factory: Callable[[], str],
    payments_process: Callable[[str, str, str], subprocess.Popen[bytes]],
) -> None:
    import streamsource as ss

    payments_url, orders_url = store_url_factory(), store_url_factory()
    with ss.open_store(orders_url) as orders_store:
        orders = orders_service(orders_store)
        sent = _send(orders, LOCAL_COMMANDS)
        _kill_midway_and_restart(
            lambda: payments_process("local", payments_url, orders_url),
            payments_url,
            LOCAL_COMMANDS,
        )
        wait_until(lambda: len(answers(orders.store)) >= LOCAL_COMMANDS, 180, "every reply")
        _check_exactly_once(orders, payments_url, sent)


def _send(orders: Any, count: int = COMMANDS) -> set[str]:
    with orders.transaction() as ctx:
        return {
            ctx.send(Charge(f"acc-{n % 12}", 1, "EUR"), to="payments").message_id
            for n in range(count)
        }


def _kill_midway_and_restart(
    start: Callable[[], subprocess.Popen[bytes]], url: str, count: int = COMMANDS
) -> None:
    first = start()
    # kill at the first debit: the most of the stream left for the kill to land in (a tenth
    # once left too little for the faster in-process transport)
    wait_until(lambda: _debited(url) >= 1, 120, "the first command applied")
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert _debited(url) < count, "killed after every command was applied, not mid-stream"
    start()


def _check_exactly_once(orders: Any, payments_url: str, sent: set[str]) -> tuple[Any, Any]:
    """One reply per command, one debit per command, one outgoing message per command and
    kind, each caused by a committed command; the outbox events (published, replied)."""
    import streamsource as ss

    replies = answers(orders.store)
    assert collections.Counter(row[1] for row in replies) == dict.fromkeys(sent, 1)
    assert {row[3] for row in replies} == {"Charged"}
    with ss.open_store(payments_url) as payments:
        debits = list(payments.read_all(types="Debited"))
        assert sorted(e.causation_id or "" for e in debits) == sorted(sent)
        for n in range(12):
            assert len(list(payments.read_stream(f"account-acc-{n}"))) == len(sent) // 12
        published = list(payments.read_stream(outbox_stream("payments", "shop.payments.events")))
        replied = list(payments.read_stream(outbox_stream("payments", "shop.orders.replies")))
        for outgoing in (published, replied):
            assert sorted(e.causation_id or "" for e in outgoing) == sorted(sent)
    return published, replied
