"""The topic manager: Kafka's name rules, persistence, deletion, retention through the broker."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from broker_wire import WireClient, batch_of, produce_request

from streamsource.kafka import BrokerConfig, EmbeddedBroker
from streamsource.kafka.broker.topics import TopicError, TopicManager, validate_topic_name
from streamsource.kafka.protocol import ErrorCode
from streamsource.kafka.protocol.messages.fetch import FetchRequest
from streamsource.kafka.protocol.messages.topics import CreateTopicsRequest


@pytest.mark.parametrize("name", ["a", "A-b_c.d", "x" * 249, "__consumer_offsets", "0"])
def test_legal_topic_names(name: str) -> None:
    validate_topic_name(name)


@pytest.mark.parametrize("name", ["", ".", "..", "x" * 250, "a b", "a/b", "a:b", "ü", "a\x00"])
def test_illegal_topic_names(name: str) -> None:
    with pytest.raises(TopicError) as raised:
        validate_topic_name(name)
    assert raised.value.error_code == ErrorCode.INVALID_TOPIC_EXCEPTION


def test_topics_persist_and_orphans_are_removed(tmp_path: Path) -> None:
    config = BrokerConfig(data_dir=tmp_path)
    manager = TopicManager(config)
    manager.open()
    created = manager.create("kept", 2, {"retention.ms": "1000"})
    manager.create("dropped")
    with pytest.raises(TopicError) as exists:
        manager.create("kept")
    assert exists.value.error_code == ErrorCode.TOPIC_ALREADY_EXISTS
    with pytest.raises(TopicError) as collides:
        manager.create("dropped")
    assert collides.value.error_code == ErrorCode.TOPIC_ALREADY_EXISTS
    manager.create("a.b")
    with pytest.raises(TopicError) as dotted:
        manager.create("a_b")
    assert dotted.value.error_code == ErrorCode.INVALID_TOPIC_EXCEPTION
    manager.close()
    # a crash between rewriting topics.json and removing the directories leaves orphans
    document = json.loads((tmp_path / "topics.json").read_text())
    del document["topics"]["dropped"]
    (tmp_path / "topics.json").write_text(json.dumps(document))

    reopened = TopicManager(config)
    reopened.open()
    assert sorted(reopened.topics) == ["a.b", "kept"]
    kept = reopened.topics["kept"]
    assert kept.topic_id == created.topic_id
    assert len(kept.partitions) == 2
    assert kept.settings.retention_ms == 1000
    assert not (tmp_path / "logs" / "dropped-0").exists()
    reopened.close()


def test_create_topics_errors(broker: EmbeddedBroker) -> None:
    topic = CreateTopicsRequest.CreatableTopic
    with WireClient(broker.bootstrap) as client:
        response = client.request(
            CreateTopicsRequest(
                topics=[
                    topic(name="ok", num_partitions=-1, replication_factor=-1),
                    topic(name="ok", num_partitions=1, replication_factor=1),
                    topic(name="zero", num_partitions=0, replication_factor=1),
                    topic(name="replicated", num_partitions=1, replication_factor=3),
                    topic(
                        name="badconfig",
                        num_partitions=1,
                        replication_factor=1,
                        configs=[
                            CreateTopicsRequest.CreatableTopicConfig(
                                name="retention.ms", value="soon"
                            )
                        ],
                    ),
                ],
                validate_only=False,
            ),
            7,
        )
    codes = [(t.name, t.error_code) for t in response.topics]
    assert codes == [
        ("ok", ErrorCode.NONE),
        ("ok", ErrorCode.INVALID_REQUEST),
        ("zero", ErrorCode.INVALID_PARTITIONS),
        ("replicated", ErrorCode.INVALID_REPLICATION_FACTOR),
        ("badconfig", ErrorCode.INVALID_CONFIG),
    ]
    assert response.topics[0].num_partitions == 1
    assert sorted(broker.broker.topics.topics) == ["ok"]


def test_retention_removes_old_segments(broker_factory: Callable[..., EmbeddedBroker]) -> None:
    broker = broker_factory()
    with WireClient(broker.bootstrap) as client:
        created = client.request(
            CreateTopicsRequest(
                topics=[
                    CreateTopicsRequest.CreatableTopic(
                        name="short",
                        num_partitions=1,
                        replication_factor=1,
                        configs=[
                            CreateTopicsRequest.CreatableTopicConfig(
                                name="retention.bytes", value="300"
                            ),
                            CreateTopicsRequest.CreatableTopicConfig(
                                name="segment.bytes", value="200"
                            ),
                        ],
                    )
                ]
            ),
            4,
        )
        assert created.topics[0].error_code == ErrorCode.NONE
        for i in range(10):
            client.request(produce_request("short", batch_of(b"payload %d" % i + b"." * 100)), 9)
        assert broker.call(lambda b: b.enforce_retention()) > 0
        start = broker.broker.topics.partition("short", 0)
        assert start is not None and start.log_start_offset > 0
        fetched = client.request(
            FetchRequest(
                max_wait_ms=0,
                min_bytes=0,
                topics=[
                    FetchRequest.FetchTopic(
                        topic="short",
                        partitions=[
                            FetchRequest.FetchPartition(
                                partition=0, fetch_offset=0, partition_max_bytes=1000
                            )
                        ],
                    )
                ],
            ),
            11,
        )
        assert fetched.responses[0].partitions[0].error_code == ErrorCode.OFFSET_OUT_OF_RANGE
        assert fetched.responses[0].partitions[0].log_start_offset == start.log_start_offset
