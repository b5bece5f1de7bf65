"""Our own clients over SASL_SSL: ``ClientSecurity`` from config, environment and URL; the
``streamsource relay`` command and an ``InboxConsumer`` against a secured broker, never
printing the password."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from security_support import Pki, make_pki
from test_tls_listeners import CLIENT_TIMEOUT_S

import streamsource as ss
from deadline import Deadline
from streamsource.bridge import InboxConsumer, OutboxRelay, SqliteInbox, TopicMapping
from streamsource.cli.broker import command as broker_command
from streamsource.errors import InterfaceError
from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.client_security import ClientSecurity, redact, redact_url
from streamsource.kafka.security.listeners import Listener, TlsFiles

SECRET = "s3cret-Pa55"
RELAY = [sys.executable, "-c", "from streamsource.cli import main; main()", "relay"]


def test_settings_from_url_config_and_environment() -> None:
    bootstrap, security = ClientSecurity.from_url(
        f"kafka://app:{SECRET}@b1:9094,b2:9094?sasl.mechanism=SCRAM-SHA-512&ssl.ca.location=/ca.pem"
    )
    assert bootstrap == "b1:9094,b2:9094"
    assert security.librdkafka() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "app",
        "sasl.password": SECRET,
        "ssl.ca.location": "/ca.pem",
    }
    env = {
        "STREAMSOURCE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "STREAMSOURCE_KAFKA_SASL_USERNAME": "from-env",
        "STREAMSOURCE_KAFKA_SASL_PASSWORD": SECRET,
    }
    assert ClientSecurity.from_env(env).username == "from-env"
    # the URL wins over config, which wins over the environment
    _, resolved = ClientSecurity.resolve("h:1", {"sasl.username": "from-config"}, env)
    assert (resolved.protocol, resolved.username) == ("SASL_PLAINTEXT", "from-config")
    _, resolved = ClientSecurity.resolve(f"kafka://url:{SECRET}@h:1", {"sasl.username": "c"}, env)
    assert resolved.username == "url"
    kwargs = ClientSecurity("SASL_PLAINTEXT", "PLAIN", "u", SECRET).kafka_python()
    assert kwargs["sasl_plain_password"] == SECRET and "ssl_context" not in kwargs


def test_secrets_never_show() -> None:
    security = ClientSecurity("SASL_SSL", "SCRAM-SHA-256", "app", SECRET)
    assert SECRET not in repr(security)
    assert SECRET not in security.describe()
    assert SECRET not in str(redact(security.librdkafka()))
    assert redact_url(f"kafka://app:{SECRET}@h:9094?x=1") == "kafka://app:[redacted]@h:9094?x=1"
    # store URLs too: `streamsource relay` prints the one it reads
    store = f"postgresql://ledger:{SECRET}@db:5432/bank?sslmode=require"
    assert redact_url(store) == "postgresql://ledger:[redacted]@db:5432/bank?sslmode=require"
    assert redact_url("postgresql://ledger@db/bank") == "postgresql://ledger@db/bank"
    assert redact_url("sqlite:///var/lib/bank.db") == "sqlite:///var/lib/bank.db"
    with pytest.raises(InterfaceError) as missing:
        ClientSecurity("SASL_SSL", "SCRAM-SHA-256", "app")
    assert "sasl.password" in str(missing.value)
    with pytest.raises(InterfaceError, match="not one of"):
        ClientSecurity("TLS")


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def secured(broker_factory: Callable[..., EmbeddedBroker], pki: Pki, tmp_path: Path) -> Any:
    data_dir = tmp_path / "secured"
    result = CliRunner().invoke(
        broker_command,
        ["users", "set", "app", "--mechanism", "SCRAM-SHA-512", "--data-dir", str(data_dir)],
        input=SECRET + "\n",
    )
    assert result.exit_code == 0, result.output
    return broker_factory(
        data_dir=data_dir,
        listeners=(Listener.parse("SASL_SSL://127.0.0.1:0"),),
        tls=TlsFiles(pki.broker_cert, pki.broker_key),
    )


@pytest.mark.interop
def test_relay_command_and_inbox_consumer_over_sasl_ssl(
    secured: EmbeddedBroker, pki: Pki, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    with ss.open_store(url) as store:
        for n in range(5):
            store.append(f"account-{n}", [ss.NewEvent("Deposited", {"amount": n})])
    host_port = secured.broker.bootstrap_for("SASL_SSL")
    kafka_url = (
        f"kafka://app:{SECRET}@{host_port}?sasl.mechanism=SCRAM-SHA-512"
        f"&ssl.ca.location={pki.ca_cert}"
    )
    # the command: the password from the environment, the rest from flags
    proc = subprocess.Popen(
        [*RELAY, "--store", url, "--bootstrap", host_port, "--topic", "bank",
         "--security-protocol", "SASL_SSL", "--sasl-mechanism", "SCRAM-SHA-512",
         "--sasl-username", "app", "--ssl-ca-location", str(pki.ca_cert),
         "--log-level", "DEBUG"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "STREAMSOURCE_KAFKA_SASL_PASSWORD": SECRET},
    )  # fmt: skip
    inbox = SqliteInbox(str(tmp_path / "inbox.db"))
    seen: list[str] = []
    consumer = InboxConsumer(
        kafka_url, "bank-readers", ["bank"], lambda event, _tx: seen.append(event.stream), inbox
    )
    try:
        deadline = Deadline(CLIENT_TIMEOUT_S * 2, "five events through relay and consumer")
        while len(seen) < 5:
            deadline.check()
            consumer.poll(deadline.slice(0.5))
    finally:
        consumer.close()
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert sorted(seen) == [f"account-{n}" for n in range(5)]
    assert proc.returncode == 0, err
    assert "relaying" in out
    assert SECRET not in out and SECRET not in err  # DEBUG logging included
    # a relay made in code takes the URL as its bootstrap
    with ss.open_store(url) as store:
        relay = OutboxRelay(store, kafka_url, mapping=TopicMapping(topic="bank-2"))
        with relay:
            assert relay.wait_for(store.head_position())


@pytest.mark.interop
def test_console_browses_a_sasl_ssl_cluster(secured: EmbeddedBroker, pki: Pki) -> None:
    import httpx
    from confluent_kafka import Producer

    host_port = secured.broker.bootstrap_for("SASL_SSL")
    settings = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "app",
        "sasl.password": SECRET,
        "ssl.ca.location": str(pki.ca_cert),
    }
    producer = Producer({**settings, "bootstrap.servers": host_port})
    for n in range(3):
        producer.produce("ledger", f"entry-{n}".encode())
    assert producer.flush(CLIENT_TIMEOUT_S) == 0
    console = subprocess.Popen(
        [sys.executable, "-m", "streamsource", "console", "--port", "0",
         "--bootstrap", host_port, "--security-protocol", "SASL_SSL",
         "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "app",
         "--ssl-ca-location", str(pki.ca_cert)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "STREAMSOURCE_KAFKA_SASL_PASSWORD": SECRET},
    )  # fmt: skip
    try:
        assert console.stdout is not None
        first: queue.Queue[str] = queue.Queue()  # a reader thread: the wait has a bound
        reader = threading.Thread(target=lambda: first.put(console.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        line = first.get(timeout=CLIENT_TIMEOUT_S * 2)  # "console at URL", or "" if it exited
        assert line.startswith("console at "), line
        base = line.split()[-1].rstrip("/")
        deadline = Deadline(CLIENT_TIMEOUT_S * 2, "the ledger topic in the console")
        while True:
            deadline.check()
            topics = {
                t["name"]: t for t in httpx.get(f"{base}/api/kafka/topics", timeout=30).json()
            }
            if "ledger" in topics and topics["ledger"]["messages"] == 3:
                break
        # its size came from DescribeLogDirs over the same SASL_SSL (SCRAM-SHA-512) settings
        assert topics["ledger"]["size_bytes"] > len(b"entry-0") * 3
        assert httpx.get(f"{base}/metrics", timeout=30).status_code == 200
    finally:
        console.terminate()
        out, err = console.communicate(timeout=30)
    assert SECRET not in out and SECRET not in err


@pytest.mark.interop
def test_a_stream_app_runs_against_a_sasl_ssl_cluster(
    secured: EmbeddedBroker, pki: Pki, tmp_path: Path
) -> None:
    import threading

    from confluent_kafka import Consumer, Producer

    from streamsource.streams import App

    host_port = secured.broker.bootstrap_for("SASL_SSL")
    settings = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "app",
        "sasl.password": SECRET,
        "ssl.ca.location": str(pki.ca_cert),
    }
    producer = Producer({**settings, "bootstrap.servers": host_port})
    for n in range(20):
        producer.produce("deposits", key=f"acc-{n % 4}".encode(), value=b'{"amount": %d}' % n)
    assert producer.flush(CLIENT_TIMEOUT_S) == 0

    kafka_url = (
        f"kafka://app:{SECRET}@{host_port}?sasl.mechanism=SCRAM-SHA-512"
        f"&ssl.ca.location={pki.ca_cert}"
    )
    app = App(kafka_url, "doubler", state_dir=tmp_path / "state", checkpoint_interval=0.2)
    app.stream(app.topic("deposits", value=dict)).map(lambda d: {"amount": d["amount"] * 2}).to(
        app.topic("doubled", value=dict)
    )
    failure: list[BaseException] = []

    def run() -> None:
        try:
            app.run()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    consumer = Consumer(
        {**settings, "bootstrap.servers": host_port, "group.id": "check",
         "auto.offset.reset": "earliest"}
    )  # fmt: skip
    got: list[bytes] = []
    try:
        consumer.subscribe(["doubled"])
        deadline = Deadline(CLIENT_TIMEOUT_S * 2, "20 doubled deposits")
        while len(got) < 20:
            deadline.check()
            assert not failure, failure
            for message in consumer.consume(20, deadline.slice(0.5)):
                value = message.value()
                if not message.error() and value is not None:
                    got.append(value)
    finally:
        consumer.close()
        app.stop()
        thread.join(60)
    assert not thread.is_alive() and not failure
    assert sorted(json.loads(v)["amount"] for v in got) == [2 * n for n in range(20)]
