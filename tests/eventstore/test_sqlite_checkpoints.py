"""WAL checkpoints run beside the commits and keep the WAL bounded (real files, real threads)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from streamsource.eventstore.backends.sqlite import open_recorder
from streamsource.eventstore.backends.sqlite.checkpoints import HARD_COMMITS, WAKE_COMMITS
from streamsource.eventstore.events import NO_STREAM
from streamsource.eventstore.recorder import EventRecord

# One 1 KiB page and its frame header: the WAL's size per page written.
FRAME = 1024 + 24
# Pages a one-event append writes, at most (the row, four indexes, their parents now and then).
PAGES = 8


def record(n: int) -> EventRecord:
    return EventRecord(uuid.uuid4(), "Ticked", json.dumps({"n": n}).encode(), b"{}")


def append_one_by_one(url: str, commits: int) -> tuple[dict[str, int | str], int]:
    """``commits`` one-event appends from one thread: the store's stats and its WAL's size."""
    with open_recorder(url) as recorder:
        version = None
        for n in range(commits):
            expected = NO_STREAM if version is None else version
            version = recorder.append("ticks-1", [record(n)], expected).version
        stats = recorder.stats()
        wal = os.path.getsize(f"{recorder.path}-wal")
    return stats, wal


def test_a_busy_writer_keeps_the_wal_small(tmp_path: Path) -> None:
    commits = 10 * WAKE_COMMITS
    # Fsync'd commits: the writer leaves the GIL to the checkpointer during each fsync.
    stats, wal = append_one_by_one(f"sqlite:///{tmp_path}/store.db", commits)
    assert int(stats["checkpoints_background"]) >= 1
    # Uncheckpointed, the WAL would hold every page of every commit (about 6 an append):
    # it is reset after each complete checkpoint, so it holds a few hundred commits at most.
    assert wal < 3 * WAKE_COMMITS * PAGES * FRAME < commits * PAGES * FRAME
    with open_recorder(f"sqlite:///{tmp_path}/store.db") as recorder:
        assert [s.version for s in recorder.read_stream("ticks-1")] == list(range(commits))


def test_the_writer_checkpoints_itself_when_the_checkpointer_never_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db?durability=normal"
    with open_recorder(url) as recorder:
        recorder._checkpointer.stop()  # the real checkpointer, stopped: as if starved forever
        version = None
        for n in range(HARD_COMMITS + WAKE_COMMITS):
            expected = NO_STREAM if version is None else version
            version = recorder.append("ticks-1", [record(n)], expected).version
        stats = recorder.stats()
        wal = os.path.getsize(f"{recorder.path}-wal")
    assert stats["checkpoints_background"] == 0
    assert int(stats["checkpoints_in_writer"]) >= 1
    # Reset once HARD_COMMITS commits went by, the WAL holds at most that many.
    assert wal < (HARD_COMMITS + WAKE_COMMITS) * PAGES * FRAME


def test_a_reader_holding_old_frames_does_not_make_every_commit_checkpoint(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/store.db?durability=normal"
    commits = HARD_COMMITS + 10 * WAKE_COMMITS
    with open_recorder(url) as recorder:
        recorder.append("ticks-1", [record(-1)], NO_STREAM)
        reader = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM events").fetchall()  # holds its snapshot
            for n in range(commits):
                recorder.append("ticks-1", [record(n)], n)
            attempts = int(recorder.stats()["checkpoints_in_writer"])
        finally:
            reader.close()
    # No checkpoint can complete meanwhile: the writer tries again every WAKE_COMMITS
    # commits (after the thread's runs, and past the hard limit), not at every commit.
    assert 1 <= attempts <= 2 * commits // WAKE_COMMITS + 2


def test_close_stops_the_checkpointer_and_removes_the_wal(tmp_path: Path) -> None:
    append_one_by_one(f"sqlite:///{tmp_path}/store.db?durability=normal", 3 * WAKE_COMMITS)
    # The writer, the last connection, checkpointed everything and removed the WAL.
    assert not (tmp_path / "store.db-wal").exists()
    assert not [t for t in threading.enumerate() if t.name.endswith("checkpointer")]


WRITER = r"""
import json, sys, threading, uuid
from streamsource.eventstore.backends.sqlite import open_recorder
from streamsource.eventstore.events import NO_STREAM
from streamsource.eventstore.recorder import EventRecord

recorder = open_recorder(sys.argv[1])
checkpointer = recorder._checkpointer
lock = threading.Lock()

def write(n):
    version = None
    while True:  # until killed
        event = EventRecord(uuid.uuid4(), "Ticked", b"{}", b"{}")
        version = recorder.append(f"crash-{n}", [event], NO_STREAM if version is None else version).version
        with lock:  # printed only once append returned: acknowledged
            print(json.dumps({"stream": f"crash-{n}", "version": version, "id": str(event.id),
                              "checkpoints": checkpointer.background + checkpointer.in_writer}),
                  flush=True)

for n in range(4):
    threading.Thread(target=write, args=(n,), daemon=True).start()
threading.Event().wait()
"""


@pytest.mark.slow
def test_kill_9_while_checkpoints_run_loses_no_acknowledged_event(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    child = subprocess.Popen([sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    watchdog = threading.Timer(120, child.kill)  # ends the read loop should the child stall
    watchdog.start()
    acked: list[dict[str, Any]] = []
    try:
        for line in child.stdout:
            acked.append(json.loads(line))
            # Several checkpoints behind us: the kill lands while they come and go.
            if acked[-1]["checkpoints"] >= 6:
                os.kill(child.pid, signal.SIGKILL)
                break
    finally:
        watchdog.cancel()
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert acked and acked[-1]["checkpoints"] >= 6

    with open_recorder(url) as recorder:
        for n in range(4):
            stored = {s.version: str(s.id) for s in recorder.read_stream(f"crash-{n}")}
            assert sorted(stored) == list(range(len(stored)))  # no gaps
            for ack in (a for a in acked if a["stream"] == f"crash-{n}"):
                assert stored[ack["version"]] == ack["id"]
