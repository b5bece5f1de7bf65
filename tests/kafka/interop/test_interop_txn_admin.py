"""Admin tools against transactions and KIP-848 commits, with real clients.

kafka-python 3.0.12's ``KafkaAdminClient.abort_transaction`` (WriteTxnMarkers, API 27, as
``kafka-transactions.sh abort`` sends it) ends a transaction left hanging in a partition:
read_committed readers, held back at its first offset, go on past it without its records.
A marker from an older producer epoch is refused. librdkafka 2.16 commits a KIP-848
group's offsets with OffsetCommit v9.
"""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from interop_support import unique_topic, wait_until
from test_interop_transactions import (
    CLIENT_TIMEOUT,
    latest_offsets,
    read_all,
    txn_producer,
    wire_request,
)

from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.protocol import ErrorCode
from streamsource.kafka.protocol.messages.transactions import WriteTxnMarkersRequest

pytestmark = pytest.mark.interop


def kafka_python_admin(bootstrap: str):  # type: ignore[no-untyped-def]
    from kafka import KafkaAdminClient

    return KafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(CLIENT_TIMEOUT * 1000)
    )


def open_transaction(bootstrap: str, topic: str, txn_id: str) -> Producer:
    """A producer whose transaction wrote ``hanging-0..2`` and never ends (a long timeout)."""
    producer = txn_producer(bootstrap, txn_id, **{"transaction.timeout.ms": 600_000})
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, value=f"hanging-{i}".encode(), partition=0)
    assert producer.flush(CLIENT_TIMEOUT) == 0
    return producer


def committed_before(bootstrap: str, topic: str) -> None:
    producer = txn_producer(bootstrap, unique_topic("tid"))
    producer.begin_transaction()
    producer.produce(topic, value=b"before", partition=0)
    producer.commit_transaction(CLIENT_TIMEOUT)


def test_kafka_python_admin_aborts_a_hanging_transaction(broker: EmbeddedBroker) -> None:
    from kafka.admin import AbortTransactionSpec
    from kafka.structs import TopicPartition as KafkaTopicPartition

    topic = unique_topic("txn-hanging")
    committed_before(broker.bootstrap, topic)  # offsets 0 (record), 1 (marker)
    open_transaction(broker.bootstrap, topic, unique_topic("tid"))  # offsets 2..4
    assert latest_offsets(broker.bootstrap, topic) == (5, 2)  # held back at its start

    admin = kafka_python_admin(broker.bootstrap)
    try:
        tp = KafkaTopicPartition(topic, 0)
        (state,) = admin.describe_producers([tp]).values()
        (hanging,) = [p for p in state.active_producers if p.current_transaction_start_offset >= 0]
        assert hanging.current_transaction_start_offset == 2
        admin.abort_transaction(
            AbortTransactionSpec(tp, hanging.producer_id, hanging.producer_epoch)
        )
        (state,) = admin.describe_producers([tp]).values()
        assert [p.current_transaction_start_offset for p in state.active_producers] == [-1, -1]
    finally:
        admin.close()

    # the abort marker took offset 5: the last stable offset is the end again, and
    # read_committed readers skip the aborted records
    assert latest_offsets(broker.bootstrap, topic) == (6, 6)
    committed_before(broker.bootstrap, topic)
    assert read_all(broker.bootstrap, topic) == [b"before", b"before"]
    uncommitted = read_all(broker.bootstrap, topic, "read_uncommitted")
    assert uncommitted == [b"before", b"hanging-0", b"hanging-1", b"hanging-2", b"before"]


def test_a_marker_of_an_older_producer_epoch_is_refused(broker: EmbeddedBroker) -> None:
    from kafka.admin import AbortTransactionSpec
    from kafka.errors import InvalidProducerEpochError
    from kafka.structs import TopicPartition as KafkaTopicPartition

    topic, txn_id = unique_topic("txn-epoch"), unique_topic("tid")
    first = txn_producer(broker.bootstrap, txn_id)
    first.begin_transaction()
    first.produce(topic, value=b"first", partition=0)
    first.commit_transaction(CLIENT_TIMEOUT)
    open_transaction(broker.bootstrap, topic, txn_id)  # same id: the epoch is bumped

    admin = kafka_python_admin(broker.bootstrap)
    try:
        tp = KafkaTopicPartition(topic, 0)
        (state,) = admin.describe_producers([tp]).values()
        (producer,) = state.active_producers
        assert producer.producer_epoch >= 1
        with pytest.raises(InvalidProducerEpochError):
            admin.abort_transaction(
                AbortTransactionSpec(tp, producer.producer_id, producer.producer_epoch - 1)
            )
        assert latest_offsets(broker.bootstrap, topic) == (5, 2)  # still open: nothing written
        admin.abort_transaction(
            AbortTransactionSpec(tp, producer.producer_id, producer.producer_epoch)
        )
    finally:
        admin.close()
    assert latest_offsets(broker.bootstrap, topic) == (6, 6)
    assert read_all(broker.bootstrap, topic) == [b"first"]


def test_markers_for_unknown_partitions_say_so(broker: EmbeddedBroker) -> None:
    topic = unique_topic("txn-unknown")
    committed_before(broker.bootstrap, topic)
    marker = WriteTxnMarkersRequest.WritableTxnMarker(
        producer_id=12345,
        producer_epoch=0,
        transaction_result=False,
        coordinator_epoch=-1,
        topics=[
            WriteTxnMarkersRequest.WritableTxnMarkerTopic(name=topic, partition_indexes=[0, 9]),
            WriteTxnMarkersRequest.WritableTxnMarkerTopic(name="no-such", partition_indexes=[0]),
        ],
    )
    response = wire_request(broker.bootstrap, WriteTxnMarkersRequest(markers=[marker]), 1)
    (result,) = response.markers
    assert result.producer_id == 12345
    assert [(t.name, [(p.partition_index, p.error_code) for p in t.partitions])
            for t in result.topics] == [
        (topic, [(0, ErrorCode.NONE), (9, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]),
        ("no-such", [(0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]),
    ]  # fmt: skip
    # a marker of a producer with no transaction there hides nothing
    assert read_all(broker.bootstrap, topic) == [b"before"]


def test_librdkafka_commits_a_consumer_protocol_group_with_offset_commit_v9(
    broker: EmbeddedBroker,
) -> None:
    topic, group = unique_topic("v9"), unique_topic("g")
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(5):
        producer.produce(topic, value=f"m{i}".encode(), partition=0)
    assert producer.flush(CLIENT_TIMEOUT) == 0
    logs: list[str] = []

    class Capture:
        def log(self, _level: int, msg: str, *args: object) -> None:
            logs.append(msg % args if args else msg)

    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": group,
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "debug": "protocol",
        },
        logger=Capture(),
    )
    try:
        consumer.subscribe([topic])
        seen: list[bytes] = []

        def read() -> bool:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                seen.append(msg.value() or b"")
            return len(seen) == 5

        wait_until(read, CLIENT_TIMEOUT, "the member reads the five messages")
        consumer.commit(asynchronous=False)
        (committed,) = consumer.committed([TopicPartition(topic, 0)], CLIENT_TIMEOUT)
        assert committed.offset == 5
    finally:
        consumer.close()
    assert any("OffsetCommitRequest (v9" in line for line in logs), "no v9 OffsetCommit sent"
