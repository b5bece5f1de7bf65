"""SASL with real clients: SCRAM-SHA-256/512 and PLAIN over SASL_SSL (confluent-kafka, kcat,
aiokafka, kafka-python), wrong passwords, users managed by the CLI and by the admin API
while the broker runs, and what an unauthenticated connection may send."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from security_support import Pki, WireClient, make_pki
from test_tls_listeners import CLIENT_TIMEOUT_S, confluent_round_trip

from kafka import KafkaConsumer, KafkaProducer
from streamsource.cli.broker import command as broker_command
from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.client_security import ClientSecurity
from streamsource.kafka.protocol import ErrorCode, MetadataRequest, RequestHeader, encode_request
from streamsource.kafka.protocol.messages.api_versions import ApiVersionsRequest
from streamsource.kafka.protocol.messages.sasl import (
    SaslAuthenticateRequest,
    SaslHandshakeRequest,
)
from streamsource.kafka.security.listeners import Listener, TlsFiles

pytestmark = pytest.mark.interop

PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret", "admin": "admin-secret"}


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def set_user(data_dir: Path, name: str, password: str, mechanism: str) -> None:
    result = CliRunner().invoke(
        broker_command,
        ["users", "set", name, "--mechanism", mechanism, "--data-dir", str(data_dir)],
        input=password + "\n",
    )
    assert result.exit_code == 0, result.output
    assert password not in result.output


@pytest.fixture
def sasl_broker(
    broker_factory: Callable[..., EmbeddedBroker], pki: Pki, tmp_path: Path
) -> EmbeddedBroker:
    data_dir = tmp_path / "sasl-broker"
    set_user(data_dir, "alice", PASSWORDS["alice"], "SCRAM-SHA-256")
    set_user(data_dir, "bob", PASSWORDS["bob"], "SCRAM-SHA-512")
    set_user(data_dir, "admin", PASSWORDS["admin"], "SCRAM-SHA-512")
    return broker_factory(
        data_dir=data_dir,
        listeners=(
            Listener.parse("SASL_SSL://127.0.0.1:0"),
            Listener.parse("SASL_PLAINTEXT://127.0.0.1:0"),
        ),
        tls=TlsFiles(pki.broker_cert, pki.broker_key),
    )


def sasl(pki: Pki, user: str, mechanism: str, password: str | None = None) -> ClientSecurity:
    return ClientSecurity(
        "SASL_SSL",
        mechanism=mechanism,
        username=user,
        password=PASSWORDS.get(user, "") if password is None else password,
        ca_location=str(pki.ca_cert),
    )


@pytest.mark.parametrize(
    ("user", "mechanism"),
    [("alice", "SCRAM-SHA-256"), ("bob", "SCRAM-SHA-512"), ("alice", "PLAIN"), ("bob", "PLAIN")],
)
def test_confluent_over_sasl_ssl(
    sasl_broker: EmbeddedBroker, pki: Pki, user: str, mechanism: str
) -> None:
    bootstrap = sasl_broker.broker.bootstrap_for("SASL_SSL")
    topic = f"conf-{user}-{mechanism}"
    assert confluent_round_trip(bootstrap, sasl(pki, user, mechanism), topic) == [
        b"a",
        b"b",
        b"c",
    ]


@pytest.mark.parametrize(
    ("user", "mechanism"), [("alice", "SCRAM-SHA-256"), ("bob", "SCRAM-SHA-512")]
)
def test_kcat_scram_over_sasl_ssl(
    sasl_broker: EmbeddedBroker, pki: Pki, user: str, mechanism: str
) -> None:
    bootstrap = sasl_broker.broker.bootstrap_for("SASL_SSL")
    settings = [
        arg
        for k, v in sasl(pki, user, mechanism).librdkafka().items()
        for arg in ("-X", f"{k}={v}")
    ]
    produced = subprocess.run(
        ["kcat", "-b", bootstrap, "-P", "-t", f"kcat-{mechanism}", *settings],
        input=b"one\ntwo\n", capture_output=True, timeout=CLIENT_TIMEOUT_S + 30,
    )  # fmt: skip
    assert produced.returncode == 0, produced.stderr.decode()
    consumed = subprocess.run(
        ["kcat", "-b", bootstrap, "-C", "-t", f"kcat-{mechanism}", "-e", "-J", "-o", "beginning",
         *settings],
        capture_output=True, timeout=CLIENT_TIMEOUT_S + 30,
    )  # fmt: skip
    assert consumed.returncode == 0, consumed.stderr.decode()
    lines = consumed.stdout.decode().splitlines()
    assert [json.loads(line)["payload"] for line in lines] == ["one", "two"]


@pytest.mark.parametrize(
    ("user", "mechanism"),
    [("alice", "SCRAM-SHA-256"), ("bob", "SCRAM-SHA-512"), ("alice", "PLAIN")],
)
def test_kafka_python_over_sasl_ssl(
    sasl_broker: EmbeddedBroker, pki: Pki, user: str, mechanism: str
) -> None:
    bootstrap = sasl_broker.broker.bootstrap_for("SASL_SSL")
    settings = sasl(pki, user, mechanism).kafka_python()
    topic = f"kp-{user}-{mechanism}"
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, request_timeout_ms=CLIENT_TIMEOUT_S * 1000, **settings
    )
    producer.send(topic, b"hello").get(timeout=CLIENT_TIMEOUT_S)
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=CLIENT_TIMEOUT_S * 1000,
        **settings,
    )
    try:
        assert next(iter(consumer)).value == b"hello"
    finally:
        consumer.close()


@pytest.mark.parametrize(
    ("user", "mechanism"), [("alice", "SCRAM-SHA-256"), ("bob", "SCRAM-SHA-512")]
)
def test_aiokafka_scram_over_sasl_ssl(
    sasl_broker: EmbeddedBroker, pki: Pki, user: str, mechanism: str
) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    bootstrap = sasl_broker.broker.bootstrap_for("SASL_SSL")
    settings = sasl(pki, user, mechanism).aiokafka()
    topic = f"aio-{mechanism}"

    async def run() -> bytes | None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **settings)
        await asyncio.wait_for(producer.start(), CLIENT_TIMEOUT_S)
        try:
            await asyncio.wait_for(producer.send_and_wait(topic, b"hi"), CLIENT_TIMEOUT_S)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", **settings
        )
        await asyncio.wait_for(consumer.start(), CLIENT_TIMEOUT_S)
        try:
            record = await asyncio.wait_for(consumer.getone(), CLIENT_TIMEOUT_S)
            value: bytes | None = record.value
            return value
        finally:
            await consumer.stop()

    assert asyncio.run(run()) == b"hi"


def test_wrong_password_is_refused(sasl_broker: EmbeddedBroker, pki: Pki) -> None:
    bootstrap = sasl_broker.broker.bootstrap_for("SASL_SSL")
    for mechanism in ("SCRAM-SHA-256", "PLAIN"):
        security = sasl(pki, "alice", mechanism, password="guess")
        admin = AdminClient({"bootstrap.servers": bootstrap, **security.librdkafka()})
        with pytest.raises(KafkaException) as refused:
            admin.list_topics(timeout=10)
        assert "guess" not in str(refused.value)


def authenticate(client: WireClient, mechanism: str, token: bytes, version: int = 1) -> object:
    handshake = client.request(SaslHandshakeRequest(mechanism=mechanism), 1)
    assert handshake.error_code == ErrorCode.NONE
    return client.request(SaslAuthenticateRequest(auth_bytes=token), version)


def test_failures_say_nothing_about_the_user_and_close_the_connection(
    sasl_broker: EmbeddedBroker,
) -> None:
    bootstrap = sasl_broker.broker.bootstrap_for("SASL_PLAINTEXT")
    answers = []
    for token in (b"\0alice\0wrong", b"\0nobody\0wrong"):
        with WireClient(bootstrap) as client:
            answer = authenticate(client, "PLAIN", token)
            answers.append((answer.error_code, answer.error_message))  # type: ignore[attr-defined]
            assert client.is_closed_by_broker()
    assert answers[0] == answers[1]
    assert answers[0][0] == ErrorCode.SASL_AUTHENTICATION_FAILED
    with WireClient(bootstrap) as client:  # the right password, with a session lifetime field
        answer = authenticate(client, "PLAIN", b"\0alice\0" + PASSWORDS["alice"].encode())
        assert answer.error_code == ErrorCode.NONE  # type: ignore[attr-defined]
        assert answer.session_lifetime_ms == 0  # type: ignore[attr-defined]
        metadata = client.request(MetadataRequest(topics=None), 9)
        assert metadata.brokers[0].port == int(bootstrap.rsplit(":", 1)[1])


def test_repeated_failures_from_an_address_are_limited(
    broker_factory: Callable[..., EmbeddedBroker], tmp_path: Path
) -> None:
    data_dir = tmp_path / "limited"
    set_user(data_dir, "alice", "right", "SCRAM-SHA-256")
    broker = broker_factory(
        data_dir=data_dir,
        listeners=(Listener.parse("SASL_PLAINTEXT://127.0.0.1:0"),),
        sasl_max_failures_per_minute=3,
    )
    bootstrap = broker.broker.bootstrap_for("SASL_PLAINTEXT")
    for _ in range(3):
        with WireClient(bootstrap) as client:
            answer = authenticate(client, "PLAIN", b"\0alice\0wrong")
            assert answer.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED  # type: ignore[attr-defined]
    with WireClient(bootstrap) as client:  # now even the right password fails, for a while
        answer = authenticate(client, "PLAIN", b"\0alice\0right")
        assert answer.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED  # type: ignore[attr-defined]


def test_session_lifetime_is_announced(
    broker_factory: Callable[..., EmbeddedBroker], tmp_path: Path
) -> None:
    data_dir = tmp_path / "lifetime"
    set_user(data_dir, "alice", "right", "SCRAM-SHA-256")
    broker = broker_factory(
        data_dir=data_dir,
        listeners=(Listener.parse("SASL_PLAINTEXT://127.0.0.1:0"),),
        sasl_session_lifetime_ms=3_600_000,
    )
    with WireClient(broker.broker.bootstrap_for("SASL_PLAINTEXT")) as client:
        answer = authenticate(client, "PLAIN", b"\0alice\0right", version=2)
        assert answer.session_lifetime_ms == 3_600_000  # type: ignore[attr-defined]
        # re-authentication on the same connection, as the same user, is allowed
        again = authenticate(client, "PLAIN", b"\0alice\0right", version=2)
        assert again.error_code == ErrorCode.NONE  # type: ignore[attr-defined]
        assert client.request(MetadataRequest(topics=None), 9).brokers


def test_unauthenticated_connection_may_only_authenticate(sasl_broker: EmbeddedBroker) -> None:
    bootstrap = sasl_broker.broker.bootstrap_for("SASL_PLAINTEXT")
    with WireClient(bootstrap) as client:
        assert client.request(ApiVersionsRequest(), 3).error_code == ErrorCode.NONE
        client.send(MetadataRequest(topics=None), 9)
        assert client.recv_frame() is None  # closed, not answered
    with WireClient(bootstrap) as client:  # a large frame before authenticating: closed
        client.send_raw((1024 * 1024).to_bytes(4, "big") + b"\0" * 1024)
        assert client.recv_frame() is None


def test_fuzzed_frames_before_authentication_cost_only_their_connection(
    sasl_broker: EmbeddedBroker, pki: Pki
) -> None:
    bootstrap = sasl_broker.broker.bootstrap_for("SASL_PLAINTEXT")
    rng = random.Random(14)
    seeds = [
        encode_request(RequestHeader(17, 1, 1, "fuzz"), SaslHandshakeRequest(mechanism="PLAIN")),
        encode_request(
            RequestHeader(36, 2, 2, "fuzz"), SaslAuthenticateRequest(auth_bytes=b"\0alice\0x")
        ),
        encode_request(RequestHeader(18, 3, 3, "fuzz"), ApiVersionsRequest()),
    ]
    for _ in range(200):
        frame = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            kind = rng.random()
            if kind < 0.5 and frame:
                frame[rng.randrange(len(frame))] = rng.randrange(256)
            elif kind < 0.75:
                frame = frame[: rng.randrange(len(frame) + 1)]
            else:
                frame += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        with WireClient(bootstrap, timeout=2) as client:
            client.send_raw(bytes(frame))
            client.sock.shutdown(1)  # no more bytes: the broker answers, closes or gives up
            try:
                while client.recv_frame() is not None:
                    pass
            except (AssertionError, TimeoutError):
                pass  # garbage answers or a half frame the broker still waits for
    # the broker still serves authenticated clients
    security = sasl(pki, "alice", "SCRAM-SHA-256")
    bootstrap_ssl = sasl_broker.broker.bootstrap_for("SASL_SSL")
    assert confluent_round_trip(bootstrap_ssl, security, "after-fuzz") == [b"a", b"b", b"c"]


def test_users_managed_while_the_broker_runs(sasl_broker: EmbeddedBroker, pki: Pki) -> None:
    bootstrap = sasl_broker.broker.bootstrap_for("SASL_SSL")
    # the CLI, on the running broker's data dir: effective at the next login
    set_user(sasl_broker.data_dir, "carol", "carol-secret", "SCRAM-SHA-512")
    carol = sasl(pki, "carol", "SCRAM-SHA-512", password="carol-secret")
    assert confluent_round_trip(bootstrap, carol, "carol-topic") == [b"a", b"b", b"c"]
    # the admin API (KIP-554), as confluent_kafka does it
    admin = AdminClient(
        {"bootstrap.servers": bootstrap, **sasl(pki, "admin", "SCRAM-SHA-512").librdkafka()}
    )
    upsert = UserScramCredentialUpsertion(
        "dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"dave-secret"
    )
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(timeout=CLIENT_TIMEOUT_S)
    described = admin.describe_user_scram_credentials(["dave"])
    assert isinstance(described, dict)
    info = described["dave"].result(timeout=CLIENT_TIMEOUT_S)
    assert [(c.mechanism, c.iterations) for c in info.scram_credential_infos] == [
        (ScramMechanism.SCRAM_SHA_256, 4096)
    ]
    dave = sasl(pki, "dave", "SCRAM-SHA-256", password="dave-secret")
    assert confluent_round_trip(bootstrap, dave, "dave-topic") == [b"a", b"b", b"c"]
    users = CliRunner().invoke(
        broker_command, ["users", "list", "--data-dir", str(sasl_broker.data_dir)]
    )
    assert "dave: SCRAM-SHA-256 (4096 iterations)" in users.output
    stored = (sasl_broker.data_dir / "users.json").read_text()
    for password in [*PASSWORDS.values(), "carol-secret", "dave-secret"]:
        assert password not in stored
    deleted = CliRunner().invoke(
        broker_command, ["users", "delete", "dave", "--data-dir", str(sasl_broker.data_dir)]
    )
    assert deleted.exit_code == 0, deleted.output
    refused = AdminClient({"bootstrap.servers": bootstrap, **dave.librdkafka()})
    with pytest.raises(KafkaException):
        refused.list_topics(timeout=10)
