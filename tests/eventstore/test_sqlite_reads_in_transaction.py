"""On SQLite, the store's reads made inside one of its transactions run on that transaction:
they see what it wrote so far (nobody else's uncommitted work, and nothing it rolls back),
whether the transaction leads the group committer or was queued behind a commit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import pytest

import streamsource as ss
from streamsource.eventstore.domain import Aggregate, EventRegistry, applies
from streamsource.eventstore.events import NO_STREAM, NewEvent

registry = EventRegistry()


@registry.event("Opened")
class Opened(msgspec.Struct, frozen=True):
    owner: str


class Account(Aggregate):
    registry = registry

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.owner = ""

    @applies(Opened)
    def _opened(self, event: Opened) -> None:
        self.owner = event.owner


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ss.EventStore]:
    with ss.open_store(f"sqlite:///{tmp_path}/store.db") as opened:
        yield opened


def test_reads_inside_a_transaction_see_its_writes_and_no_one_else_does(
    store: ss.EventStore,
) -> None:
    with ThreadPoolExecutor(1) as other, store.transaction() as tx:
        tx.append("account-1", NewEvent("Opened", {"owner": "ann"}), NO_STREAM)
        assert store.stream_version("account-1") == 0
        assert [e.data for e in store.read_stream("account-1")] == [{"owner": "ann"}]
        assert ss.Repository(store, Account).load("1").owner == "ann"
        assert [e.stream for e in store.read_all()] == ["account-1"]
        # another thread reads what is committed: nothing yet
        assert other.submit(store.stream_version, "account-1").result(30) is None
    assert store.stream_version("account-1") == 0


def test_what_a_transaction_rolls_back_is_never_read_again(store: ss.EventStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.append("account-1", NewEvent("Opened", {"owner": "ann"}), NO_STREAM)
        assert store.stream_version("account-1") == 0
        raise RuntimeError("changed my mind")
    assert store.stream_version("account-1") is None
    assert list(store.read_stream("account-1")) == []


def test_a_transaction_queued_behind_another_reads_its_own_writes(store: ss.EventStore) -> None:
    committer: Any = store.recorder._committer  # type: ignore[attr-defined]
    seen: list[Any] = []

    def queued() -> None:
        with store.transaction() as tx:
            tx.append("account-2", NewEvent("Opened", {"owner": "bob"}), NO_STREAM)
            seen.append(store.stream_version("account-2"))
            seen.append(store.stream_version("account-1"))  # the first one's, committed

    with store.transaction() as tx:  # leads the committer until the block ends
        tx.append("account-1", NewEvent("Opened", {"owner": "ann"}), NO_STREAM)
        worker = threading.Thread(target=queued)
        worker.start()
        deadline = time.monotonic() + 30
        while not committer._pending:  # the second transaction waits in the queue
            assert time.monotonic() < deadline, "the second transaction never queued"
            time.sleep(0.001)
    worker.join(30)
    assert not worker.is_alive()
    assert seen == [0, 0]
    assert store.stream_version("account-2") == 0
