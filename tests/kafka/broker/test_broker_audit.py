"""Issue 3 checked through the running broker where the log/coordinator tests stop short:
stored bytes, recovery of a damaged data dir, per-topic settings and the retention timer,
session timeouts, producer state across a clean restart, groups through admin clients."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable
from pathlib import Path

from broker_wire import (
    WireClient,
    batch_of,
    fetch_values,
    idempotent_batch,
    init_producer,
    produce_request,
    produced,
)
from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from deadline import wait_until
from kafka import KafkaAdminClient, KafkaConsumer
from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.broker.topics import (
    FDS_PER_PARTITION,
    MAX_PARTITIONS_PER_BROKER,
    default_max_partitions,
)
from streamsource.kafka.protocol import SUPPORTED_VERSIONS, ApiKey, ErrorCode
from streamsource.kafka.protocol.messages.configs import DescribeConfigsRequest
from streamsource.kafka.protocol.messages.fetch import FetchRequest
from streamsource.kafka.protocol.messages.groups import JoinGroupRequest, SyncGroupRequest
from streamsource.kafka.protocol.messages.list_offsets import ListOffsetsRequest
from streamsource.kafka.protocol.messages.metadata import MetadataRequest
from streamsource.kafka.protocol.messages.topics import CreateTopicsRequest
from streamsource.kafka.records import Record, build_batch, iter_batch_records, iter_batches
from streamsource.kafka.records.legacy import iter_legacy_messages

TOPIC_RESOURCE = 2


LIMIT = 30.0  # only turns a hang into a failure; it measures nothing


def create_topic(client: WireClient, name: str, **configs: str) -> None:
    response = client.request(
        CreateTopicsRequest(
            topics=[
                CreateTopicsRequest.CreatableTopic(
                    name=name,
                    num_partitions=1,
                    replication_factor=1,
                    configs=[
                        CreateTopicsRequest.CreatableTopicConfig(name=k.replace("_", "."), value=v)
                        for k, v in configs.items()
                    ],
                )
            ]
        ),
        5,
    )
    assert response.topics[0].error_code == ErrorCode.NONE, response


def segment_files(broker: EmbeddedBroker, topic: str) -> list[str]:
    directory = broker.data_dir / "logs" / f"{topic}-0"
    return sorted(p.name for p in directory.glob("*.log"))


def test_batches_are_stored_byte_for_byte_apart_from_base_offset_and_leader_epoch(
    broker: EmbeddedBroker,
) -> None:
    sent = [batch_of(b"first", b"second", key=b"k"), batch_of(b"third")]
    with WireClient(broker.bootstrap) as client:
        for batch in sent:
            assert produced(client, "raw", batch)[0] == ErrorCode.NONE
    broker.call(lambda b: b.flusher.flush(list(b.topics.partitions())))
    (log_file,) = (broker.data_dir / "logs" / "raw-0").glob("*.log")
    stored = log_file.read_bytes()
    assert len(stored) == sum(len(b) for b in sent)
    position = 0
    for base_offset, batch in zip((0, 2), sent, strict=True):
        on_disk = stored[position : position + len(batch)]
        assert int.from_bytes(on_disk[0:8], "big") == base_offset
        # bytes 12-16 are the partition leader epoch; everything after is under the CRC
        assert on_disk[8:12] == batch[8:12]
        assert on_disk[16:] == batch[16:]
        position += len(batch)
    # and a magic-2 reader is served exactly those bytes
    request = FetchRequest(
        max_wait_ms=0,
        min_bytes=0,
        max_bytes=1_000_000,
        topics=[
            FetchRequest.FetchTopic(
                topic="raw",
                partitions=[
                    FetchRequest.FetchPartition(
                        partition=0, fetch_offset=0, partition_max_bytes=1_000_000
                    )
                ],
            )
        ],
    )
    with WireClient(broker.bootstrap) as client:
        fetched = client.request(request, 12).responses[0].partitions[0]
    assert bytes(fetched.records) == stored


def test_a_torn_tail_and_missing_indexes_are_repaired_when_the_broker_restarts(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = broker_factory()
    with WireClient(broker.bootstrap) as client:
        for i in range(3):
            assert produced(client, "torn", batch_of(b"kept %d" % i)) == (ErrorCode.NONE, i)
    broker.stop()
    directory = broker.data_dir / "logs" / "torn-0"
    (log_file,) = directory.glob("*.log")
    with log_file.open("ab") as f:
        f.write(batch_of(b"never acknowledged")[:30])  # a crash in the middle of a write
    for index in [*directory.glob("*.index"), *directory.glob("*.timeindex")]:
        index.unlink()

    restarted = broker_factory(data_dir=broker.data_dir)
    assert fetch_values(restarted.bootstrap, "torn") == [b"kept 0", b"kept 1", b"kept 2"]
    assert list(directory.glob("*.index")) and list(directory.glob("*.timeindex"))
    with WireClient(restarted.bootstrap) as client:
        assert produced(client, "torn", batch_of(b"after")) == (ErrorCode.NONE, 3)
        offsets = client.request(
            ListOffsetsRequest(
                replica_id=-1,
                topics=[
                    ListOffsetsRequest.ListOffsetsTopic(
                        name="torn",
                        partitions=[
                            ListOffsetsRequest.ListOffsetsPartition(partition_index=0, timestamp=0)
                        ],
                    )
                ],
            ),
            7,
        )
    assert offsets.topics[0].partitions[0].offset == 0  # the rebuilt time index answers
    assert fetch_values(restarted.bootstrap, "torn")[-1] == b"after"


def test_per_topic_segment_and_retention_settings_act_on_the_broker_timer(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = broker_factory(retention_check_interval_ms=50)
    with WireClient(broker.bootstrap) as client:
        create_topic(client, "bysize", segment_bytes="200", retention_bytes="300")
        create_topic(client, "bytime", segment_ms="1", retention_ms="1")
        create_topic(client, "forever", segment_bytes="200")
        for i in range(10):
            for topic in ("bysize", "bytime", "forever"):
                payload = b"payload %d" % i + b"." * 100
                assert produced(client, topic, batch_of(payload))[0] == ErrorCode.NONE
            time.sleep(0.005)  # so that segment.ms=1 has passed by the next append
        described = client.request(
            DescribeConfigsRequest(
                resources=[
                    DescribeConfigsRequest.DescribeConfigsResource(
                        resource_type=TOPIC_RESOURCE, resource_name=name, configuration_keys=None
                    )
                    for name in ("bysize", "bytime")
                ]
            ),
            4,
        )
    values = {
        (result.resource_name, c.name): c.value
        for result in described.results
        for c in result.configs
    }
    assert values[("bysize", "segment.bytes")] == "200"
    assert values[("bysize", "retention.bytes")] == "300"
    assert values[("bytime", "segment.ms")] == "1"
    assert values[("bytime", "retention.ms")] == "1"
    assert len(segment_files(broker, "forever")) == 10  # rolled by size, never deleted

    def start(topic: str) -> int:
        partition = broker.broker.topics.partition(topic, 0)
        assert partition is not None
        return partition.log_start_offset

    # nobody calls enforce_retention here: the broker's own timer must
    wait_until(lambda: start("bysize") >= 7, LIMIT, "size retention on the timer")
    # as in Kafka, even the active segment goes once all of it expired: the topic is empty
    wait_until(lambda: start("bytime") == 10, LIMIT, "time retention on the timer")
    assert start("forever") == 0
    assert segment_files(broker, "bytime") == ["00000000000000000010.log"]
    with WireClient(broker.bootstrap) as client:
        assert produced(client, "bytime", batch_of(b"later")) == (ErrorCode.NONE, 10)


def join_request(group: str, member_id: str, session_ms: int) -> JoinGroupRequest:
    return JoinGroupRequest(
        group_id=group,
        session_timeout_ms=session_ms,
        rebalance_timeout_ms=session_ms,
        member_id=member_id,
        protocol_type="consumer",
        protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range", metadata=b"m")],
    )


def join(client: WireClient, group: str, session_ms: int) -> tuple[str, int]:
    """Join as a new member (the v5 MEMBER_ID_REQUIRED round trip); (member id, generation)."""
    first = client.request(join_request(group, "", session_ms), 5)
    assert first.error_code == ErrorCode.MEMBER_ID_REQUIRED
    joined = client.request(join_request(group, first.member_id, session_ms), 5)
    assert joined.error_code == ErrorCode.NONE
    return joined.member_id, joined.generation_id


def test_a_member_that_stops_heartbeating_is_dropped_and_the_group_rebalances(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = broker_factory(group_min_session_timeout_ms=100)
    with WireClient(broker.bootstrap) as silent:
        member, generation = join(silent, "timeouts", 300)
        synced = silent.request(
            SyncGroupRequest(
                group_id="timeouts",
                generation_id=generation,
                member_id=member,
                protocol_type="consumer",
                protocol_name="range",
                assignments=[
                    SyncGroupRequest.SyncGroupRequestAssignment(member_id=member, assignment=b"a")
                ],
            ),
            5,
        )
        assert synced.error_code == ErrorCode.NONE
        # ``silent`` now never heartbeats; a second member's join must still complete
        answers: list[tuple[str, int, list[str]]] = []

        def second() -> None:
            with WireClient(broker.bootstrap, timeout=30) as client:
                first = client.request(join_request("timeouts", "", 60_000), 5)
                joined = client.request(join_request("timeouts", first.member_id, 60_000), 5)
                answers.append(
                    (joined.member_id, joined.generation_id, [m.member_id for m in joined.members])
                )

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(60)
    ((newcomer, new_generation, members),) = answers
    assert new_generation > generation
    assert members == [newcomer]  # the silent member was expired


def test_producer_state_survives_a_clean_restart(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = broker_factory()
    with WireClient(broker.bootstrap) as client:
        pid, epoch = init_producer(client)
        first = idempotent_batch(pid, epoch, 0, b"a", b"b")
        assert produced(client, "idem", first) == (ErrorCode.NONE, 0)
    broker.stop()
    restarted = broker_factory(data_dir=broker.data_dir)
    with WireClient(restarted.bootstrap) as client:
        assert produced(client, "idem", first) == (ErrorCode.NONE, 0)  # duplicate: same offset
        gap = idempotent_batch(pid, epoch, 5, b"x")
        assert produced(client, "idem", gap)[0] == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert produced(client, "idem", idempotent_batch(pid, epoch, 2, b"c")) == (
            ErrorCode.NONE,
            2,
        )
    assert fetch_values(restarted.bootstrap, "idem") == [b"a", b"b", b"c"]


def test_the_same_produce_request_sent_twice_is_stored_once(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        pid, epoch = init_producer(client)
        request = produce_request("twice", idempotent_batch(pid, epoch, 0, b"once"))
        answers = [client.request(request, 9) for _ in range(2)]
    results = [a.responses[0].partition_responses[0] for a in answers]
    assert [(r.error_code, r.base_offset) for r in results] == [(0, 0), (0, 0)]
    assert fetch_values(broker.bootstrap, "twice") == [b"once"]


def test_every_advertised_produce_fetch_and_metadata_version_serves_real_data(
    broker: EmbeddedBroker,
) -> None:
    produce_versions = range(SUPPORTED_VERSIONS[ApiKey.PRODUCE][1] + 1)
    fetch_versions = range(SUPPORTED_VERSIONS[ApiKey.FETCH][1] + 1)
    metadata_versions = range(SUPPORTED_VERSIONS[ApiKey.METADATA][1] + 1)
    with WireClient(broker.bootstrap) as client:
        for version in metadata_versions:
            wanted = [MetadataRequest.MetadataRequestTopic(name="everyversion")]
            meta = client.request(MetadataRequest(topics=wanted), version)
            (topic,) = meta.topics
            assert (topic.error_code, len(topic.partitions)) == (ErrorCode.NONE, 1), version
        for version in produce_versions:
            request = produce_request("everyversion", batch_of(b"v%d" % version))
            answer = client.request(request, version).responses[0].partition_responses[0]
            assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, version)
        expected = [b"v%d" % v for v in produce_versions]
        for version in fetch_versions:
            fetch = FetchRequest(
                max_wait_ms=0,
                min_bytes=0,
                max_bytes=1_000_000,
                topics=[
                    FetchRequest.FetchTopic(
                        topic="everyversion",
                        partitions=[
                            FetchRequest.FetchPartition(
                                partition=0, fetch_offset=0, partition_max_bytes=1_000_000
                            )
                        ],
                    )
                ],
            )
            data = client.request(fetch, version).responses[0].partitions[0]
            assert data.error_code == ErrorCode.NONE
            assert data.high_watermark == len(expected)
            if version < 4:  # magic 0/1 message sets, down-converted
                values = [m.value for m in iter_legacy_messages(data.records)]
                assert {m.magic for m in iter_legacy_messages(data.records)} == {
                    0 if version < 2 else 1
                }
            else:  # the stored batches themselves
                values = [
                    r.value for _, b in iter_batches(data.records) for r in iter_batch_records(b)
                ]
            assert values == expected, version


def test_admin_clients_list_and_describe_a_live_group(broker: EmbeddedBroker) -> None:
    # The topic exists before the member joins: with auto-creation, a kafka-python leader may
    # assign from metadata that lacks it and must rejoin once it appears, and that rejoin
    # can strand kafka-python 3.0.12 (the client's join race); this test is about the admin
    # views of a stable group, not about auto-creation
    with WireClient(broker.bootstrap) as client:
        create_topic(client, "described")
    consumer = KafkaConsumer(
        "described", bootstrap_servers=broker.bootstrap, group_id="watched", client_id="reader"
    )
    python_admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        wait_until(
            lambda: bool(consumer.poll(200) is not None and consumer.assignment()), LIMIT, "join"
        )
        listed = python_admin.list_groups()
        described = python_admin.describe_groups(["watched"])["watched"]
        confluent = AdminClient({"bootstrap.servers": broker.bootstrap})
        (group,) = [f.result(30) for f in confluent.describe_consumer_groups(["watched"]).values()]
        confluent_listed = confluent.list_consumer_groups().result(30).valid
    finally:
        python_admin.close()
        consumer.close()
    assert [(g["group_id"], g["group_state"]) for g in listed] == [("watched", "Stable")]
    assert described["group_state"] == "Stable"
    (member,) = described["members"]
    assert member["client_id"] == "reader"
    assert member["member_assignment"]["assigned_partitions"] == [
        {"topic": "described", "partitions": [0]}
    ]
    assert [(g.group_id, g.state) for g in confluent_listed] == [
        ("watched", ConsumerGroupState.STABLE)
    ]
    assert group.state == ConsumerGroupState.STABLE
    (confluent_member,) = group.members
    assert confluent_member.client_id == "reader"
    assert [(tp.topic, tp.partition) for tp in confluent_member.assignment.topic_partitions] == [
        ("described", 0)
    ]


def test_a_transactional_batch_without_a_transactional_id_is_refused(
    broker: EmbeddedBroker,
) -> None:
    # Kafka refuses transactional records from a producer without a transactional id; kept,
    # they would reach read_committed consumers with no commit marker ever written
    with WireClient(broker.bootstrap) as client:
        pid, epoch = init_producer(client)
        now = int(time.time() * 1000)
        transactional = build_batch(
            [Record(0, now, None, b"in a transaction")],
            producer_id=pid,
            producer_epoch=epoch,
            base_sequence=0,
            transactional=True,
        )
        error, _ = produced(client, "notx", transactional)
        assert error == ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        assert produced(client, "notx", idempotent_batch(pid, epoch, 0, b"plain")) == (0, 0)
    assert fetch_values(broker.bootstrap, "notx") == [b"plain"]


def create_partitions(client: WireClient, name: str, count: int) -> tuple[int, str | None]:
    response = client.request(
        CreateTopicsRequest(
            topics=[
                CreateTopicsRequest.CreatableTopic(
                    name=name, num_partitions=count, replication_factor=1
                )
            ]
        ),
        5,
    )
    return response.topics[0].error_code, response.topics[0].error_message


def test_partitions_beyond_what_open_files_allow_are_refused_and_the_broker_serves_on(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    # each partition holds its active segment's three files open: one CreateTopics asking
    # for the allowed 10,000 partitions used to exhaust the process's descriptors, after
    # which no client (nor the broker's own files) could be served
    broker = broker_factory(max_partitions=12)
    with WireClient(broker.bootstrap) as client:
        assert create_partitions(client, "ten", 10) == (ErrorCode.NONE, None)
        error, message = create_partitions(client, "toomany", 3)
        assert error == ErrorCode.INVALID_PARTITIONS
        assert message is not None and "12" in message
        assert create_partitions(client, "two", 2) == (ErrorCode.NONE, None)
        # auto-creation is refused the same way, through Produce and Metadata
        assert produced(client, "auto", batch_of(b"x"))[0] == ErrorCode.INVALID_PARTITIONS
        wanted = [MetadataRequest.MetadataRequestTopic(name="auto")]
        (topic,) = client.request(MetadataRequest(topics=wanted), 12).topics
        assert topic.error_code == ErrorCode.INVALID_PARTITIONS
    assert sorted(broker.broker.topics.topics) == ["ten", "two"]
    assert sorted(p.name for p in (broker.data_dir / "logs").iterdir()) == sorted(
        [f"ten-{i}" for i in range(10)] + ["two-0", "two-1"]
    )


def test_the_default_partition_limit_follows_the_open_file_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = default_max_partitions()
    if soft == resource.RLIM_INFINITY:
        assert limit == MAX_PARTITIONS_PER_BROKER
    else:
        assert 0 < limit * FDS_PER_PARTITION < soft


def test_running_out_of_descriptors_while_creating_a_topic_leaves_nothing_behind(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = broker_factory(max_partitions=MAX_PARTITIONS_PER_BROKER)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with WireClient(broker.bootstrap) as client:
        in_use = len(list(Path("/proc/self/fd").iterdir()))
        resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 30, hard))  # ~10 partitions
        try:
            error, message = create_partitions(client, "huge", 50)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert error == ErrorCode.KAFKA_STORAGE_ERROR
        assert message is not None and "huge" in message
        assert produced(client, "after", batch_of(b"served")) == (ErrorCode.NONE, 0)
    assert len(list(Path("/proc/self/fd").iterdir())) < in_use + 10  # none leaked
    assert sorted(broker.broker.topics.topics) == ["after"]
    assert [p.name for p in (broker.data_dir / "logs").iterdir()] == ["after-0"]


def test_unknown_topic_config_names_are_refused_as_kafka_does(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        response = client.request(
            CreateTopicsRequest(
                topics=[
                    CreateTopicsRequest.CreatableTopic(
                        name=name,
                        num_partitions=1,
                        replication_factor=1,
                        configs=[CreateTopicsRequest.CreatableTopicConfig(name=key, value="1")],
                    )
                    for name, key in (("misspelt", "retention.msec"), ("known", "flush.messages"))
                ]
            ),
            5,
        )
    assert [(t.name, t.error_code) for t in response.topics] == [
        ("misspelt", ErrorCode.INVALID_CONFIG),
        ("known", ErrorCode.NONE),
    ]
    assert "retention.msec" in (response.topics[0].error_message or "")
