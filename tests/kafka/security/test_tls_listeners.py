"""Listeners and TLS with real clients: SSL beside PLAINTEXT, each advertised with its own
port; mTLS; a plaintext client on the TLS port; listener specs that are refused."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from security_support import Pki, make_pki

from deadline import Deadline
from kafka import KafkaProducer
from streamsource.cli.broker import command as broker_command
from streamsource.errors import BrokerError
from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.broker.config import BrokerConfig
from streamsource.kafka.broker.process import BrokerProcess
from streamsource.kafka.client_security import ClientSecurity
from streamsource.kafka.protocol import ApiVersionsRequest, RequestHeader, encode_request
from streamsource.kafka.security.listeners import Listener, TlsFiles, certificate_principal

pytestmark = pytest.mark.interop

CLIENT_TIMEOUT_S = 30


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def tls_broker(
    factory: Callable[..., EmbeddedBroker], pki: Pki, *, mtls: bool = False
) -> EmbeddedBroker:
    return factory(
        listeners=(Listener.parse("PLAINTEXT://127.0.0.1:0"), Listener.parse("SSL://127.0.0.1:0")),
        tls=TlsFiles(pki.broker_cert, pki.broker_key, pki.ca_cert if mtls else None),
    )


def confluent_round_trip(bootstrap: str, security: ClientSecurity, topic: str) -> list[bytes]:
    """Produce three values and read them back; fails (never hangs) if the client cannot."""
    settings = {"bootstrap.servers": bootstrap, **security.librdkafka()}
    producer = Producer({**settings, "message.timeout.ms": CLIENT_TIMEOUT_S * 1000})
    errors: list[KafkaError | None] = []
    for value in (b"a", b"b", b"c"):
        producer.produce(topic, value, on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(CLIENT_TIMEOUT_S + 5) == 0, "not delivered in time"
    assert errors == [None, None, None]
    consumer = Consumer({**settings, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[bytes] = []
    deadline = Deadline(CLIENT_TIMEOUT_S, "three records over TLS")
    try:
        while len(got) < 3:
            deadline.check()
            msg = consumer.poll(deadline.slice(0.5))
            if msg is not None and msg.error() is None:
                got.append(msg.value() or b"")
    finally:
        consumer.close()
    return got


def advertised_port(bootstrap: str, security: ClientSecurity) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap, **security.librdkafka()})
    metadata = admin.list_topics(timeout=CLIENT_TIMEOUT_S)
    (broker,) = metadata.brokers.values()
    return int(broker.port)


def test_ssl_and_plaintext_listeners_each_advertise_their_own_port(
    broker_factory: Callable[..., EmbeddedBroker], pki: Pki
) -> None:
    broker = tls_broker(broker_factory, pki)
    ssl_bootstrap = broker.broker.bootstrap_for("SSL")
    plain_bootstrap = broker.broker.bootstrap_for("PLAINTEXT")
    assert ssl_bootstrap != plain_bootstrap
    tls = ClientSecurity("SSL", ca_location=str(pki.ca_cert))
    assert advertised_port(ssl_bootstrap, tls) == int(ssl_bootstrap.rsplit(":", 1)[1])
    assert advertised_port(plain_bootstrap, ClientSecurity()) == int(
        plain_bootstrap.rsplit(":", 1)[1]
    )
    # what one client writes over TLS, another reads over plaintext: one broker, two doors
    assert confluent_round_trip(ssl_bootstrap, tls, "tls-topic") == [b"a", b"b", b"c"]


def test_kafka_python_kcat_and_aiokafka_over_ssl(
    broker_factory: Callable[..., EmbeddedBroker], pki: Pki
) -> None:
    broker = tls_broker(broker_factory, pki)
    bootstrap = broker.broker.bootstrap_for("SSL")
    tls = ClientSecurity("SSL", ca_location=str(pki.ca_cert))
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        request_timeout_ms=CLIENT_TIMEOUT_S * 1000,
        **tls.kafka_python(),
    )
    producer.send("kp-tls", b"from kafka-python").get(timeout=CLIENT_TIMEOUT_S)
    producer.close()
    kcat = subprocess.run(
        ["kcat", "-b", bootstrap, "-C", "-t", "kp-tls", "-e", "-J", "-o", "beginning",
         *[arg for k, v in tls.librdkafka().items() for arg in ("-X", f"{k}={v}")]],
        capture_output=True, timeout=CLIENT_TIMEOUT_S + 30,
    )  # fmt: skip
    assert kcat.returncode == 0, kcat.stderr.decode()
    assert [json.loads(line)["payload"] for line in kcat.stdout.decode().splitlines()] == [
        "from kafka-python"
    ]

    async def aiokafka_reads() -> list[bytes]:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            "kp-tls",
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            request_timeout_ms=CLIENT_TIMEOUT_S * 1000,
            **tls.aiokafka(),
        )
        await asyncio.wait_for(consumer.start(), CLIENT_TIMEOUT_S)
        try:
            msg = await asyncio.wait_for(consumer.getone(), CLIENT_TIMEOUT_S)
            return [msg.value]
        finally:
            await consumer.stop()

    assert asyncio.run(aiokafka_reads()) == [b"from kafka-python"]


def test_mtls_needs_a_certificate_signed_by_the_ca(
    broker_factory: Callable[..., EmbeddedBroker], pki: Pki
) -> None:
    broker = tls_broker(broker_factory, pki, mtls=True)
    bootstrap = broker.broker.bootstrap_for("SSL")
    cert, key = pki.client("writer")
    with_cert = ClientSecurity(
        "SSL", ca_location=str(pki.ca_cert), certificate_location=str(cert), key_location=str(key)
    )
    assert confluent_round_trip(bootstrap, with_cert, "mtls-topic") == [b"a", b"b", b"c"]
    # without a certificate the handshake fails: no metadata, whatever the wait
    without = ClientSecurity("SSL", ca_location=str(pki.ca_cert))
    admin = AdminClient({"bootstrap.servers": bootstrap, **without.librdkafka()})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)


def test_mtls_principal_is_the_certificate_subject(pki: Pki) -> None:
    """The broker's own TLS context and principal mapping, over a real handshake."""
    cert, key = pki.client("reporting", organization="acme")
    server_context = TlsFiles(pki.broker_cert, pki.broker_key, pki.ca_cert).server_context(
        require_client_cert=True
    )
    client_context = ClientSecurity(
        "SSL", ca_location=str(pki.ca_cert), certificate_location=str(cert), key_location=str(key)
    ).ssl_context()

    async def handshake() -> str:
        principal: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            principal.set_result(certificate_principal(writer.get_extra_info("peercert")))
            writer.close()

        server = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=server_context)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(
                "127.0.0.1", port, ssl=client_context, server_hostname="localhost"
            ),
            CLIENT_TIMEOUT_S,
        )
        try:
            return await asyncio.wait_for(principal, CLIENT_TIMEOUT_S)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(handshake()) == "User:CN=reporting,O=acme"


def test_plaintext_client_on_tls_port_is_closed_and_the_broker_goes_on(
    broker_factory: Callable[..., EmbeddedBroker], pki: Pki
) -> None:
    broker = tls_broker(broker_factory, pki)
    host, port = broker.broker.bootstrap_for("SSL").rsplit(":", 1)
    frame = encode_request(RequestHeader(18, 3, 1, "plain"), ApiVersionsRequest())
    with socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT_S) as sock:
        sock.sendall(frame * 3)
        received = b""
        deadline = Deadline(CLIENT_TIMEOUT_S, "the broker to close the connection")
        while True:
            deadline.check()
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        # at most a TLS alert record (content type 21), never a Kafka response
        assert received == b"" or received[0] == 21
    tls = ClientSecurity("SSL", ca_location=str(pki.ca_cert))
    assert confluent_round_trip(broker.broker.bootstrap_for("SSL"), tls, "after") == [
        b"a",
        b"b",
        b"c",
    ]


def test_plaintext_listener_beyond_loopback_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="in the clear"):
        BrokerConfig(listeners=(Listener.parse("PLAINTEXT://0.0.0.0:9092"),))
    with pytest.raises(BrokerError, match="in the clear"):
        BrokerConfig(host="0.0.0.0")
    with pytest.raises(BrokerError, match="needs --tls-cert"):
        BrokerConfig(listeners=(Listener.parse("SASL_SSL://127.0.0.1:9094"),))
    allowed = BrokerConfig(host="0.0.0.0", allow_plaintext=True)
    assert allowed.effective_listeners()[0].protocol == "PLAINTEXT"
    result = CliRunner().invoke(
        broker_command,
        ["--listener", "PLAINTEXT://0.0.0.0:0", "--data-dir", str(tmp_path / "d")],
    )
    assert result.exit_code == 2
    assert "--allow-plaintext" in result.output


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("PLAIN://127.0.0.1:9092", "PROTOCOL://HOST:PORT"),
        ("SSL://127.0.0.1", "has no port"),
        ("SSL://127.0.0.1:http", "is not a number"),
        ("SSL://127.0.0.1:70000", "out of range"),
        ("SSL://[::1:9093", "IPv6"),
    ],
)
def test_bad_listener_specs_say_what_is_wrong(spec: str, complaint: str) -> None:
    with pytest.raises(BrokerError, match=complaint.replace("[", r"\[")):
        Listener.parse(spec)


def test_listener_specs_parse() -> None:
    assert Listener.parse("sasl_ssl://[::1]:9094") == Listener("SASL_SSL", "::1", 9094)
    assert Listener.parse("SSL://:9093").host == "0.0.0.0"
    moved = Listener.parse("SSL://0.0.0.0:9093").advertise("SSL://broker.example:19093")
    assert (moved.advertised_host, moved.advertised_port) == ("broker.example", 19093)


def test_cli_broker_with_tls_and_plaintext_listeners(
    broker_process: Callable[..., BrokerProcess], pki: Pki
) -> None:
    proc = broker_process(
        listener=["PLAINTEXT://127.0.0.1:0", "SSL://127.0.0.1:0"],
        tls_cert=pki.broker_cert,
        tls_key=pki.broker_key,
    )
    assert set(proc.listeners) == {"PLAINTEXT", "SSL"}
    tls = ClientSecurity("SSL", ca_location=str(pki.ca_cert))
    assert confluent_round_trip(proc.bootstrap_for("SSL"), tls, "cli-tls") == [b"a", b"b", b"c"]
