"""Global order without holes: a reader never sees a new position below one it has seen.

The proof runs real writer processes against a real server while a reader tails the log; a
second test shows the mechanism itself with a transaction held open by hand.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import uuid

import psycopg
import pytest

import streamsource as ss
from streamsource.eventstore.backends.postgres import own_writes

pytestmark = pytest.mark.postgres

WRITERS = 8
APPENDS_PER_WRITER = 60

# Each writer alternates between its own stream and a few streams every writer shares, with
# batches of 1 to 3 events; it prints the ids it wrote.
WRITER = """
import sys, streamsource as ss
url, number, appends = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with ss.open_store(url, pool_size=2) as store:
    for i in range(appends):
        stream = f"own{number}-1" if i % 2 else f"shared-{i % 3}"
        batch = [ss.NewEvent("Wrote", {"writer": number, "i": i, "k": k}) for k in range(1 + i % 3)]
        store.append(stream, batch)
        print(*(str(e.id) for e in batch), flush=True)
"""


@pytest.mark.slow
def test_eight_writer_processes_and_a_tailing_reader(pg_url: str) -> None:
    with ss.open_store(pg_url) as store:  # creates the schema before the writers race
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, pg_url, str(n), str(APPENDS_PER_WRITER)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(WRITERS)
        ]
        seen: list[ss.RecordedEvent] = []
        last = 0
        backwards_steps: list[tuple[int, int]] = []
        done = threading.Event()

        def tail() -> None:
            nonlocal last
            while True:
                finished = done.is_set()  # read before the pass: one full pass after the end
                for event in store.read_all(after=last):
                    if event.position <= last:
                        backwards_steps.append((last, event.position))
                    last = event.position
                    seen.append(event)
                if finished:
                    return

        reader = threading.Thread(target=tail)
        reader.start()
        outputs = [writer.communicate(timeout=240) for writer in writers]
        done.set()
        reader.join(timeout=60)
        for writer, (_, err) in zip(writers, outputs, strict=True):
            assert writer.returncode == 0, err

        written = {uuid.UUID(text) for out, _ in outputs for text in out.split()}
        assert len(written) == WRITERS * sum(1 + i % 3 for i in range(APPENDS_PER_WRITER))
        assert backwards_steps == []
        seen_ids = [e.id for e in seen]
        assert len(seen_ids) == len(set(seen_ids)), "an event was delivered twice"
        assert set(seen_ids) == written, "the reader missed events"
        # and the log the reader saw is the log as it stands
        assert [e.id for e in store.read_all()] == seen_ids
        for stream in {e.stream for e in seen}:
            versions = [e.version for e in seen if e.stream == stream]
            assert versions == list(range(len(versions)))


def test_a_later_commit_stays_hidden_until_an_earlier_writer_finishes(pg_url: str) -> None:
    with ss.open_store(pg_url) as store:
        store.append("first-1", [ss.NewEvent("A", {})])
        schema = store.stats()["schema"]
        # a writer that took its position and is still in its transaction
        with psycopg.connect(_plain(pg_url), options=f"-c search_path={schema}") as slow:
            slow.execute(
                "SELECT * FROM append_events(%s, -1, %s, %s, %s, %s)",
                ("slow-1", [uuid.uuid4()], ["B"], [b"{}"], [b"{}"]),
            )
            fast = store.append("fast-1", [ss.NewEvent("C", {})])  # commits at once
            visible = [e.stream for e in store.read_all()]
            assert visible == ["first-1"], "fast-1 would be seen before slow-1's lower position"
            assert store.head_position() < fast.position
            # the stream itself is readable at once: stream order needs no horizon
            assert [e.type for e in store.read_stream("fast-1")] == ["C"]
            slow.commit()
        log = list(store.read_all())
        assert [e.stream for e in log] == ["first-1", "slow-1", "fast-1"]
        assert [e.position for e in log] == sorted(e.position for e in log)
        assert store.head_position() == fast.position


def _plain(url: str) -> str:
    """The server part of a store URL (psycopg does not know our query options)."""
    return url.split("?", 1)[0]


def test_an_append_cancelled_while_it_holds_the_position_lock_releases_it(pg_url: str) -> None:
    timeout = "&options=-c%20statement_timeout%3D1000"  # ms: appends fail instead of hanging
    with (
        ss.open_store(pg_url + timeout, pool_size=1) as cancelled,
        ss.open_store(pg_url + timeout, pool_size=1) as other,
    ):
        cancelled.append("first-1", [ss.NewEvent("A", {})])
        schema = cancelled.stats()["schema"]
        with psycopg.connect(_plain(pg_url), options=f"-c search_path={schema}") as blocker:
            # holds the position sequence: an append waits in nextval(), the position lock
            # taken, until its statement_timeout cancels it
            blocker.execute("ALTER SEQUENCE events_position_seq INCREMENT BY 1")
            with pytest.raises(ss.errors.OperationalError, match="cancel"):
                cancelled.append("stuck-1", [ss.NewEvent("B", {})])
            blocker.rollback()
        # the lock is free again, for other connections and for the pooled one itself
        assert other.append("other-1", [ss.NewEvent("C", {})]).version == 0
        assert cancelled.append("again-1", [ss.NewEvent("D", {})]).version == 0
        assert [e.stream for e in other.read_all()] == ["first-1", "other-1", "again-1"]


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_store_reads_its_own_appends_in_the_log_once_an_earlier_writer_finishes(
    pg_url: str, api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another session's transaction (such as the store's own NOTIFY after an append) holds the
    # settled log back; the store's read of the log waits for it rather than miss its append.
    monkeypatch.setattr(own_writes, "WAIT", 60.0)  # only a bound: the writer ends at once
    with ss.open_store(pg_url) as store:
        schema = store.stats()["schema"]
    with psycopg.connect(_plain(pg_url), options=f"-c search_path={schema}") as other:
        other.execute("SELECT pg_current_xact_id()")  # takes a transaction id, holds it
        ended = threading.Event()

        def end_other() -> None:
            ended.wait(60)
            other.commit()

        finisher = threading.Thread(target=end_other)
        finisher.start()
        try:
            if api == "sync":
                with ss.open_store(pg_url) as store:
                    written = store.append("mine-1", [ss.NewEvent("A", {})])
                    ended.set()
                    assert [e.stream for e in store.read_all()] == ["mine-1"]
                    assert store.head_position() == written.position
            else:

                async def append_then_read() -> None:
                    async with await ss.open_async_store(pg_url) as store:
                        written = await store.append("mine-1", [ss.NewEvent("A", {})])
                        ended.set()
                        assert [e.stream async for e in store.read_all()] == ["mine-1"]
                        assert await store.head_position() == written.position

                asyncio.run(append_then_read())
        finally:
            ended.set()
            finisher.join(60)
