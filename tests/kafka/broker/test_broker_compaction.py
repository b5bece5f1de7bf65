"""Compacted topics over the raw protocol: what each Produce version answers for a record
without a key, topic configs surviving a restart, broker configs as admin tools read them,
and the cleaner compacting while a producer keeps appending."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from broker_wire import WireClient, batch_of, fetch_values, produce_request
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.log.cleaner.core import marker_type
from streamsource.kafka.protocol import ErrorCode
from streamsource.kafka.protocol.messages.configs import (
    AlterConfigsRequest,
    DescribeConfigsRequest,
)


def _create(bootstrap: str, topic: str, configs: dict[str, str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config=configs)])[topic].result(30)


def test_a_keyless_record_gets_invalid_record_from_v8_and_corrupt_message_before(
    broker: EmbeddedBroker,
) -> None:
    _create(broker.bootstrap, "ledger", {"cleanup.policy": "compact"})
    with WireClient(broker.bootstrap) as client:
        for version, expected in ((7, ErrorCode.CORRUPT_MESSAGE), (8, ErrorCode.INVALID_RECORD)):
            response = client.request(produce_request("ledger", batch_of(b"no key")), version)
            (partition,) = response.responses[0].partition_responses
            assert partition.error_code == expected, version
        response = client.request(produce_request("ledger", batch_of(b"v", key=b"k")), 8)
        assert response.responses[0].partition_responses[0].error_code == ErrorCode.NONE
    assert fetch_values(broker.bootstrap, "ledger") == [b"v"]  # nothing of the refused ones


def test_topic_configs_survive_a_restart_and_alter_on_the_broker_is_refused(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    first = broker_factory()
    _create(first.bootstrap, "changelog", {"cleanup.policy": "compact,delete"})
    with WireClient(first.bootstrap) as client:
        alter = AlterConfigsRequest(
            resources=[
                AlterConfigsRequest.AlterConfigsResource(
                    resource_type=2,
                    resource_name="changelog",
                    configs=[
                        AlterConfigsRequest.AlterableConfig(name="cleanup.policy", value="compact"),
                        AlterConfigsRequest.AlterableConfig(name="retention.ms", value="-1"),
                    ],
                ),
                AlterConfigsRequest.AlterConfigsResource(
                    resource_type=4,
                    resource_name="0",
                    configs=[AlterConfigsRequest.AlterableConfig(name="num.partitions", value="3")],
                ),
            ]
        )
        topic_result, broker_result = client.request(alter, 1).responses
    assert topic_result.error_code == ErrorCode.NONE
    assert broker_result.error_code == ErrorCode.INVALID_REQUEST
    first.stop()
    second = broker_factory(data_dir=first.data_dir)
    admin = AdminClient({"bootstrap.servers": second.bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, "changelog")
    configs = admin.describe_configs([resource])[resource].result(30)
    assert (configs["cleanup.policy"].value, configs["retention.ms"].value) == ("compact", "-1")
    assert second.broker.topics.get("changelog").settings.compacted  # type: ignore[union-attr]


def test_describe_configs_of_the_broker_and_of_chosen_keys_with_synonyms(
    broker: EmbeddedBroker,
) -> None:
    _create(broker.bootstrap, "described", {"delete.retention.ms": "1000"})
    request = DescribeConfigsRequest(
        resources=[
            DescribeConfigsRequest.DescribeConfigsResource(
                resource_type=2,
                resource_name="described",
                configuration_keys=["delete.retention.ms", "cleanup.policy"],
            ),
            DescribeConfigsRequest.DescribeConfigsResource(
                resource_type=4, resource_name="0", configuration_keys=None
            ),
        ],
        include_synonyms=True,
    )
    with WireClient(broker.bootstrap) as client:
        topic, node = client.request(request, 4).results
    by_name = {c.name: c for c in topic.configs}
    assert sorted(by_name) == ["cleanup.policy", "delete.retention.ms"]
    retention = by_name["delete.retention.ms"]
    assert (retention.value, retention.config_source, retention.config_type) == ("1000", 1, 5)
    assert [(s.name, s.value, s.source) for s in retention.synonyms] == [
        ("delete.retention.ms", "1000", 1),
        ("log.cleaner.delete.retention.ms", "86400000", 5),
    ]
    broker_values = {c.name: c.value for c in node.configs}
    assert broker_values["log.cleanup.policy"] == "delete"
    assert broker_values["log.cleaner.dedupe.buffer.size"] == str(128 * 1024 * 1024)
    assert all(c.read_only for c in node.configs)


def test_the_cleaner_compacts_while_a_producer_appends(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = broker_factory(log_cleaner_enable=False)  # cleaned when the test says so
    _create(broker.bootstrap, "prices", {"cleanup.policy": "compact", "segment.bytes": "512"})
    with WireClient(broker.bootstrap) as client:

        def put(key: bytes, value: bytes) -> None:
            response = client.request(produce_request("prices", batch_of(value, key=key)), 9)
            assert response.responses[0].partition_responses[0].error_code == ErrorCode.NONE

        for i in range(30):
            put(b"apple", b"a%d" % i)
            put(b"pear", b"p%d" % i)
        results: list[int] = []
        cleaner = threading.Thread(
            target=lambda: results.append(broker.call(lambda b: b.clean_logs(force=True), 60))
        )
        cleaner.start()
        for i in range(30, 40):  # while the cleaner runs: appends go on
            put(b"apple", b"a%d" % i)
        cleaner.join(timeout=60)
        assert results and results[0] > 0
        # more appends close the segment that was active then (pears 26-29 in it, or
        # later records if the cleaner ran after the appends above): the next cleaning
        # has dirty closed segments again
        for i in range(40, 50):
            put(b"apple", b"a%d" % i)
        assert broker.call(lambda b: b.clean_logs(force=True), 60) > 0
    values = [v for v in fetch_values(broker.bootstrap, "prices") if v is not None]
    # the active segment keeps what it holds; before it, one record per key is left
    assert values[-1] == b"a49"
    pears = [v for v in values if v.startswith(b"p")]
    assert pears == [b"p29"]
    apples = [v for v in values if v.startswith(b"a")]
    assert apples == sorted(apples, key=lambda v: int(v[1:])) and len(apples) < 50


def _markers(broker: EmbeddedBroker, topic: str) -> list[tuple[int, int | None]]:
    """(offset, type) of every transaction marker in the partition's log files (0 abort,
    1 commit), as a log dump tool lists them."""
    partition = broker.broker.topics.partition(topic, 0)
    assert partition is not None
    found = []
    for header in partition.log.iter_batch_headers(0):
        if header.is_control:
            batch = partition.log.read(header.base_offset, header.size)
            found.append((header.base_offset, marker_type(batch[: header.size])))
    return found


def test_the_cleaner_removes_aborted_records_then_their_abort_marker(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    """Kafka's rule: an aborted transaction's records go in one cleaning; its marker is
    stamped with a delete horizon in the next (the transaction index stops listing it) and
    goes once the horizon has passed. The same producer's later, committed records stay
    visible to read_committed consumers throughout."""
    broker = broker_factory(log_cleaner_enable=False)  # cleaned when the test says so
    topic = "orders"
    _create(
        broker.bootstrap,
        topic,
        {"cleanup.policy": "compact", "segment.bytes": "512", "delete.retention.ms": "0"},
    )
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "orders-tx"})
    producer.init_transactions(30)
    expected: dict[bytes, bytes] = {}
    for round_ in range(6):
        producer.begin_transaction()
        for k in range(4):
            key, value = f"order-{k}".encode(), f"r{round_} {'x' * 40}".encode()
            producer.produce(topic, key=key, value=value, partition=0)
            if round_ != 1:
                expected[key] = value
        assert producer.flush(30) == 0
        if round_ == 1:
            producer.abort_transaction(30)
        else:
            producer.commit_transaction(30)
    (abort,) = [offset for offset, kind in _markers(broker, topic) if kind == 0]
    partition = broker.broker.topics.partition(topic, 0)
    assert partition is not None
    assert [a.last_offset for a in partition.txns.aborted] == [abort]

    def committed() -> dict[bytes, bytes]:
        return fetch_values_by_key(broker.bootstrap, topic)

    assert committed() == expected
    clean = lambda: broker.call(lambda b: b.clean_logs(force=True), 60)  # noqa: E731
    clean()  # the aborted records go; their marker stays, still listed
    assert (abort, 0) in _markers(broker, topic)
    assert committed() == expected
    clean()  # no record of it left: the index forgets it, the marker gets its horizon
    assert partition.txns.aborted == []
    assert committed() == expected
    clean()  # the horizon (delete.retention.ms=0) has passed: the marker goes
    assert abort not in [offset for offset, _ in _markers(broker, topic)]
    assert committed() == expected  # later records of the producer are not skipped
    # and after a restart, the index still does not list it
    data_dir = broker.data_dir
    broker.stop()
    again = broker_factory(data_dir=data_dir, log_cleaner_enable=False)
    restarted = again.broker.topics.partition(topic, 0)
    assert restarted is not None and restarted.txns.aborted == []
    assert fetch_values_by_key(again.bootstrap, topic) == expected


def fetch_values_by_key(bootstrap: str, topic: str) -> dict[bytes, bytes]:
    """The latest value per key a fresh read_committed consumer reads to the end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{topic}",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    latest: dict[bytes, bytes] = {}
    deadline = time.monotonic() + 30
    try:
        while True:
            assert time.monotonic() < deadline, f"did not reach the end of {topic}"
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                break
            latest[msg.key() or b""] = msg.value() or b""
    finally:
        consumer.close()
    return latest
