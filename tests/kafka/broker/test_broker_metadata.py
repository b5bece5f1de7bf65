"""Metadata and ApiVersions as clients see them, over the raw protocol."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from broker_wire import WireClient

from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.protocol import SUPPORTED_VERSIONS, ErrorCode
from streamsource.kafka.protocol.messages.api_versions import ApiVersionsRequest
from streamsource.kafka.protocol.messages.metadata import MetadataRequest


@pytest.mark.parametrize("version", [0, 1, 4, 9, 10, 12])
def test_first_metadata_naming_an_unknown_topic_creates_it_with_its_leader(
    broker: EmbeddedBroker, version: int
) -> None:
    name = f"fresh-v{version}"
    with WireClient(broker.bootstrap) as client:
        response = client.request(
            MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=name)]), version
        )
    (topic,) = response.topics
    assert (topic.name, topic.error_code) == (name, ErrorCode.NONE)
    assert [
        (p.partition_index, p.leader_id, p.replica_nodes, p.isr_nodes) for p in topic.partitions
    ] == [(0, 0, [0], [0])]
    assert [(b.node_id, b.host, b.port) for b in response.brokers] == [
        (0, broker.host, broker.port)
    ]
    if version >= 2:
        assert response.cluster_id == broker.broker.cluster_id
    if version >= 10:
        assert topic.topic_id == broker.broker.topics.topics[name].topic_id


def test_metadata_does_not_create_when_the_client_says_no(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        response = client.request(
            MetadataRequest(
                topics=[MetadataRequest.MetadataRequestTopic(name="not-wanted")],
                allow_auto_topic_creation=False,
            ),
            9,
        )
    assert response.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert "not-wanted" not in broker.broker.topics.topics


def test_all_topics_and_partition_count(broker_factory: Callable[..., EmbeddedBroker]) -> None:
    broker = broker_factory(default_partitions=3)
    with WireClient(broker.bootstrap) as client:
        client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="a")]), 9)
        client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="b")]), 9)
        everything = client.request(MetadataRequest(topics=None), 9)
        everything_v0 = client.request(MetadataRequest(topics=[]), 0)
    for response in (everything, everything_v0):
        assert {t.name: len(t.partitions) for t in response.topics} == {"a": 3, "b": 3}


def test_api_versions_lists_every_implemented_api_from_version_0(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        for version in range(4):
            response = client.request(ApiVersionsRequest(), version)
            advertised = {v.api_key: (v.min_version, v.max_version) for v in response.api_keys}
            assert advertised == {int(k): v for k, v in SUPPORTED_VERSIONS.items()}
            # WriteTxnMarkers starts at v1, as in Kafka 4.0
            assert all(low == (1 if key == 27 else 0) for key, (low, _) in advertised.items())


def test_topic_id_is_stable_across_restarts(broker_factory: Callable[..., EmbeddedBroker]) -> None:
    broker = broker_factory()
    with WireClient(broker.bootstrap) as client:
        first = client.request(
            MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="same")]), 12
        )
    cluster_id = broker.broker.cluster_id
    data_dir = broker.data_dir
    broker.stop()
    again = broker_factory(data_dir=data_dir)
    with WireClient(again.bootstrap) as client:
        second = client.request(MetadataRequest(topics=None), 12)
    assert second.topics[0].topic_id == first.topics[0].topic_id
    assert second.cluster_id == cluster_id


def test_describe_configs_of_a_topic_and_the_broker(broker: EmbeddedBroker) -> None:
    from streamsource.kafka.protocol.messages.configs import DescribeConfigsRequest
    from streamsource.kafka.protocol.messages.topics import CreateTopicsRequest

    resource = DescribeConfigsRequest.DescribeConfigsResource
    with WireClient(broker.bootstrap) as client:
        client.request(
            CreateTopicsRequest(
                topics=[
                    CreateTopicsRequest.CreatableTopic(
                        name="configured",
                        num_partitions=1,
                        replication_factor=1,
                        configs=[
                            CreateTopicsRequest.CreatableTopicConfig(
                                name="retention.ms", value="5000"
                            )
                        ],
                    )
                ]
            ),
            5,
        )
        response = client.request(
            DescribeConfigsRequest(
                resources=[
                    resource(resource_type=2, resource_name="configured", configuration_keys=None),
                    resource(
                        resource_type=4, resource_name="0", configuration_keys=["num.partitions"]
                    ),
                    resource(resource_type=2, resource_name="missing", configuration_keys=None),
                ]
            ),
            4,
        )
    topic, node, missing = response.results
    values = {c.name: (c.value, c.config_source) for c in topic.configs}
    assert values["retention.ms"] == ("5000", 1)  # set on the topic
    assert values["segment.bytes"] == (str(1024**3), 5)  # a default
    assert [(c.name, c.value) for c in node.configs] == [("num.partitions", "1")]
    assert missing.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
