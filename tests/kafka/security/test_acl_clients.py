"""ACLs with real clients: a write ACL on one topic, a consumer without group READ, Metadata
listing only describable topics, ACL admin through confluent-kafka, durability across a
restart, mTLS principals, and who may change ACLs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from kafka.errors import TopicAuthorizationFailedError
from security_support import Pki, make_pki
from test_tls_listeners import CLIENT_TIMEOUT_S

from deadline import Deadline
from kafka import KafkaProducer
from streamsource.cli.broker import command as broker_command
from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.client_security import ClientSecurity
from streamsource.kafka.security.listeners import Listener, TlsFiles

pytestmark = pytest.mark.interop

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "admin": "admin-pw"}


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def start(factory: Callable[..., EmbeddedBroker], pki: Pki, data_dir: Path) -> EmbeddedBroker:
    return factory(
        data_dir=data_dir,
        listeners=(Listener.parse("SASL_SSL://127.0.0.1:0"), Listener.parse("SSL://127.0.0.1:0")),
        tls=TlsFiles(pki.broker_cert, pki.broker_key, pki.ca_cert),
        authorizer=True,
        super_users=("User:admin",),
    )


@pytest.fixture
def acl_broker(
    broker_factory: Callable[..., EmbeddedBroker], pki: Pki, tmp_path: Path
) -> EmbeddedBroker:
    data_dir = tmp_path / "acl-broker"
    for user, password in PASSWORDS.items():
        result = CliRunner().invoke(
            broker_command,
            ["users", "set", user, "--mechanism", "SCRAM-SHA-512", "--data-dir", str(data_dir)],
            input=password + "\n",
        )
        assert result.exit_code == 0, result.output
    broker = start(broker_factory, pki, data_dir)
    admin = admin_client(broker, pki, "admin")
    for future in admin.create_topics(
        [NewTopic("orders", 1), NewTopic("payments", 1), NewTopic("order-lines", 1)]
    ).values():
        future.result(timeout=CLIENT_TIMEOUT_S)
    return broker


def settings(broker: EmbeddedBroker, pki: Pki, user: str) -> dict[str, Any]:
    security = ClientSecurity(
        "SASL_SSL",
        mechanism="SCRAM-SHA-512",
        username=user,
        password=PASSWORDS[user],
        ca_location=str(pki.ca_cert),
    )
    return {"bootstrap.servers": broker.broker.bootstrap_for("SASL_SSL"), **security.librdkafka()}


def admin_client(broker: EmbeddedBroker, pki: Pki, user: str) -> AdminClient:
    return AdminClient(settings(broker, pki, user))


def allow(principal: str, rtype: ResourceType, name: str, op: AclOperation,
          pattern: ResourcePatternType = ResourcePatternType.LITERAL) -> AclBinding:  # fmt: skip
    return AclBinding(rtype, name, pattern, principal, "*", op, AclPermissionType.ALLOW)


def create_acls(admin: AdminClient, *bindings: AclBinding) -> None:
    for future in admin.create_acls(list(bindings)).values():
        future.result(timeout=CLIENT_TIMEOUT_S)


def produce_one(config: dict[str, Any], topic: str) -> KafkaError | None:
    """The delivery error of one message (None: delivered)."""
    producer = Producer({**config, "message.timeout.ms": 10_000})
    outcome: list[KafkaError | None] = []
    producer.produce(topic, b"v", on_delivery=lambda err, _msg: outcome.append(err))
    producer.flush(CLIENT_TIMEOUT_S)
    assert len(outcome) == 1, "no delivery report"
    return outcome[0]


def test_write_acl_on_one_topic_only(acl_broker: EmbeddedBroker, pki: Pki) -> None:
    admin = admin_client(acl_broker, pki, "admin")
    create_acls(admin, allow("User:alice", ResourceType.TOPIC, "orders", AclOperation.WRITE))
    alice = settings(acl_broker, pki, "alice")
    assert produce_one(alice, "orders") is None
    refused = produce_one(alice, "payments")
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # kafka-python says the same
    security = ClientSecurity(
        "SASL_SSL", mechanism="SCRAM-SHA-512", username="alice", password=PASSWORDS["alice"],
        ca_location=str(pki.ca_cert),
    )  # fmt: skip
    producer = KafkaProducer(
        bootstrap_servers=alice["bootstrap.servers"],
        max_block_ms=10_000,
        **security.kafka_python(),
    )
    try:
        producer.send("orders", b"kp").get(timeout=CLIENT_TIMEOUT_S)
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send("payments", b"kp").get(timeout=CLIENT_TIMEOUT_S)
    finally:
        producer.close(timeout=5)
    # Metadata lists only what alice may describe (WRITE implies DESCRIBE)
    listed = AdminClient(alice).list_topics(timeout=CLIENT_TIMEOUT_S).topics
    assert "orders" in listed and "payments" not in listed and "order-lines" not in listed


def poll_error(consumer: Consumer, deadline: Deadline) -> KafkaError:
    while True:
        deadline.check()
        msg = consumer.poll(deadline.slice(0.5))
        if msg is not None and msg.error() is not None:
            error = msg.error()
            assert error is not None
            return error


def test_consumer_without_group_read_is_refused_until_granted(
    acl_broker: EmbeddedBroker, pki: Pki
) -> None:
    admin = admin_client(acl_broker, pki, "admin")
    assert produce_one(settings(acl_broker, pki, "admin"), "order-lines") is None
    # READ on every topic starting with "order", no group
    create_acls(
        admin,
        allow("User:bob", ResourceType.TOPIC, "order", AclOperation.READ,
              ResourcePatternType.PREFIXED),
    )  # fmt: skip
    bob = settings(acl_broker, pki, "bob")
    consumer = Consumer({**bob, "group.id": "bob-group", "auto.offset.reset": "earliest"})
    consumer.subscribe(["order-lines"])
    try:
        error = poll_error(consumer, Deadline(CLIENT_TIMEOUT_S, "a group authorization error"))
        assert error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    finally:
        consumer.close()
    # granted while the broker runs: the same consumer setup now reads
    create_acls(admin, allow("User:bob", ResourceType.GROUP, "bob-group", AclOperation.READ))
    consumer = Consumer({**bob, "group.id": "bob-group", "auto.offset.reset": "earliest"})
    consumer.subscribe(["order-lines"])
    try:
        deadline = Deadline(CLIENT_TIMEOUT_S, "the record")
        while True:
            deadline.check()
            msg = consumer.poll(deadline.slice(0.5))
            if msg is not None and msg.error() is None:
                assert msg.value() == b"v"
                break
    finally:
        consumer.close()


def test_acls_are_managed_by_admins_and_survive_a_restart(
    broker_factory: Callable[..., EmbeddedBroker], acl_broker: EmbeddedBroker, pki: Pki
) -> None:
    admin = admin_client(acl_broker, pki, "admin")
    binding = allow("User:alice", ResourceType.TOPIC, "orders", AclOperation.WRITE)
    # alice may not grant herself anything
    alice_admin = admin_client(acl_broker, pki, "alice")
    with pytest.raises(KafkaException) as refused:
        create_acls(alice_admin, binding)
    assert refused.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    create_acls(admin, binding)
    everything = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None,  # type: ignore[arg-type]
        AclOperation.ANY, AclPermissionType.ANY,
    )  # fmt: skip
    assert admin.describe_acls(everything).result(timeout=CLIENT_TIMEOUT_S) == [binding]
    data_dir = acl_broker.data_dir
    acl_broker.stop()
    restarted = start(broker_factory, pki, data_dir)
    admin = admin_client(restarted, pki, "admin")
    assert admin.describe_acls(everything).result(timeout=CLIENT_TIMEOUT_S) == [binding]
    alice = settings(restarted, pki, "alice")
    assert produce_one(alice, "orders") is None
    deleted = admin.delete_acls([everything])
    assert [f.result(timeout=CLIENT_TIMEOUT_S) for f in deleted.values()] == [[binding]]
    refused_now = produce_one(alice, "orders")  # no ACL left: deny
    assert refused_now is not None
    assert refused_now.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_mtls_principal_in_acls(acl_broker: EmbeddedBroker, pki: Pki) -> None:
    admin = admin_client(acl_broker, pki, "admin")
    create_acls(
        admin, allow("User:CN=writer,O=acme", ResourceType.TOPIC, "payments", AclOperation.WRITE)
    )
    bootstrap = acl_broker.broker.bootstrap_for("SSL")

    def as_certificate(common_name: str) -> dict[str, Any]:
        cert, key = pki.client(common_name)
        security = ClientSecurity(
            "SSL", ca_location=str(pki.ca_cert), certificate_location=str(cert),
            key_location=str(key),
        )  # fmt: skip
        return {"bootstrap.servers": bootstrap, **security.librdkafka()}

    assert produce_one(as_certificate("writer"), "payments") is None
    other = produce_one(as_certificate("other"), "payments")
    assert other is not None and other.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
