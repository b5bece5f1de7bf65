"""An acknowledged append survives kill -9 of the writing process (a real subprocess)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from streamsource.eventstore.backends.sqlite import open_recorder

WRITER = r"""
import json, sys, threading, uuid
from streamsource.eventstore.backends.sqlite import open_recorder
from streamsource.eventstore.events import NO_STREAM
from streamsource.eventstore.recorder import EventRecord

recorder = open_recorder(sys.argv[1])
lock = threading.Lock()

def write(n):
    version = None
    while True:  # until killed
        batch = [EventRecord(uuid.uuid4(), "Ticked", json.dumps({"n": n}).encode(), b"{}")
                 for _ in range(1 + (n % 3))]
        result = recorder.append(f"crash-{n}", batch,
                                 NO_STREAM if version is None else version)
        version = result.version
        with lock:  # a line is printed only after append returned: it is acknowledged
            print(json.dumps({"stream": f"crash-{n}", "version": version,
                              "position": result.position,
                              "ids": [str(e.id) for e in batch]}), flush=True)

for n in range(4):
    threading.Thread(target=write, args=(n,), daemon=True).start()
threading.Event().wait()
"""


@pytest.mark.slow
@pytest.mark.parametrize("durability", ["full", "normal"])
def test_acknowledged_appends_survive_kill_9(tmp_path: Path, durability: str) -> None:
    url = f"sqlite:///{tmp_path}/store.db?durability={durability}"
    child = subprocess.Popen([sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    acked: list[dict[str, object]] = []
    try:
        for line in child.stdout:
            acked.append(json.loads(line))
            if len(acked) == 300:
                os.kill(child.pid, signal.SIGKILL)  # mid-stream: writers are still busy
                break
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert len(acked) == 300

    with open_recorder(url) as recorder:
        for n in range(4):
            stream = f"crash-{n}"
            stored = list(recorder.read_stream(stream))
            assert [s.version for s in stored] == list(range(len(stored)))  # no gaps
            by_version = {s.version: s for s in stored}
            mine = [a for a in acked if a["stream"] == stream]
            for ack in mine:
                ids = list(ack["ids"])  # type: ignore[call-overload]
                last = int(ack["version"])  # type: ignore[call-overload]
                first = last - len(ids) + 1
                got = [str(by_version[v].id) for v in range(first, last + 1)]
                assert got == ids
                assert by_version[last].position == ack["position"]
        positions = [s.position for s in recorder.read_all()]
        assert positions == sorted(set(positions))
