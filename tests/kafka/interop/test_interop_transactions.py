"""Exactly-once transactions with real clients against the broker.

confluent-kafka (librdkafka 2.16) commits and aborts, a second producer with the same
transactional.id fences the first, ``send_offsets_to_transaction`` offsets become visible
only on commit, and a hanging transaction is aborted by the broker at its timeout.
aiokafka's and kafka-python's transactional producers do the same through their own
code. What a read_committed consumer sees is what a user would check: committed records
only, each once, in order; read_uncommitted sees everything.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import (
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec
from interop_support import unique_topic, wait_until

from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.protocol import (
    ErrorCode,
    RequestHeader,
    decode_response,
    encode_request,
)
from streamsource.kafka.protocol.messages.transactions import (
    DescribeTransactionsRequest,
    ListTransactionsRequest,
)

pytestmark = pytest.mark.interop

CLIENT_TIMEOUT = 30.0


def txn_producer(bootstrap: str, txn_id: str, **config: object) -> Producer:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5, **config}
    )
    producer.init_transactions(CLIENT_TIMEOUT)
    return producer


def read_all(
    bootstrap: str, topic: str, isolation: str = "read_committed", partitions: int = 1
) -> list[bytes]:
    """Every value a fresh consumer with ``isolation`` reads, up to the end of each partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_topic("reader"),
            "isolation.level": isolation,
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values: list[bytes] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + CLIENT_TIMEOUT
    try:
        while len(at_end) < partitions:
            assert time.monotonic() < deadline, f"did not reach the end of {topic}"
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                at_end.add(msg.partition() or 0)  # set on every message read
                continue
            at_end.discard(msg.partition() or 0)
            values.append(msg.value() or b"")  # every message here has a value
    finally:
        consumer.close()
    return values


def test_committed_records_are_read_and_aborted_ones_are_not(broker: EmbeddedBroker) -> None:
    topic = unique_topic("txn")
    producer = txn_producer(broker.bootstrap, unique_topic("tid"))
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, value=f"commit-{i}".encode())
    producer.commit_transaction(CLIENT_TIMEOUT)
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, value=f"abort-{i}".encode())
    producer.flush(CLIENT_TIMEOUT)  # in the log before the abort: hidden, not absent
    producer.abort_transaction(CLIENT_TIMEOUT)
    producer.begin_transaction()
    producer.produce(topic, value=b"after")
    producer.commit_transaction(CLIENT_TIMEOUT)

    committed = [f"commit-{i}".encode() for i in range(5)] + [b"after"]
    assert read_all(broker.bootstrap, topic) == committed
    uncommitted = read_all(broker.bootstrap, topic, "read_uncommitted")
    assert uncommitted == committed[:5] + [f"abort-{i}".encode() for i in range(5)] + [b"after"]


def test_an_open_transaction_holds_back_read_committed_readers(broker: EmbeddedBroker) -> None:
    topic = unique_topic("txn-open")
    producer = txn_producer(broker.bootstrap, unique_topic("tid"))
    producer.begin_transaction()
    producer.produce(topic, value=b"first")
    producer.commit_transaction(CLIENT_TIMEOUT)
    producer.begin_transaction()
    producer.produce(topic, value=b"pending")
    producer.flush(CLIENT_TIMEOUT)
    # the last stable offset stops before the open transaction; read_uncommitted goes on
    assert read_all(broker.bootstrap, topic) == [b"first"]
    assert read_all(broker.bootstrap, topic, "read_uncommitted") == [b"first", b"pending"]
    assert latest_offsets(broker.bootstrap, topic) == (3, 2)  # marker, record: end 3, LSO 2
    producer.commit_transaction(CLIENT_TIMEOUT)
    assert read_all(broker.bootstrap, topic) == [b"first", b"pending"]
    assert latest_offsets(broker.bootstrap, topic) == (4, 4)


def latest_offsets(bootstrap: str, topic: str) -> tuple[int, int]:
    """The latest offset as librdkafka's admin client lists it: (read_uncommitted,
    read_committed); the second is the last stable offset."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    answers = []
    for isolation in (IsolationLevel.READ_UNCOMMITTED, IsolationLevel.READ_COMMITTED):
        tp = TopicPartition(topic, 0)
        futures = admin.list_offsets(
            {tp: OffsetSpec.latest()}, isolation_level=isolation, request_timeout=CLIENT_TIMEOUT
        )
        answers.append(futures[tp].result(CLIENT_TIMEOUT).offset)
    return answers[0], answers[1]


def wire_request(bootstrap: str, message: Any, version: int) -> Any:
    """One request on a raw socket (no client library has the transaction admin APIs)."""
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT) as sock:
        header = RequestHeader(type(message).API_KEY, version, 1, "txn-test")
        sock.sendall(encode_request(header, message))
        (size,) = struct.unpack(">i", recv_exactly(sock, 4))
        _, response = decode_response(type(message).API_KEY, version, recv_exactly(sock, size))
    return response


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "the broker closed the connection"
        data += chunk
    return bytes(data)


def test_a_second_producer_with_the_same_id_fences_the_first(broker: EmbeddedBroker) -> None:
    topic = unique_topic("txn-fence")
    txn_id = unique_topic("tid")
    zombie = txn_producer(broker.bootstrap, txn_id)
    zombie.begin_transaction()
    zombie.produce(topic, value=b"zombie")
    zombie.flush(CLIENT_TIMEOUT)
    successor = txn_producer(broker.bootstrap, txn_id)  # aborts the zombie's transaction
    successor.begin_transaction()
    successor.produce(topic, value=b"successor")
    successor.commit_transaction(CLIENT_TIMEOUT)
    with pytest.raises(KafkaException) as caught:
        zombie.commit_transaction(CLIENT_TIMEOUT)
    error = caught.value.args[0]
    assert error.fatal() or error.code() in (
        KafkaError._FENCED,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
    ), error
    assert read_all(broker.bootstrap, topic) == [b"successor"]


def test_offsets_sent_to_a_transaction_are_committed_only_with_it(
    broker: EmbeddedBroker,
) -> None:
    source, sink, group = unique_topic("src"), unique_topic("sink"), unique_topic("g")
    feeder = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(10):
        feeder.produce(source, value=f"in-{i}".encode())
    assert feeder.flush(CLIENT_TIMEOUT) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([source])
    producer = txn_producer(broker.bootstrap, unique_topic("tid"))
    try:
        seen: list[Message] = []
        deadline = time.monotonic() + CLIENT_TIMEOUT
        while len(seen) < 10 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                seen.append(msg)
        assert len(seen) == 10
        offsets = [TopicPartition(source, 0, (seen[-1].offset() or 0) + 1)]

        producer.begin_transaction()
        producer.produce(sink, value=b"aborted output")
        producer.send_offsets_to_transaction(
            offsets, consumer.consumer_group_metadata(), CLIENT_TIMEOUT
        )
        producer.abort_transaction(CLIENT_TIMEOUT)
        assert committed_offset(consumer, source) < 0  # the aborted offsets never show

        producer.begin_transaction()
        producer.produce(sink, value=b"output")
        producer.send_offsets_to_transaction(
            offsets, consumer.consumer_group_metadata(), CLIENT_TIMEOUT
        )
        producer.commit_transaction(CLIENT_TIMEOUT)
        assert committed_offset(consumer, source) == 10
    finally:
        consumer.close()
    assert read_all(broker.bootstrap, sink) == [b"output"]


def committed_offset(consumer: Consumer, topic: str) -> int:
    (tp,) = consumer.committed([TopicPartition(topic, 0)], timeout=CLIENT_TIMEOUT)
    return int(tp.offset)


def test_a_hanging_transaction_is_aborted_at_its_timeout(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = broker_factory()
    topic = unique_topic("txn-timeout")
    producer = txn_producer(
        broker.bootstrap, unique_topic("tid"), **{"transaction.timeout.ms": 1500}
    )
    producer.begin_transaction()
    producer.produce(topic, value=b"never committed")
    producer.flush(CLIENT_TIMEOUT)
    # the broker aborts it (an abort marker) without the producer doing anything
    wait_until(
        lambda: (
            read_all(broker.bootstrap, topic) == []
            and latest_offsets(broker.bootstrap, topic) == (2, 2)
        ),
        what="the timed-out transaction to be aborted",
    )
    with pytest.raises(KafkaException):
        producer.commit_transaction(CLIENT_TIMEOUT)  # fenced: its epoch was bumped
    assert read_all(broker.bootstrap, topic, "read_uncommitted") == [b"never committed"]


def test_describe_and_list_transactions_report_the_open_one(broker: EmbeddedBroker) -> None:
    topic, txn_id = unique_topic("txn-admin"), unique_topic("tid")
    producer = txn_producer(broker.bootstrap, txn_id)
    producer.begin_transaction()
    producer.produce(topic, value=b"x")
    producer.flush(CLIENT_TIMEOUT)
    described = wire_request(
        broker.bootstrap, DescribeTransactionsRequest(transactional_ids=[txn_id, "nobody"]), 0
    )
    listed = wire_request(broker.bootstrap, ListTransactionsRequest(state_filters=["Ongoing"]), 1)
    state, unknown = described.transaction_states
    assert (state.transaction_state, state.error_code) == ("Ongoing", ErrorCode.NONE)
    assert [(t.topic, t.partitions) for t in state.topics] == [(topic, [0])]
    assert unknown.error_code == ErrorCode.TRANSACTIONAL_ID_NOT_FOUND
    assert [t.transactional_id for t in listed.transaction_states] == [txn_id]
    producer.commit_transaction(CLIENT_TIMEOUT)


def test_kafka_python_admin_lists_and_describes_transactions_and_producers(
    broker: EmbeddedBroker,
) -> None:
    from kafka.structs import TopicPartition as KafkaTopicPartition

    from kafka import KafkaAdminClient

    topic, txn_id = unique_topic("txn-kp-admin"), unique_topic("tid")
    producer = txn_producer(broker.bootstrap, txn_id, **{"transaction.timeout.ms": 45_000})
    producer.begin_transaction()
    producer.produce(topic, value=b"x")
    producer.flush(CLIENT_TIMEOUT)
    admin = KafkaAdminClient(
        bootstrap_servers=broker.bootstrap, request_timeout_ms=int(CLIENT_TIMEOUT * 1000)
    )
    try:
        (listings,) = admin.list_transactions(state_filters=["Ongoing"]).values()
        assert [(t.transactional_id, t.state.value) for t in listings] == [(txn_id, "Ongoing")]
        described = admin.describe_transactions([txn_id])[txn_id]
        assert described.state.value == "Ongoing"
        # DescribeProducers: how an admin finds where a hanging transaction starts
        (state,) = admin.describe_producers([KafkaTopicPartition(topic, 0)]).values()
        (active,) = state.active_producers
        assert (active.producer_id, active.producer_epoch) == (
            described.producer_id,
            described.producer_epoch,
        )
        assert (active.last_sequence, active.current_transaction_start_offset) == (0, 0)
        assert described.transaction_timeout_ms == 45_000
        assert described.topic_partitions == {KafkaTopicPartition(topic, 0)}
        assert described.transaction_start_time_ms > 0
        producer.commit_transaction(CLIENT_TIMEOUT)
        after = admin.describe_transactions([txn_id])[txn_id]
        assert (after.state.value, after.topic_partitions) == ("CompleteCommit", set())
        (state,) = admin.describe_producers([KafkaTopicPartition(topic, 0)]).values()
        assert state.active_producers[0].current_transaction_start_offset == -1
    finally:
        admin.close()


def test_aiokafka_transactional_producer(broker: EmbeddedBroker) -> None:
    import asyncio

    from aiokafka import AIOKafkaProducer

    topic = unique_topic("txn-aio")

    async def run() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap,
            transactional_id=unique_topic("tid"),
            request_timeout_ms=int(CLIENT_TIMEOUT * 1000),
        )
        await asyncio.wait_for(producer.start(), CLIENT_TIMEOUT)
        try:
            async with producer.transaction():
                await producer.send_and_wait(topic, b"aio-commit")
            await producer.begin_transaction()
            await producer.send_and_wait(topic, b"aio-abort")
            await producer.abort_transaction()
        finally:
            await asyncio.wait_for(producer.stop(), CLIENT_TIMEOUT)

    asyncio.run(asyncio.wait_for(run(), 2 * CLIENT_TIMEOUT))
    assert read_all(broker.bootstrap, topic) == [b"aio-commit"]


def test_kafka_python_transactional_producer(broker: EmbeddedBroker) -> None:
    from kafka import KafkaProducer

    topic = unique_topic("txn-kp")
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap,
        transactional_id=unique_topic("tid"),
        request_timeout_ms=int(CLIENT_TIMEOUT * 1000),
        max_block_ms=int(CLIENT_TIMEOUT * 1000),
    )
    try:
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(topic, b"kp-commit")
        producer.commit_transaction()
        producer.begin_transaction()
        producer.send(topic, b"kp-abort").get(CLIENT_TIMEOUT)
        producer.abort_transaction()
    finally:
        producer.close(CLIENT_TIMEOUT)
    assert read_all(broker.bootstrap, topic) == [b"kp-commit"]


def test_a_transaction_over_several_partitions_ends_in_every_one(broker: EmbeddedBroker) -> None:
    topic = unique_topic("txn-parts")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(CLIENT_TIMEOUT)
    producer = txn_producer(broker.bootstrap, unique_topic("tid"))
    for commit in (False, True, False):
        producer.begin_transaction()
        for partition in range(3):
            producer.produce(topic, value=f"{commit}-{partition}".encode(), partition=partition)
        producer.flush(CLIENT_TIMEOUT)
        if commit:
            producer.commit_transaction(CLIENT_TIMEOUT)
        else:
            producer.abort_transaction(CLIENT_TIMEOUT)
    values = read_all(broker.bootstrap, topic, partitions=3)
    assert sorted(values) == [b"True-0", b"True-1", b"True-2"]
    # every partition holds its three records and three markers, and nothing is open
    admin_offsets = admin.list_offsets(
        {TopicPartition(topic, p): OffsetSpec.latest() for p in range(3)},
        isolation_level=IsolationLevel.READ_COMMITTED,
        request_timeout=CLIENT_TIMEOUT,
    )
    assert [f.result(CLIENT_TIMEOUT).offset for f in admin_offsets.values()] == [6, 6, 6]


def test_transactions_under_fsync_always(broker_factory: Callable[..., EmbeddedBroker]) -> None:
    # every transaction-log record and every marker is synced before EndTxn is answered
    broker = broker_factory(fsync="always")
    topic = unique_topic("txn-fsync")
    producer = txn_producer(broker.bootstrap, unique_topic("tid"))
    for commit in (True, False, True):
        producer.begin_transaction()
        producer.produce(topic, value=f"{commit}".encode())
        producer.flush(CLIENT_TIMEOUT)
        if commit:
            producer.commit_transaction(CLIENT_TIMEOUT)
        else:
            producer.abort_transaction(CLIENT_TIMEOUT)
    assert read_all(broker.bootstrap, topic) == [b"True", b"True"]
