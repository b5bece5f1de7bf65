"""Group commit with batches made deterministic: a first write holds the write transaction
until the other callers are queued behind it, so they are certain to share the next commit."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from streamsource.errors import DuplicateEventId, StreamDeleted, WrongExpectedVersion
from streamsource.eventstore.backends.sqlite import SqliteRecorder, open_recorder
from streamsource.eventstore.events import ANY, NO_STREAM, AppendResult
from streamsource.eventstore.recorder import EventRecord


def record(**data: object) -> EventRecord:
    return EventRecord(uuid.uuid4(), "Happened", json.dumps(data).encode(), b"{}")


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[SqliteRecorder]:
    rec = open_recorder(f"sqlite:///{tmp_path}/store.db")
    yield rec
    rec.close()


def in_one_batch(recorder: SqliteRecorder, calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` from one thread each so that all of them share one commit.

    Returns each call's result, or the exception it raised.
    """
    committer = recorder._committer  # the real committer: we only hold its first write
    holding = threading.Event()
    release = threading.Event()

    def hold(conn: sqlite3.Connection) -> None:
        holding.set()
        release.wait()

    holder = threading.Thread(target=committer.run, args=(hold,))
    holder.start()
    holding.wait()
    outcomes: list[Any] = [None] * len(calls)

    def call(i: int) -> None:
        try:
            outcomes[i] = calls[i]()
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    deadline = time.monotonic() + 30
    for thread in threads:
        thread.start()
        # Queue them in order: a batch runs its writes in arrival order.
        while len(committer._pending) < threads.index(thread) + 1:
            assert time.monotonic() < deadline, "a call never queued behind the held lock"
            time.sleep(0.001)
    commits_before = recorder.stats()["commits"]
    release.set()
    holder.join()
    for thread in threads:
        thread.join()
    stats = recorder.stats()
    assert int(stats["commits"]) - int(commits_before) <= 2  # the holder's, then the batch's
    assert int(stats["largest_batch"]) >= len(calls)
    return outcomes


def test_appends_to_different_streams_share_one_commit(recorder: SqliteRecorder) -> None:
    recorder.append("a-1", [record()], NO_STREAM)
    outcomes = in_one_batch(
        recorder,
        [
            lambda: recorder.append("a-1", [record(), record()], 0),
            lambda: recorder.append("b-1", [record()], NO_STREAM),
            lambda: recorder.append("a-1", [record()], 2),  # sees the first one's versions
            lambda: recorder.append("c-1", [], ANY),
        ],
    )
    assert outcomes == [
        AppendResult(2, 3),
        AppendResult(0, 4),
        AppendResult(3, 5),
        AppendResult(-1, 0),
    ]
    assert int(recorder.stats()["batches_together"]) == 1
    assert [s.version for s in recorder.read_stream("a-1")] == [0, 1, 2, 3]
    assert [s.position for s in recorder.read_all()] == [1, 2, 3, 4, 5]
    assert [i.stream for i in recorder.list_streams()] == ["a-1", "b-1"]


def test_a_wrong_expected_version_fails_alone(recorder: SqliteRecorder) -> None:
    outcomes = in_one_batch(
        recorder,
        [
            lambda: recorder.append("a-1", [record()], NO_STREAM),
            lambda: recorder.append("a-1", [record()], NO_STREAM),  # loses to the first
            lambda: recorder.append("b-1", [record()], NO_STREAM),
        ],
    )
    assert outcomes[0] == AppendResult(0, 1)
    assert isinstance(outcomes[1], WrongExpectedVersion) and outcomes[1].actual == 0
    assert outcomes[2] == AppendResult(0, 2)
    assert [s.stream for s in recorder.read_all()] == ["a-1", "b-1"]


def test_a_retry_in_the_same_batch_as_its_original_is_idempotent(
    recorder: SqliteRecorder,
) -> None:
    events = [record(), record()]
    outcomes = in_one_batch(
        recorder,
        [
            lambda: recorder.append("a-1", events, NO_STREAM),
            lambda: recorder.append("a-1", events, NO_STREAM),  # the retry after a lost reply
            lambda: recorder.append("b-1", [events[0]], ANY),  # a reuse in another stream
        ],
    )
    assert outcomes[0] == outcomes[1] == AppendResult(1, 2)
    assert isinstance(outcomes[2], DuplicateEventId)
    assert recorder.head_position() == 2


def test_an_append_to_a_tombstoned_stream_fails_alone(recorder: SqliteRecorder) -> None:
    recorder.append("gone-1", [record()], NO_STREAM)
    recorder.hard_delete("gone-1", ANY)
    outcomes = in_one_batch(
        recorder,
        [
            lambda: recorder.append("gone-1", [record()], ANY),
            lambda: recorder.append("a-1", [record()], ANY),
        ],
    )
    assert isinstance(outcomes[0], StreamDeleted)
    assert outcomes[1] == AppendResult(0, 2)


def test_other_writes_in_a_batch_run_one_by_one(recorder: SqliteRecorder) -> None:
    recorder.append("a-1", [record()], NO_STREAM)
    outcomes = in_one_batch(
        recorder,
        [
            lambda: recorder.hard_delete("a-1", 5),  # wrong version: fails alone
            lambda: recorder.set_stream_metadata("a-1", b'{"max_count":1}'),
            lambda: recorder.hard_delete("a-1", 0),
            lambda: recorder.append("a-1", [record()], ANY),  # after the tombstone
        ],
    )
    assert isinstance(outcomes[0], WrongExpectedVersion)
    assert outcomes[1] is None and outcomes[2] is None
    assert isinstance(outcomes[3], StreamDeleted)
    info = recorder.stream_info("a-1")
    assert info.hard_deleted and info.metadata == b'{"max_count":1}' and info.version == 0


def test_a_large_shared_batch_with_unusual_stream_names_is_stored_exactly(
    recorder: SqliteRecorder,
) -> None:
    # More rows than one multi-row INSERT takes, and stream names that need quoting in the
    # batch's state query.
    streams = ['quote-"x"', "backslash-\\y", "accent-é", "emoji-🙂", "apos-'z'"]
    outcomes = in_one_batch(
        recorder,
        [partial(recorder.append, s, [record(n=n) for n in range(20)], NO_STREAM) for s in streams],
    )
    assert int(recorder.stats()["batches_together"]) == 1  # planned as one batch
    assert [o.version for o in outcomes] == [19] * len(streams)
    assert [o.position for o in outcomes] == [20, 40, 60, 80, 100]
    for stream in streams:
        stored = list(recorder.read_stream(stream))
        assert [s.version for s in stored] == list(range(20))
        assert [json.loads(s.data)["n"] for s in stored] == list(range(20))
    assert [s.position for s in recorder.read_all()] == list(range(1, 101))


def test_an_id_collision_in_a_batch_of_existing_streams_fails_alone(
    recorder: SqliteRecorder,
) -> None:
    # Existing streams and few rows: the batch is one multi-row INSERT with no savepoint
    # around it, which the collision undoes as a whole before each append runs alone.
    stored = record(n=0)
    recorder.append("a-1", [stored], NO_STREAM)
    recorder.append("b-1", [record(n=1)], NO_STREAM)
    outcomes = in_one_batch(
        recorder,
        [
            lambda: recorder.append("b-1", [record(n=2)], 0),
            lambda: recorder.append("a-1", [record(n=3), stored], 0),  # reuses a stored id
            lambda: recorder.append("b-1", [record(n=4)], 1),
        ],
    )
    assert outcomes[0] == AppendResult(1, 3)
    assert isinstance(outcomes[1], DuplicateEventId)
    assert outcomes[2] == AppendResult(2, 4)
    assert int(recorder.stats()["batches_together"]) == 0  # it fell back to one by one
    assert [(s.stream, s.version, s.position) for s in recorder.read_all()] == [
        ("a-1", 0, 1),
        ("b-1", 0, 2),
        ("b-1", 1, 3),
        ("b-1", 2, 4),
    ]


def notes_table(recorder: SqliteRecorder) -> None:
    with recorder.database.transaction() as tx:
        tx.execute("CREATE TABLE notes (k TEXT PRIMARY KEY, v INTEGER)")


def test_a_transaction_while_nothing_commits_runs_on_the_callers_thread_alone(
    recorder: SqliteRecorder,
) -> None:
    notes_table(recorder)
    before = recorder.stats()
    with recorder.database.transaction() as tx:
        tx.append("t-1", [record()], NO_STREAM)
        tx.execute("INSERT INTO notes VALUES ('a', 1)")
    after = recorder.stats()
    assert int(after["commits"]) - int(before["commits"]) == 1
    # It took the committer's lead itself: no helper thread was needed to queue it.
    assert recorder.database._helpers is None
    assert [s.version for s in recorder.read_stream("t-1")] == [0]
    with pytest.raises(ValueError), recorder.database.transaction() as tx:
        tx.append("t-1", [record()], 0)
        raise ValueError("changed my mind")
    assert [s.version for s in recorder.read_stream("t-1")] == [0]
    # The lead was given back: plain appends go on.
    assert recorder.append("t-1", [record()], 0) == AppendResult(1, 2)


def test_transactions_queued_behind_a_commit_keep_their_own_savepoints(
    recorder: SqliteRecorder,
) -> None:
    notes_table(recorder)

    def transaction(key: str, fail: bool) -> None:
        with recorder.database.transaction() as tx:
            tx.append(f"tx-{key}", [record()], NO_STREAM)
            tx.execute("INSERT INTO notes VALUES (?, 1)", (key,))
            if fail:
                raise ValueError(f"{key} rolls back")

    outcomes = in_one_batch(
        recorder,
        [
            lambda: recorder.append("plain-1", [record()], NO_STREAM),
            lambda: transaction("bad", True),
            lambda: transaction("good", False),
            lambda: recorder.append("plain-2", [record()], NO_STREAM),
        ],
    )
    assert outcomes[0] == AppendResult(0, 1)
    assert isinstance(outcomes[1], ValueError)
    assert outcomes[2] is None
    assert outcomes[3].version == 0
    assert [s.stream for s in recorder.read_all()] == ["plain-1", "tx-good", "plain-2"]
    with recorder.database.transaction() as tx:
        assert tx.execute("SELECT k FROM notes") == [("good",)]


def test_transactions_first_in_the_queue_share_one_commit_with_those_behind(
    recorder: SqliteRecorder,
) -> None:
    notes_table(recorder)

    def transaction(key: str) -> str:
        with recorder.database.transaction() as tx:
            tx.append(f"tx-{key}", [record()], NO_STREAM)
            tx.execute("INSERT INTO notes VALUES (?, 1)", (key,))
        return key

    # the first queued job is a transaction's: its caller is busy with its own block, so a
    # helper thread leads the batch, and all three still share one commit (in_one_batch)
    outcomes = in_one_batch(
        recorder,
        [
            lambda: transaction("a"),
            lambda: transaction("b"),
            lambda: recorder.append("plain", [record()], NO_STREAM),
        ],
    )
    assert outcomes[:2] == ["a", "b"] and outcomes[2].version == 0
    assert [s.stream for s in recorder.read_all()] == ["tx-a", "tx-b", "plain"]
    with recorder.database.transaction() as tx:
        assert tx.execute("SELECT k FROM notes ORDER BY k") == [("a",), ("b",)]


def test_a_transaction_alone_behind_a_commit_runs_on_its_own_thread_after_it(
    recorder: SqliteRecorder,
) -> None:
    notes_table(recorder)
    committer = recorder._committer
    holding, release = threading.Event(), threading.Event()

    def hold(conn: sqlite3.Connection) -> None:
        holding.set()
        release.wait(30)

    holder = threading.Thread(target=committer.run, args=(hold,))
    holder.start()
    assert holding.wait(30)
    threads: list[str] = []

    def transaction() -> None:
        with recorder.database.transaction() as tx:
            threads.append(threading.current_thread().name)
            tx.append("alone-1", [record()], NO_STREAM)

    caller = threading.Thread(target=transaction, name="caller")
    caller.start()
    deadline = time.monotonic() + 30
    while not committer._pending:  # queued behind the held commit
        assert time.monotonic() < deadline, "the transaction never queued"
        time.sleep(0.001)
    release.set()
    holder.join(30)
    caller.join(30)
    assert threads == ["caller"]
    assert [s.version for s in recorder.read_stream("alone-1")] == [0]
    # nobody else waited: it led its own commit, no helper thread was started for it
    assert recorder.database._helpers is None
