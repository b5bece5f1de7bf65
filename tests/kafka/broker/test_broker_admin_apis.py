"""The admin APIs added for the admin clients: DeleteGroups, CreatePartitions, DeleteRecords,
DescribeCluster, through confluent-kafka's AdminClient and kafka-python's KafkaAdminClient,
with a broker restart wherever the change must be durable."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import kafka.errors
import pytest
from broker_wire import WireClient
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kafka.structs import OffsetAndMetadata

from kafka import KafkaAdminClient, KafkaConsumer
from kafka import TopicPartition as KpTopicPartition
from streamsource.kafka import BrokerConfig, EmbeddedBroker
from streamsource.kafka.broker.topics import TopicError, TopicManager
from streamsource.kafka.protocol import ErrorCode
from streamsource.kafka.protocol.messages.api_versions import ApiVersionsRequest
from streamsource.kafka.protocol.messages.cluster import DescribeClusterRequest
from streamsource.kafka.protocol.messages.delete_groups import DeleteGroupsRequest
from streamsource.kafka.protocol.messages.partitions import (
    CreatePartitionsRequest,
    DeleteRecordsRequest,
)

Factory = Callable[..., EmbeddedBroker]
WAIT = 30  # seconds a client call may take before the test fails


def admin(broker: EmbeddedBroker) -> AdminClient:
    """An AdminClient; keep a reference while waiting on its futures (else it is destroyed)."""
    return AdminClient({"bootstrap.servers": broker.bootstrap})


@contextmanager
def kp_admin(broker: EmbeddedBroker) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        yield client
    finally:
        client.close()


def create_topic(broker: EmbeddedBroker, name: str, partitions: int) -> None:
    client = admin(broker)
    for future in client.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(WAIT)


def produce(broker: EmbeddedBroker, topic: str, partition: int, count: int) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(count):
        producer.produce(topic, b"v%d" % i, partition=partition)
    assert producer.flush(WAIT) == 0


def partition_count(broker: EmbeddedBroker, topic: str) -> int:
    metadata = admin(broker).list_topics(topic, timeout=WAIT)
    return len(metadata.topics[topic].partitions)


def commit(broker: EmbeddedBroker, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit offsets as a standalone consumer of ``group`` (no membership)."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        consumer.commit(
            offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False
        )
    finally:
        consumer.close()


def committed(broker: EmbeddedBroker, group: str, topic: str, partitions: int) -> list[int]:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], WAIT)
    finally:
        consumer.close()
    return [tp.offset for tp in found]


def group_ids(broker: EmbeddedBroker) -> set[str]:
    client = admin(broker)
    listed = client.list_consumer_groups().result(WAIT)
    return {g.group_id for g in listed.valid}


def delete_groups(broker: EmbeddedBroker, groups: list[str]) -> dict[str, int]:
    """group -> Kafka error code (0 when deleted) as confluent's AdminClient reports it."""
    outcome: dict[str, int] = {}
    client = admin(broker)
    for group, future in client.delete_consumer_groups(groups).items():
        try:
            future.result(WAIT)
            outcome[group] = 0
        except KafkaException as exc:
            outcome[group] = exc.args[0].code()
    return outcome


def first_offset(broker: EmbeddedBroker, topic: str, partition: int) -> int:
    """Where a consumer reading from the earliest position starts, and ListOffsets' earliest."""
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": "reader", "enable.auto.commit": False}
    )
    try:
        low, _high = consumer.get_watermark_offsets(TopicPartition(topic, partition), WAIT)
        consumer.assign([TopicPartition(topic, partition, -2)])  # OFFSET_BEGINNING
        message = None
        for _ in range(WAIT * 2):
            message = consumer.poll(0.5)
            if message is not None:
                break
        assert message is not None and message.error() is None
        assert message.offset() == low
        return low
    finally:
        consumer.close()


# -- DescribeCluster ----------------------------------------------------------------------


def test_describe_cluster_names_this_broker(broker: EmbeddedBroker) -> None:
    with kp_admin(broker) as kp_client:  # kafka-python asks with DescribeCluster (v2)
        info = kp_client.describe_cluster()
    assert info["cluster_id"] == broker.broker.cluster_id
    assert info["controller_id"] == 0
    assert [(b["broker_id"], b["host"], b["port"]) for b in info["brokers"]] == [
        (0, broker.broker.advertised_host, broker.broker.advertised_port)
    ]
    assert not info["brokers"][0]["is_fenced"]
    # no ACLs: every cluster operation is allowed
    assert {"DESCRIBE", "ALTER", "CREATE"} <= set(info["authorized_operations"])

    # librdkafka 2.16 answers describe_cluster from a Metadata request instead; both agree
    client = admin(broker)
    described = client.describe_cluster().result(WAIT)
    assert described.cluster_id == broker.broker.cluster_id
    assert described.controller.id == 0
    assert [(n.id, n.host, n.port) for n in described.nodes] == [
        (0, broker.broker.advertised_host, broker.broker.advertised_port)
    ]


def test_describe_cluster_has_no_controller_endpoint(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        controllers = client.request(DescribeClusterRequest(endpoint_type=2), 1)
        unknown = client.request(DescribeClusterRequest(endpoint_type=9), 1)
    assert controllers.error_code == ErrorCode.MISMATCHED_ENDPOINT_TYPE
    assert unknown.error_code == ErrorCode.UNSUPPORTED_ENDPOINT_TYPE
    assert controllers.brokers == []


def test_api_versions_advertises_the_admin_apis(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        response = client.request(ApiVersionsRequest(), 3)
    advertised = {v.api_key: (v.min_version, v.max_version) for v in response.api_keys}
    assert advertised[21] == (0, 2)  # DeleteRecords
    assert advertised[37] == (0, 3)  # CreatePartitions
    assert advertised[42] == (0, 2)  # DeleteGroups
    assert advertised[60] == (0, 2)  # DescribeCluster


# -- DeleteGroups -------------------------------------------------------------------------


def test_delete_groups_removes_offsets_durably(broker_factory: Factory) -> None:
    broker = broker_factory()
    create_topic(broker, "orders", 2)
    commit(broker, "billing", "orders", {0: 5, 1: 7})
    commit(broker, "shipping", "orders", {0: 3})
    assert {"billing", "shipping"} <= group_ids(broker)

    outcome = delete_groups(broker, ["billing", "never-existed"])

    assert outcome == {"billing": 0, "never-existed": KafkaError.GROUP_ID_NOT_FOUND}
    assert committed(broker, "billing", "orders", 2) == [-1001, -1001]  # OFFSET_INVALID
    assert "billing" not in group_ids(broker)
    assert delete_groups(broker, ["billing"]) == {"billing": KafkaError.GROUP_ID_NOT_FOUND}

    broker.stop()
    restarted = broker_factory(data_dir=broker.data_dir)
    assert "billing" not in group_ids(restarted)
    assert committed(restarted, "billing", "orders", 2) == [-1001, -1001]
    assert committed(restarted, "shipping", "orders", 1) == [3]  # other groups are untouched


def test_a_group_with_members_is_not_deleted(broker: EmbeddedBroker) -> None:
    create_topic(broker, "events", 1)
    member = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": "live", "session.timeout.ms": 10_000}
    )
    try:
        member.subscribe(["events"])
        for _ in range(WAIT * 4):
            member.poll(0.25)
            if member.assignment():
                break
        assert member.assignment(), "the consumer never joined its group"
        member.commit(offsets=[TopicPartition("events", 0, 0)], asynchronous=False)

        assert delete_groups(broker, ["live"]) == {"live": KafkaError.NON_EMPTY_GROUP}
        assert committed(broker, "live", "events", 1) == [0]
    finally:
        member.close()  # leaves the group: it is now empty and can go
    assert delete_groups(broker, ["live"]) == {"live": 0}


def test_kafka_python_delete_groups(broker: EmbeddedBroker) -> None:
    create_topic(broker, "clicks", 1)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="analytics")
    consumer.assign([KpTopicPartition("clicks", 0)])
    consumer.commit({KpTopicPartition("clicks", 0): OffsetAndMetadata(4, "", -1)})
    consumer.close()

    with kp_admin(broker) as client:
        results = client.delete_groups(["analytics", "unknown", "analytics"])
        offsets = client.list_group_offsets("analytics")

    assert results == {"analytics": "OK", "unknown": "GroupIdNotFoundError"}
    assert offsets in ({}, {"analytics": {}})


def test_delete_groups_on_the_wire(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        for version in (0, 1, 2):
            # a group named twice is answered once; "" is a group id like any other here
            response = client.request(DeleteGroupsRequest(groups_names=["x", "x", ""]), version)
            assert [(r.group_id, r.error_code) for r in response.results] == [
                ("x", ErrorCode.GROUP_ID_NOT_FOUND),
                ("", ErrorCode.GROUP_ID_NOT_FOUND),
            ]


# -- CreatePartitions ---------------------------------------------------------------------


def test_create_partitions_grows_a_topic_durably(broker_factory: Factory) -> None:
    broker = broker_factory()
    create_topic(broker, "grow", 2)
    client = admin(broker)

    client.create_partitions([NewPartitions("grow", 4)])["grow"].result(WAIT)

    assert partition_count(broker, "grow") == 4
    produce(broker, "grow", 3, 5)  # the new partition has a log
    assert first_offset(broker, "grow", 3) == 0

    broker.stop()
    restarted = broker_factory(data_dir=broker.data_dir)
    assert partition_count(restarted, "grow") == 4
    consumer = Consumer({"bootstrap.servers": restarted.bootstrap, "group.id": "check"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition("grow", 3), WAIT)
    finally:
        consumer.close()
    assert (low, high) == (0, 5)


def test_create_partitions_refusals(broker: EmbeddedBroker) -> None:
    create_topic(broker, "fixed", 3)
    client = admin(broker)

    def error_of(new: NewPartitions, **options: object) -> int:
        try:
            client.create_partitions([new], **options)[new.topic].result(WAIT)
        except KafkaException as exc:
            return int(exc.args[0].code())
        return 0

    assert error_of(NewPartitions("fixed", 3)) == KafkaError.INVALID_PARTITIONS
    assert error_of(NewPartitions("fixed", 2)) == KafkaError.INVALID_PARTITIONS
    assert error_of(NewPartitions("missing", 5)) == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert error_of(NewPartitions("fixed", 5, [[0], [1]])) == KafkaError.INVALID_REPLICA_ASSIGNMENT
    assert error_of(NewPartitions("fixed", 5, [[0]])) == KafkaError.INVALID_REPLICA_ASSIGNMENT
    assert error_of(NewPartitions("fixed", 9), validate_only=True) == 0
    assert partition_count(broker, "fixed") == 3  # nothing above changed the topic
    assert error_of(NewPartitions("fixed", 5, [[0], [0]])) == 0
    assert partition_count(broker, "fixed") == 5


def test_kafka_python_create_partitions(broker: EmbeddedBroker) -> None:
    create_topic(broker, "kp-grow", 1)
    with kp_admin(broker) as client:
        client.create_partitions({"kp-grow": 3})
        with pytest.raises(kafka.errors.InvalidPartitionsError):
            client.create_partitions({"kp-grow": 2})
    assert partition_count(broker, "kp-grow") == 3


def test_partition_growth_is_in_topics_json_and_a_crash_leaves_only_orphans(
    tmp_path: Path,
) -> None:
    config = BrokerConfig(data_dir=tmp_path)
    manager = TopicManager(config)
    manager.open()
    manager.create("t", 1)
    manager.add_partitions("t", 3)
    with pytest.raises(TopicError) as refused:
        manager.add_partitions("t", 3)
    assert refused.value.error_code == ErrorCode.INVALID_PARTITIONS
    manager.close()
    document = json.loads((tmp_path / "topics.json").read_text())
    assert document["topics"]["t"]["partitions"] == 3
    # a crash after the new directories were made but before topics.json named them
    document["topics"]["t"]["partitions"] = 2
    (tmp_path / "topics.json").write_text(json.dumps(document))

    reopened = TopicManager(config)
    reopened.open()

    assert len(reopened.topics["t"].partitions) == 2
    assert not (tmp_path / "logs" / "t-2").exists()
    reopened.add_partitions("t", 4)  # the lost partition can be made again
    assert [p.index for p in reopened.topics["t"].partitions] == [0, 1, 2, 3]
    reopened.close()


def test_create_partitions_names_a_topic_twice(broker: EmbeddedBroker) -> None:
    create_topic(broker, "twice", 1)
    topic = CreatePartitionsRequest.CreatePartitionsTopic
    with WireClient(broker.bootstrap) as client:
        response = client.request(
            CreatePartitionsRequest(topics=[topic(name="twice", count=2)] * 2, timeout_ms=1000),
            0,
        )
    assert [r.error_code for r in response.results] == [ErrorCode.INVALID_REQUEST] * 2
    assert partition_count(broker, "twice") == 1


# -- DeleteRecords ------------------------------------------------------------------------


def test_delete_records_moves_the_log_start_durably(broker_factory: Factory) -> None:
    broker = broker_factory()
    create_topic(broker, "trim", 2)
    produce(broker, "trim", 0, 10)
    produce(broker, "trim", 1, 4)

    client = admin(broker)
    deleted = client.delete_records([TopicPartition("trim", 0, 6)])
    (result,) = deleted.values()
    assert result.result(WAIT).low_watermark == 6
    assert first_offset(broker, "trim", 0) == 6

    with kp_admin(broker) as kp_client:
        # -1 means "up to the high watermark"
        results = kp_client.delete_records({KpTopicPartition("trim", 1): -1})
        assert results[KpTopicPartition("trim", 1)]["low_watermark"] == 4
        with pytest.raises(kafka.errors.OffsetOutOfRangeError):
            kp_client.delete_records({KpTopicPartition("trim", 0): 11})

    broker.stop()
    restarted = broker_factory(data_dir=broker.data_dir)
    assert first_offset(restarted, "trim", 0) == 6
    produce(restarted, "trim", 1, 1)
    assert first_offset(restarted, "trim", 1) == 4


def test_delete_records_on_the_wire(broker: EmbeddedBroker) -> None:
    create_topic(broker, "wire-trim", 1)
    produce(broker, "wire-trim", 0, 3)
    topic = DeleteRecordsRequest.DeleteRecordsTopic
    partition = DeleteRecordsRequest.DeleteRecordsPartition
    request = DeleteRecordsRequest(
        topics=[
            topic(
                name="wire-trim",
                partitions=[
                    partition(partition_index=0, offset=2),
                    partition(partition_index=7, offset=0),
                ],
            ),
            topic(name="nope", partitions=[partition(partition_index=0, offset=0)]),
        ],
        timeout_ms=1000,
    )
    with WireClient(broker.bootstrap) as client:
        first = client.request(request, 2)
        request.topics[0].partitions[0].offset = 1  # below the start now: nothing changes
        again = client.request(request, 0)
    answers = [
        [(p.partition_index, p.low_watermark, p.error_code) for p in t.partitions]
        for t in first.topics
    ]
    assert answers == [
        [(0, 2, ErrorCode.NONE), (7, -1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)],
        [(0, -1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)],
    ]
    assert again.topics[0].partitions[0].low_watermark == 2
