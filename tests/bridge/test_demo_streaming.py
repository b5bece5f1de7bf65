"""``streamsource demo``'s streaming sections, run as a user runs the demo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DEMO = [sys.executable, "-c", "from streamsource.cli import main; main()", "demo"]


@pytest.mark.slow
def test_the_demo_streams_the_seed_example_and_the_bank_events(tmp_path: Path) -> None:
    result = subprocess.run(
        [*DEMO, "--dir", str(tmp_path), "--style", "plain"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Received message: key=key1, value=value1" in out
    assert "Received message: key=key2, value=value2" in out
    assert "relay: 7 account events published to topic bank.account" in out
    for event in ("AccountOpened", "Deposited", "Withdrawn"):
        assert event in out.split("From the event store to Kafka", 1)[1]
    assert result.stderr == ""
