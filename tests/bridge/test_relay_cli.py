"""``streamsource relay`` as a user runs it: a process that stops cleanly on SIGTERM."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import streamsource as ss
from streamsource.bridge import checkpoints_for

from .kafka_helpers import read_topic, wait_until

RELAY = [sys.executable, "-c", "from streamsource.cli import main; main()", "relay"]


@pytest.mark.slow
def test_the_relay_command_publishes_and_stops_cleanly(tmp_path: Path, broker: Any) -> None:
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    with ss.open_store(url) as store:
        for n in range(10):
            store.append(f"account-{n % 3}", [ss.NewEvent("Deposited", {"amount": n})])
        store.append("audit-1", [ss.NewEvent("Checked", {})])
        head = store.head_position()
    proc = subprocess.Popen(
        [*RELAY, "--store", url, "--bootstrap", broker.bootstrap, "--category", "account",
         "--topic-prefix", "bank.", "--name", "cli", "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    with ss.open_store(url) as reader:  # the checkpoint is in the store's own file
        checkpoints = checkpoints_for(reader)
        try:
            assert wait_until(lambda: checkpoints.load("cli") == head)
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"relaying {url} to {broker.bootstrap} after position 0" in out
    assert f"stopped; checkpoint {head}" in out
    messages = read_topic(broker.bootstrap, "bank.account", 10)
    assert sorted(dict(m.headers())["position"] for m in messages) == sorted(
        str(p).encode() for p in range(1, 11)
    )


def test_bad_options_give_one_clear_line(tmp_path: Path) -> None:
    bad_store = subprocess.run(
        [*RELAY, "--store", "nosuch://x", "--bootstrap", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad_store.returncode == 1
    assert bad_store.stderr.startswith("error: InterfaceError: unknown store URL scheme")
    bad_config = subprocess.run(
        [*RELAY, "--store", f"sqlite:///{tmp_path / 's.db'}", "--producer-config", "novalue"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad_config.returncode == 2
    assert "is not KEY=VALUE" in bad_config.stderr
    bad_topic = subprocess.run(
        [*RELAY, "--store", f"sqlite:///{tmp_path / 's.db'}", "--topic", "a b"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad_topic.returncode == 1
    assert "not a legal Kafka topic name" in bad_topic.stderr
    bad_client = subprocess.run(
        [*RELAY, "--store", f"sqlite:///{tmp_path / 's.db'}", "--producer-config", "no.such=1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad_client.returncode == 1
    assert "KafkaClientError: cannot create the Kafka producer: " in bad_client.stderr
    assert "no.such" in bad_client.stderr
