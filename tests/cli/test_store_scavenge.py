"""`streamsource store scavenge`: through the CLI, and killed with SIGKILL half-way."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import streamsource as ss
from deadline import wait_until
from streamsource.cli import cli

SCRIPT = Path(sys.executable).parent / "streamsource"

DELETED = 60  # soft-deleted streams, each losing all but its last event
PER_STREAM = 1500
KEPT = 10  # streams nothing hides


def test_scavenge_prints_what_it_removed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    with ss.open_store(url) as store:
        store.append("gone-1", [ss.NewEvent("A", {}), ss.NewEvent("B", {})])
        store.delete_stream("gone-1", hard=True)
        store.append("kept-1", [ss.NewEvent("A", {})])
    result = CliRunner().invoke(cli, ["store", "--store", url, "scavenge", "--vacuum"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("scavenged: removed 2 events from 1 of 2 streams")
    with ss.open_store(url) as store:
        assert [e.stream for e in store.read_all()] == ["kept-1"]


def _fill(url: str) -> dict[str, list[tuple[int, int]]]:
    """The store the kill test scavenges; returns the (version, position) of every event
    that must survive, by stream."""
    survivors: dict[str, list[tuple[int, int]]] = {}
    with ss.open_store(url) as store:
        for n in range(DELETED):
            stream = f"gone-{n}"
            batch = [ss.NewEvent("Filled", {"n": i, "pad": "x" * 40}) for i in range(PER_STREAM)]
            store.append(stream, batch)
            store.delete_stream(stream)
            if n % 6 == 0:
                kept = f"kept-{n}"
                store.append(kept, [ss.NewEvent("Kept", {"n": i}) for i in range(5)])
        for info in store.list_streams():
            if info.stream.startswith("kept-"):
                events = store.read_stream(info.stream)
                survivors[info.stream] = [(e.version, e.position) for e in events]
            else:
                last = store.read_stream(info.stream, backwards=True, limit=1)
                assert list(last) == []  # hidden by the soft delete
        for event in store.read_all(backwards=True):
            if event.stream.startswith("gone-") and event.version == PER_STREAM - 1:
                survivors.setdefault(event.stream, []).append((event.version, event.position))
    return survivors


def _event_count(store: ss.EventStore) -> int:
    return int(store.stats()["events"])


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def big_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/big.db"
    return str(request.getfixturevalue("pg_url"))


def _named(url: str, application_name: str) -> str:
    if not url.startswith("postgresql"):
        return url
    return f"{url}&application_name={application_name}"


def _end_sessions(url: str, application_name: str) -> None:
    """Terminate the server sessions of a killed client and wait until they are gone."""
    import psycopg

    with psycopg.connect(url.split("?", 1)[0], autocommit=True) as conn:

        def none_left() -> bool:
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (application_name,),
            ).fetchone()
            return row is not None and row[0] == 0

        wait_until(none_left, what="the killed scavenge's PostgreSQL sessions to end")


def test_a_scavenge_killed_half_way_leaves_a_consistent_store_and_a_rerun_finishes(
    big_url: str,
) -> None:
    url = big_url
    survivors = _fill(url)
    watcher = ss.open_store(url)
    before = _event_count(watcher)
    assert before == DELETED * PER_STREAM + sum(len(v) for k, v in survivors.items() if "kept" in k)

    # A killed client's server process finishes the statement it was running and holds its
    # transaction open meanwhile; on PostgreSQL that holds back every store's settled
    # horizon on the server, so the test ends those sessions itself, by name.
    killed_url = _named(url, "scavenge-killed")
    process = subprocess.Popen(
        [str(SCRIPT), "store", "--store", killed_url, "scavenge"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while _event_count(watcher) == before:  # wait until it has removed something
            assert process.poll() is None, process.communicate(timeout=10)
            assert time.monotonic() < deadline, "the scavenge removed nothing in 60 s"
            time.sleep(0.002)
        assert process.poll() is None, "the scavenge finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    if url.startswith("postgresql"):
        _end_sessions(url, "scavenge-killed")

    after_kill = _event_count(watcher)
    watcher.close()
    surviving = sum(len(events) for events in survivors.values())
    assert surviving < after_kill < before  # killed half-way
    with ss.open_store(url) as store:
        by_stream: dict[str, list[tuple[int, int]]] = {}
        for event in store.read_all():
            by_stream.setdefault(event.stream, []).append((event.version, event.position))
        for stream, wanted in survivors.items():
            remaining = by_stream[stream]
            assert set(wanted) <= set(remaining), stream  # nothing that should stay is gone
            versions = [version for version, _ in remaining]
            assert versions == list(range(versions[0], versions[-1] + 1)), stream  # a suffix
            if stream.startswith("gone-"):
                assert store.stream_version(stream) == PER_STREAM - 1
                assert list(store.read_stream(stream)) == []

    rerun = subprocess.run(
        [str(SCRIPT), "store", "--store", url, "scavenge"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    # what the killed run left (PostgreSQL may still finish the statement it was running)
    found = re.search(r"removed (\d+) events", rerun.stdout)
    assert found is not None and 0 < int(found.group(1)) <= after_kill - surviving
    with ss.open_store(url) as store:
        final: dict[str, list[tuple[int, int]]] = {}
        for event in store.read_all():
            final.setdefault(event.stream, []).append((event.version, event.position))
        assert final == survivors
        assert store.append("gone-0", [ss.NewEvent("Back", {})]).version == PER_STREAM
