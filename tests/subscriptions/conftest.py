"""Stores for the subscription tests: the in-memory reference and a real SQLite file."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import streamsource as ss
from streamsource.eventstore.appended import signal_for
from streamsource.eventstore.backends.threaded import ThreadedAsyncRecorder
from streamsource.eventstore.subscriptions import (
    AsyncPersistentSubscription,
    Message,
    PersistentSubscription,
)

T = TypeVar("T")


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    return f"sqlite:///{tmp_path}/store.db"


@pytest.fixture
def store(store_url: str) -> Iterator[ss.EventStore]:
    with ss.open_store(store_url) as opened:
        yield opened


def deposit(store: ss.EventStore, stream: str, amount: int) -> ss.AppendResult:
    """Append one Deposited event."""
    return store.append(stream, [ss.NewEvent("Deposited", {"amount": amount})])


# -- persistent subscriptions through the sync API and the asyncio API ----------------------


class LoopThread:
    """An asyncio event loop in a daemon thread: sync test code runs coroutines on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        self.loop.close()


async def _next(iterator: AsyncIterator[T]) -> T:
    return await anext(iterator)


class BlockingPersistent:
    """An AsyncPersistentSubscription driven like a PersistentSubscription (tests only): the
    same test then checks both APIs' semantics."""

    def __init__(self, subscription: AsyncPersistentSubscription, loop: LoopThread) -> None:
        self._sub = subscription
        self._loop = loop
        loop.run(subscription.__aenter__())  # creates or checks the group, as the sync one

    def fetch(self, max_messages: int | None = None, timeout: float | None = 0) -> list[Message]:
        return self._loop.run(self._sub.fetch(max_messages, timeout), timeout=600)

    def __iter__(self) -> Iterator[Message]:
        iterator = aiter(self._sub)
        while True:
            try:
                yield self._loop.run(_next(iterator), timeout=600)
            except StopAsyncIteration:
                return

    def ack(self, message: Message) -> None:
        self._loop.run(self._sub.ack(message))

    def nack(self, message: Message, error: BaseException | str, *, park: bool = False) -> None:
        self._loop.run(self._sub.nack(message, error, park=park))

    def parked(self) -> list[ss.RecordedEvent]:
        return self._loop.run(self._sub.parked())

    def replay_parked(self) -> int:
        return self._loop.run(self._sub.replay_parked())

    def in_flight(self) -> int:
        return self._loop.run(self._sub.in_flight())

    def close(self) -> None:
        self._loop.run(self._sub.close())

    def __enter__(self) -> BlockingPersistent:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.stop()


@pytest.fixture
def async_store(store: ss.EventStore) -> ss.AsyncEventStore:
    """An asyncio store on the sync store's backend (so appends of either are seen by both)."""
    return ss.AsyncEventStore(ThreadedAsyncRecorder(store.recorder))


Persistent = Callable[..., Any]


@pytest.fixture
def persistent(api: str, request: pytest.FixtureRequest) -> Persistent:
    """``persistent(store, group, **options)``: a PersistentSubscription, or for the async
    API an AsyncPersistentSubscription (on ``async_store``) behind a blocking shim."""

    if api == "sync":
        return PersistentSubscription
    async_store = request.getfixturevalue("async_store")
    loop = request.getfixturevalue("loop_thread")

    def make(store: ss.EventStore, group: str, **options: Any) -> Any:
        return BlockingPersistent(AsyncPersistentSubscription(async_store, group, **options), loop)

    return make


def wait_until_waiting(store: Any, count: int = 1, limit: float = 30.0) -> None:
    """Return once ``count`` subscribers of ``store`` wait for its next append (a consumer
    that found nothing and sleeps), so an append made next must wake them up."""
    signal = signal_for(store.recorder)
    deadline = time.monotonic() + limit
    while signal.waiting < count:
        assert time.monotonic() < deadline, f"no {count} waiting subscriber(s) in {limit}s"
        time.sleep(0.001)


async def until_waiting(store: Any, count: int = 1, limit: float = 30.0) -> None:
    """:func:`wait_until_waiting` for asyncio code (the event loop keeps running)."""
    signal = signal_for(store.recorder)
    deadline = time.monotonic() + limit
    while signal.waiting < count:
        assert time.monotonic() < deadline, f"no {count} waiting subscriber(s) in {limit}s"
        await asyncio.sleep(0.001)
