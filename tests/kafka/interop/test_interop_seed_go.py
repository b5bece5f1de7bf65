"""The seed's Go program (segmentio/kafka-go 0.2.1, Debian) runs unchanged against the broker.

It dials ``localhost:9092`` (fixed in the program), writes key1/key2 to ``my-topic`` with
Produce v2 and magic-1 message sets, and reads them back with Fetch v2 forever. kafka-go
0.2.1 fetches with min_bytes = max_bytes = 1 MB and a 10 s max wait, so the broker answers
after the wait, as Kafka would: the output appears after about ten seconds.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from interop_support import port_is_free, require_tool

from streamsource.kafka.broker.process import BrokerProcess

pytestmark = [pytest.mark.slow, pytest.mark.interop, pytest.mark.xdist_group("port9092")]

SEED_SOURCE = Path(__file__).parents[3] / "examples" / "seed_streaming" / "main.go"
GOPATH = Path("/usr/share/gocode")
KAFKA_GO = GOPATH / "src" / "github.com" / "segmentio" / "kafka-go"
EXPECTED = [
    "Received message: key=key1, value=value1",
    "Received message: key=key2, value=value2",
]


def build_seed_program(tmp_path: Path) -> Path:
    """Compile main.go offline in GOPATH mode; returns the binary."""
    go = require_tool("go")
    if not KAFKA_GO.is_dir():
        pytest.skip("golang-github-segmentio-kafka-go-dev is not installed")
    work = tmp_path / "go"
    work.mkdir()
    binary = work / "seed_streaming"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": str(GOPATH),
        "GOCACHE": str(work / "cache"),
        "GOFLAGS": "",
    }
    result = subprocess.run(
        [go, "build", "-o", str(binary), str(SEED_SOURCE)],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, f"go build failed:\n{result.stdout}\n{result.stderr}"
    return binary


def read_lines_until(proc: subprocess.Popen[bytes], wanted: list[str], timeout: float) -> str:
    """What the program printed, read until every ``wanted`` line appeared or ``timeout``."""
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = output.decode(errors="replace")
        if all(line in text for line in wanted):
            break
        if not selector.select(timeout=0.5):
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break  # the program exited
        output += chunk
    selector.close()
    return output.decode(errors="replace")


def test_seed_go_program_prints_both_messages(
    tmp_path: Path, broker_process: Callable[..., BrokerProcess]
) -> None:
    assert SEED_SOURCE.is_file()
    binary = build_seed_program(tmp_path)
    if not port_is_free("127.0.0.1", 9092):
        pytest.skip("port 9092 is taken by another process; the seed program dials it fixed")
    broker = broker_process(port=9092)
    proc = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output = read_lines_until(proc, EXPECTED, timeout=90)
    finally:
        proc.kill()  # it reads forever by design
        proc.wait()
    for line in EXPECTED:
        assert line in output, f"missing {line!r}; program output:\n{output}\n{broker.output()}"
    assert output.index(EXPECTED[0]) < output.index(EXPECTED[1])
