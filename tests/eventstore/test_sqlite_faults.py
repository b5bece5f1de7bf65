"""Bad files and hostile conditions: each gets a specific streamsource error naming the file."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streamsource.errors import (
    CorruptStoreError,
    NotSupportedError,
    OperationalError,
    StreamsourceError,
)
from streamsource.eventstore.backends.sqlite import (
    DiskFullError,
    StoreDirectoryMissing,
    StoreLockedError,
    StoreReadOnlyError,
    open_recorder,
)
from streamsource.eventstore.events import ANY, NO_STREAM
from streamsource.eventstore.recorder import EventRecord


def record(size: int = 10) -> EventRecord:
    return EventRecord(uuid.uuid4(), "Happened", json.dumps({"x": "y" * size}).encode(), b"{}")


def make_store(path: Path, events: int = 50) -> None:
    with open_recorder(f"sqlite:///{path}") as recorder:
        recorder.append("s-1", [record() for _ in range(events)], NO_STREAM)


def test_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("dear diary, today I wrote no events\n" * 100)
    with pytest.raises(CorruptStoreError, match="not a SQLite database") as info:
        open_recorder(f"sqlite:///{path}")
    assert str(path) in str(info.value)
    assert path.read_text().startswith("dear diary")  # left untouched


def test_a_corrupted_store(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    make_store(path)
    data = bytearray(path.read_bytes())
    # Keep the 100-byte file header valid; overwrite the schema page and what follows.
    data[100:8192] = os.urandom(8092)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError) as info, open_recorder(f"sqlite:///{path}") as rec:
        list(rec.read_all())
    assert str(path) in str(info.value)


def test_a_sqlite_file_of_another_application(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(CorruptStoreError, match="not a streamsource store"):
        open_recorder(f"sqlite:///{path}")
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")]
    conn.close()
    assert tables == ["customers"]  # nothing of ours was added


def test_a_store_in_a_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "store.db"
    with pytest.raises(StoreDirectoryMissing, match="does not exist") as info:
        open_recorder(f"sqlite:///{path}")
    assert isinstance(info.value, OperationalError) and not info.value.retriable
    assert str(path) in str(info.value)


def test_a_store_from_a_newer_streamsource(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    make_store(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(NotSupportedError, match="upgrade streamsource"):
        open_recorder(f"sqlite:///{path}")


def test_locked_beyond_the_timeout_is_a_retriable_operational_error(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    make_store(path, events=1)
    recorder = open_recorder(f"sqlite:///{path}", timeout=0.05)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    with pytest.raises(StoreLockedError) as info:
        recorder.append("s-1", [record()], ANY)
    assert isinstance(info.value, OperationalError) and info.value.retriable
    assert str(path) in str(info.value)
    assert [s.version for s in recorder.read_stream("s-1")] == [0]  # reads still work
    other.execute("ROLLBACK")
    other.close()
    assert recorder.append("s-1", [record()], 0).version == 1  # the retry succeeds
    recorder.close()


def test_disk_full_is_an_operational_error_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    make_store(path, events=1)
    recorder = open_recorder(f"sqlite:///{path}")
    # A size cap on the real write connection is how SQLite reports a full disk (SQLITE_FULL).
    pages = recorder._committer.run(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
    recorder._committer.run(lambda c: c.execute(f"PRAGMA max_page_count = {pages + 2}"))
    with pytest.raises(DiskFullError) as info:
        recorder.append("s-1", [record(size=2000) for _ in range(100)], 0)
    assert isinstance(info.value, OperationalError)
    assert str(path) in str(info.value)
    assert [s.version for s in recorder.read_stream("s-1")] == [0]  # nothing half-written
    recorder._committer.run(lambda c: c.execute("PRAGMA max_page_count = 1073741823"))
    assert recorder.append("s-1", [record()], 0).version == 1
    recorder.close()


# -- permissions: as root, the check runs in a forked child that drops to user nobody ------

NOBODY = 65534


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory user nobody can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="streamsource-ro-"))
    path.chmod(0o777)
    yield path
    for sub in path.rglob("*"):
        if sub.is_dir():
            sub.chmod(0o777)
    shutil.rmtree(path)


def outcome_without_privileges(action: Callable[[], object]) -> tuple[str, str]:
    """Run ``action`` as an unprivileged user; the error it raised as (type name, message)."""
    if os.geteuid() != 0:
        return _outcome(action)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, json.dumps(_outcome(action)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    name, message = json.loads(answer)
    return name, message


def _outcome(action: Callable[[], object]) -> tuple[str, str]:
    try:
        action()
    except StreamsourceError as exc:
        return type(exc).__name__, str(exc)
    except Exception as exc:
        return "not ours: " + type(exc).__name__, str(exc)
    return "no error", ""


def test_a_new_store_in_a_read_only_directory(shared_dir: Path) -> None:
    directory = shared_dir / "ro"
    directory.mkdir(mode=0o555)
    directory.chmod(0o555)
    path = directory / "store.db"
    name, message = outcome_without_privileges(lambda: open_recorder(f"sqlite:///{path}"))
    assert name == StoreReadOnlyError.__name__
    assert "cannot write" in message and "read-only" in message and str(path) in message
    assert not path.exists()


def test_an_existing_store_in_a_read_only_directory(shared_dir: Path) -> None:
    directory = shared_dir / "ro"
    directory.mkdir()
    path = directory / "store.db"
    make_store(path)
    path.chmod(0o666)
    directory.chmod(0o555)

    def append() -> None:
        with open_recorder(f"sqlite:///{path}") as recorder:
            recorder.append("s-1", [record()], ANY)

    name, message = outcome_without_privileges(append)
    assert name == StoreReadOnlyError.__name__
    assert "cannot write" in message and "read-only" in message and str(path) in message


def test_a_read_only_store_file(shared_dir: Path) -> None:
    path = shared_dir / "store.db"
    make_store(path)
    path.chmod(0o444)

    def append() -> None:
        with open_recorder(f"sqlite:///{path}") as recorder:
            recorder.append("s-1", [record()], ANY)

    name, message = outcome_without_privileges(append)
    assert name == StoreReadOnlyError.__name__
    assert "cannot write" in message and "read-only" in message and str(path) in message
    path.chmod(0o644)
    with open_recorder(f"sqlite:///{path}") as recorder:
        assert len(list(recorder.read_stream("s-1"))) == 50  # nothing was written
