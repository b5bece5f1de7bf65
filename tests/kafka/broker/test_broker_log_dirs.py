"""DescribeLogDirs: partition sizes in bytes as admin clients ask for them (kafka-python's
``describe_log_dirs``), the request's forms on the wire, and Kafka's authorization (DESCRIBE
on the cluster)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from broker_wire import WireClient, batch_of, produce_request
from click.testing import CliRunner

from kafka import KafkaAdminClient
from streamsource.cli.broker import command as broker_command
from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.protocol import ErrorCode
from streamsource.kafka.protocol.messages.acls import CreateAclsRequest
from streamsource.kafka.protocol.messages.api_versions import ApiVersionsRequest
from streamsource.kafka.protocol.messages.log_dirs import (
    DescribeLogDirsRequest,
    DescribeLogDirsResponse,
)
from streamsource.kafka.protocol.messages.sasl import (
    SaslAuthenticateRequest,
    SaslHandshakeRequest,
)
from streamsource.kafka.security.listeners import Listener

Wanted = DescribeLogDirsRequest.DescribableLogDirTopic


def segment_bytes(data_dir: Path, topic: str, partition: int) -> int:
    """What the partition's segment files hold on disk (indexes not counted, as in Kafka)."""
    directory = data_dir / "logs" / f"{topic}-{partition}"
    return sum(f.stat().st_size for f in directory.glob("*.log"))


def sizes(response: DescribeLogDirsResponse) -> dict[tuple[str, int], int]:
    if not response.results:
        return {}
    (result,) = response.results
    return {
        (t.name, p.partition_index): p.partition_size for t in result.topics for p in t.partitions
    }


@pytest.fixture
def filled(broker_factory: Callable[..., EmbeddedBroker]) -> EmbeddedBroker:
    """orders-0: 3 records, orders-1: 1 record, payments: 2 empty partitions."""
    broker = broker_factory(default_partitions=2)
    with WireClient(broker.bootstrap) as client:
        for partition, value in ((0, b"a" * 100), (0, b"b" * 200), (0, b"c"), (1, b"d" * 50)):
            answer = client.request(produce_request("orders", batch_of(value), partition), 7)
            assert answer.responses[0].partition_responses[0].error_code == 0
        created = client.request(produce_request("payments", batch_of(b"x"), 5), 7)
        # the topic is auto-created with 2 partitions; partition 5 is refused: nothing stored
        assert created.responses[0].partition_responses[0].error_code != 0
    return broker


def test_kafka_python_reads_partition_sizes(filled: EmbeddedBroker) -> None:
    data_dir = Path(filled.broker.config.data_dir)
    client = KafkaAdminClient(bootstrap_servers=filled.bootstrap)
    try:
        (everything,) = client.describe_log_dirs()
        (one,) = client.describe_log_dirs({"orders": [1]})
    finally:
        client.close()
    assert everything["broker"] == 0
    (log_dir,) = everything["log_dirs"]
    assert log_dir["error_code"] == 0
    assert log_dir["log_dir"] == os.path.abspath(data_dir)
    assert 0 < log_dir["usable_bytes"] <= log_dir["total_bytes"]  # v4: the volume
    found = {
        (t["name"], p["partition_index"]): p for t in log_dir["topics"] for p in t["partitions"]
    }
    for key in (("orders", 0), ("orders", 1), ("payments", 0)):
        assert found[key]["partition_size"] == segment_bytes(data_dir, *key), key
        assert (found[key]["offset_lag"], found[key]["is_future_key"]) == (0, False)
    assert found[("orders", 0)]["partition_size"] > found[("orders", 1)]["partition_size"] > 0
    assert found[("payments", 0)]["partition_size"] == 0
    (only,) = one["log_dirs"]
    assert [
        (t["name"], [p["partition_index"] for p in t["partitions"]]) for t in only["topics"]
    ] == [("orders", [1])]


def test_the_request_forms_on_the_wire(filled: EmbeddedBroker) -> None:
    data_dir = Path(filled.broker.config.data_dir)
    with WireClient(filled.bootstrap) as client:
        advertised = client.request(ApiVersionsRequest(), 3)
        every = client.request(DescribeLogDirsRequest(topics=None), 0)  # null: everything
        picked = client.request(
            DescribeLogDirsRequest(
                topics=[
                    Wanted(topic="orders", partitions=[0]),
                    Wanted(topic="orders", partitions=[1, 7]),  # twice: the union; 7 is absent
                    Wanted(topic="nowhere", partitions=[0]),  # absent topics are left out
                ]
            ),
            2,
        )
        none = client.request(DescribeLogDirsRequest(topics=[]), 4)
    assert {v.api_key: (v.min_version, v.max_version) for v in advertised.api_keys}[35] == (0, 4)
    assert sizes(every) == {
        ("orders", 0): segment_bytes(data_dir, "orders", 0),
        ("orders", 1): segment_bytes(data_dir, "orders", 1),
        ("payments", 0): 0,
        ("payments", 1): 0,
    }
    assert (every.results[0].total_bytes, every.results[0].usable_bytes) == (-1, -1)  # < v4
    assert sizes(picked) == {k: v for k, v in sizes(every).items() if k[0] == "orders"}
    assert none.error_code == 0 and len(none.results) == 1 and sizes(none) == {}


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    data_dir = tmp_path / "locked"
    for user in ("admin", "alice", "mallory"):
        result = CliRunner().invoke(
            broker_command,
            ["users", "set", user, "--data-dir", str(data_dir)],
            input=f"{user}-pw\n",
        )
        assert result.exit_code == 0, result.output
    with EmbeddedBroker(
        data_dir=data_dir,
        port=0,
        listeners=(Listener.parse("SASL_PLAINTEXT://127.0.0.1:0"),),
        authorizer=True,
        super_users=("User:admin",),
    ) as broker:
        yield broker


def login(broker: EmbeddedBroker, user: str) -> WireClient:
    client = WireClient(broker.broker.bootstrap_for("SASL_PLAINTEXT"))
    assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == 0
    token = f"\0{user}\0{user}-pw".encode()
    assert client.request(SaslAuthenticateRequest(auth_bytes=token), 2).error_code == 0
    return client


def test_describe_on_the_cluster_is_required(locked: EmbeddedBroker) -> None:
    with login(locked, "admin") as admin:
        admin.request(produce_request("secret", batch_of(b"x")), 7)
        granted = admin.request(
            CreateAclsRequest(creations=[
                CreateAclsRequest.AclCreation(
                    resource_type=4, resource_name="kafka-cluster", resource_pattern_type=3,
                    principal="User:alice", host="*", operation=8, permission_type=3)]),
            3,
        )  # fmt: skip
        assert [r.error_code for r in granted.results] == [0]
        as_admin = admin.request(DescribeLogDirsRequest(topics=None), 4)
    with login(locked, "mallory") as mallory:
        refused = mallory.request(DescribeLogDirsRequest(topics=None), 4)
        refused_old = mallory.request(DescribeLogDirsRequest(topics=None), 1)
    with login(locked, "alice") as alice:
        allowed = alice.request(DescribeLogDirsRequest(topics=None), 4)
    assert refused.error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    assert refused.results == [] and refused_old.results == []  # v0-2: no error field, as Kafka
    assert allowed.error_code == 0 and sizes(allowed)[("secret", 0)] > 0
    assert sizes(allowed) == sizes(as_admin)
