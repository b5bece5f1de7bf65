"""Log compaction and topic configs through real clients against a broker process.

confluent-kafka's admin client creates compacted topics, describes and alters their
configs; its producer writes several values per key; a fresh consumer reading from the
beginning then sees only the latest value of each key once the cleaner ran (the broker runs
with a short ``--log-cleaner-backoff-ms`` and tiny segments, and the test waits with a
deadline for what a user would check).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
)
from interop_support import unique_topic, wait_until
from kafka.errors import KafkaError as KafkaPythonError

from kafka import KafkaProducer
from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.broker.process import BrokerProcess

pytestmark = pytest.mark.interop

TINY_SEGMENTS = {
    "cleanup.policy": "compact",
    "segment.bytes": "1024",
    "min.cleanable.dirty.ratio": "0.01",
}


def _create(bootstrap: str, topic: str, configs: dict[str, str], partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, 1, config=configs)])
    futures[topic].result(30)


def _describe(bootstrap: str, topic: str) -> dict[str, ConfigEntry]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return dict(admin.describe_configs([resource])[resource].result(30))


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    failures: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failures.append(err)

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 1})
    for key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not failures, failures


def _read_all(bootstrap: str, topic: str) -> list[tuple[int, bytes | None, bytes | None]]:
    """Every record, from the beginning to the current end, as a fresh consumer sees it."""
    return _read_all_with(bootstrap, topic, "read_committed")


def _read_all_with(
    bootstrap: str, topic: str, isolation: str
) -> list[tuple[int, bytes | None, bytes | None]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"fresh-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    try:
        _, end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
        consumer.assign([TopicPartition(topic, 0, 0)])
        seen: list[tuple[int, bytes | None, bytes | None]] = []

        def caught_up() -> bool:
            for message in consumer.consume(1000, 0.5):
                if message.error() is not None:
                    raise KafkaException(message.error())
                offset = message.offset()
                assert offset is not None  # a fetched message has one
                seen.append((offset, message.key(), message.value()))
            position = consumer.position([TopicPartition(topic, 0)])[0].offset
            return position >= end

        wait_until(caught_up, 60, "the consumer reaching the end of the topic")
        return seen
    finally:
        consumer.close()


def test_describe_configs_reports_every_topic_config_with_its_source(
    broker: EmbeddedBroker,
) -> None:
    topic = unique_topic("configs")
    _create(broker.bootstrap, topic, {"cleanup.policy": "compact", "delete.retention.ms": "5000"})
    configs = _describe(broker.bootstrap, topic)
    assert configs["cleanup.policy"].value == "compact"
    assert source_of(configs["cleanup.policy"]) == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["delete.retention.ms"].value == "5000"
    assert configs["min.cleanable.dirty.ratio"].value == "0.5"
    assert source_of(configs["min.cleanable.dirty.ratio"]) == ConfigSource.DEFAULT_CONFIG.value
    assert configs["min.compaction.lag.ms"].value == "0"
    assert configs["segment.ms"].value == "604800000"
    assert configs["segment.bytes"].value == "1073741824"
    assert configs["retention.ms"].value == "604800000"
    assert len(configs) == 36  # every topic config Kafka 3.9 has
    # the broker sets flush.ms (its flush interval): reported as a static broker config
    assert source_of(configs["flush.ms"]) == ConfigSource.STATIC_BROKER_CONFIG.value


def test_incremental_and_full_alter_configs_change_what_describe_reports(
    broker: EmbeddedBroker,
) -> None:
    topic = unique_topic("alter")
    _create(broker.bootstrap, topic, {})
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry(
                "cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND
            ),
            ConfigEntry("segment.ms", "60000", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    admin.incremental_alter_configs([resource])[resource].result(30)
    configs = _describe(broker.bootstrap, topic)
    assert configs["cleanup.policy"].value == "compact,delete"
    assert configs["segment.ms"].value == "60000"
    # a bad value is refused with INVALID_CONFIG naming it, and changes nothing
    bad = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("cleanup.policy", "shred", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    with pytest.raises(KafkaException) as caught:
        admin.incremental_alter_configs([bad])[bad].result(30)
    assert caught.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert "shred" in caught.value.args[0].str()
    assert _describe(broker.bootstrap, topic)["cleanup.policy"].value == "compact,delete"
    # AlterConfigs replaces the whole set of overrides
    full = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"retention.ms": "1000"})
    with pytest.warns(DeprecationWarning):  # deprecated in the client, still used by tools
        admin.alter_configs([full])[full].result(30)
    configs = _describe(broker.bootstrap, topic)
    assert configs["retention.ms"].value == "1000"
    assert configs["cleanup.policy"].value == "delete"
    assert source_of(configs["segment.ms"]) == ConfigSource.DEFAULT_CONFIG.value


@pytest.mark.parametrize(
    "configs",
    [
        {"cleanup.policy": "compact,shred"},
        {"min.cleanable.dirty.ratio": "2"},
        {"delete.retention.ms": "-5"},
        {"min.compaction.lag.ms": "soon"},
        {"segment.ms": "0"},
    ],
)
def test_create_topics_refuses_bad_values_naming_them(
    broker: EmbeddedBroker, configs: dict[str, str]
) -> None:
    with pytest.raises(KafkaException) as caught:
        _create(broker.bootstrap, unique_topic("bad"), configs)
    error = caught.value.args[0]
    assert error.code() == KafkaError.INVALID_CONFIG
    (name,) = configs
    assert name in error.str()


def test_records_without_a_key_are_refused_by_a_compacted_topic(broker: EmbeddedBroker) -> None:
    topic = unique_topic("keyless")
    _create(broker.bootstrap, topic, {"cleanup.policy": "compact"})
    with pytest.raises(AssertionError) as caught:
        _produce(broker.bootstrap, topic, [(None, b"no key")])
    assert "INVALID_RECORD" in str(caught.value)
    # kafka-python too gets the record error, and a keyed record goes in
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, retries=0)
    try:
        with pytest.raises(KafkaPythonError) as refused:
            producer.send(topic, value=b"no key").get(timeout=30)
        assert type(refused.value).__name__ == "InvalidRecordError"
        assert "without a key" in str(refused.value)
        assert producer.send(topic, key=b"k", value=b"v").get(timeout=30).offset == 0
    finally:
        producer.close()


@pytest.mark.slow
def test_a_fresh_consumer_of_a_compacted_topic_sees_only_the_latest_values(
    broker_process: Callable[..., BrokerProcess],
) -> None:
    proc = broker_process(log_cleaner_backoff_ms=100)
    topic = unique_topic("latest")
    _create(proc.bootstrap, topic, TINY_SEGMENTS)
    latest: dict[bytes, bytes] = {}
    records: list[tuple[bytes | None, bytes | None]] = []
    for round_ in range(10):
        for k in range(20):
            key, value = f"account-{k}".encode(), f"balance {round_}-{k}".encode()
            records.append((key, value))
            latest[key] = value
    records += [(b"account-3", None)]  # a delete: the tombstone stays a while
    del latest[b"account-3"]
    # other keys after them, so that every account lands in a closed segment
    records += [(f"filler-{i}".encode(), b"x" * 100) for i in range(30)]
    _produce(proc.bootstrap, topic, records)

    def compacted() -> list[tuple[int, bytes | None, bytes | None]] | None:
        seen = _read_all(proc.bootstrap, topic)
        accounts = [r for r in seen if r[1] is not None and r[1].startswith(b"account")]
        return seen if len(accounts) == len(latest) + 1 else None

    seen = wait_until(compacted, 90, "the cleaner compacting the topic")
    accounts = {key: value for _, key, value in seen if key and key.startswith(b"account")}
    assert accounts == {**latest, b"account-3": None}
    offsets = [offset for offset, _, _ in seen]
    assert offsets == sorted(set(offsets))  # strictly increasing, as produced
    # offsets are those the records got when produced: account-k's last value was the
    # (180 + k)-th record
    for offset, seen_key, _ in seen:
        if seen_key is not None and seen_key.startswith(b"account-") and seen_key != b"account-3":
            assert offset == 180 + int(seen_key.split(b"-")[1])
    # a restart keeps the compacted log as it is
    proc.terminate()
    proc.start()
    assert _read_all(proc.bootstrap, topic) == seen


@pytest.mark.slow
def test_compaction_drops_aborted_transactions_and_keeps_committed_latest_values(
    broker_process: Callable[..., BrokerProcess],
) -> None:
    """A transactional producer commits some transactions and aborts others on a compacted
    topic: once cleaned, even a read_uncommitted consumer finds no aborted record, and a
    read_committed one still gets the latest committed value of every key."""
    proc = broker_process(log_cleaner_backoff_ms=100)
    topic = unique_topic("txn-compact")
    _create(proc.bootstrap, topic, TINY_SEGMENTS)
    producer = Producer(
        {"bootstrap.servers": proc.bootstrap, "transactional.id": f"t-{uuid.uuid4().hex}"}
    )
    producer.init_transactions(30)
    latest: dict[bytes, bytes] = {}
    for round_ in range(12):
        producer.begin_transaction()
        commit = round_ % 3 != 2
        for k in range(8):
            key = f"item-{k}".encode()
            value = f"{'kept' if commit else 'aborted'} {round_}".encode()
            producer.produce(topic, key=key, value=value)
            if commit:
                latest[key] = value
        producer.flush(30)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)
    _produce(proc.bootstrap, topic, [(f"filler-{i}".encode(), b"x" * 200) for i in range(20)])

    def cleaned() -> list[tuple[int, bytes | None, bytes | None]] | None:
        seen = _read_all_with(proc.bootstrap, topic, "read_uncommitted")
        items = [r for r in seen if r[1] is not None and r[1].startswith(b"item-")]
        return seen if len(items) == len(latest) else None

    uncommitted = wait_until(cleaned, 90, "the cleaner dropping aborted and old records")
    assert not [r for r in uncommitted if r[2] is not None and r[2].startswith(b"aborted")]
    committed = _read_all_with(proc.bootstrap, topic, "read_committed")
    items = {k: v for _, k, v in committed if k is not None and k.startswith(b"item-")}
    assert items == latest


@pytest.mark.slow
def test_kill_9_of_the_broker_while_it_cleans_loses_nothing(
    broker_process: Callable[..., BrokerProcess],
) -> None:
    """The broker is killed while its cleaner has cleaned copies staged; after the restart a
    fresh consumer finds every key's latest value at its offset, and the next cleaning
    finishes the job."""
    proc = broker_process(log_cleaner_backoff_ms=100)
    topic = unique_topic("killed")
    # dirty ratio 1: nothing is cleaned until the test has written everything
    _create(proc.bootstrap, topic, {**TINY_SEGMENTS, "min.cleanable.dirty.ratio": "1"})
    latest: dict[bytes, bytes] = {}
    records: list[tuple[bytes | None, bytes | None]] = []
    for round_ in range(100):
        for k in range(50):
            key, value = f"sku-{k}".encode(), f"price {round_}".encode()
            records.append((key, value))
            latest[key] = value
    records += [(f"filler-{i}".encode(), b"x" * 100) for i in range(30)]
    _produce(proc.bootstrap, topic, records)
    before = {offset: (k, v) for offset, k, v in _read_all(proc.bootstrap, topic)}
    staging = proc.data_dir / "logs" / f"{topic}-0" / "cleaning"
    admin = AdminClient({"bootstrap.servers": proc.bootstrap})
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry(
                "min.cleanable.dirty.ratio", "0.01", incremental_operation=AlterConfigOpType.SET
            )
        ],
    )
    admin.incremental_alter_configs([resource])[resource].result(30)
    deadline = time.monotonic() + 60
    while not (staging.is_dir() and any(staging.iterdir())):  # cleaned copies being written
        assert time.monotonic() < deadline, "the cleaner never started"
        time.sleep(0.0005)
    proc.kill()
    proc.start()
    after = _read_all(proc.bootstrap, topic)
    assert all(before[offset] == (k, v) for offset, k, v in after)
    assert {k: v for _, k, v in after if k is not None and k.startswith(b"sku-")} == latest

    def compacted() -> bool:
        seen = _read_all(proc.bootstrap, topic)
        return len([r for r in seen if r[1] is not None and r[1].startswith(b"sku-")]) == 50

    wait_until(compacted, 90, "the cleaning finished after the restart")


def source_of(entry: ConfigEntry) -> int:
    """A described config's source: the client hands out the number (its stubs say enum)."""
    source: object = entry.source
    assert isinstance(source, int), source
    return source
