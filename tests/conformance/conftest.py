"""The ``store`` fixture: every conformance test runs once per backend x API.

Tests are written once against the sync API. For the async API the fixture hands them a thin
shim that forwards each call to an :class:`~streamsource.AsyncEventStore` running on an event
loop in a background thread: coroutines are awaited there, async iterators are pulled one
step at a time, and argument errors raise synchronously exactly as in the async API itself.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import streamsource as ss
from conformance.backends import BACKEND_MARKS, BACKENDS, EPHEMERAL

T = TypeVar("T")
APIS = ("sync", "async")


class LoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class BlockingIterator:
    """A sync iterator over an async iterator, one step per hop to the loop."""

    def __init__(self, iterator: AsyncIterator[Any], loop: LoopThread) -> None:
        self._iterator = iterator
        self._loop = loop

    def __iter__(self) -> BlockingIterator:
        return self

    def __next__(self) -> Any:
        try:
            return self._loop.run(_anext(self._iterator))
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            self._loop.run(aclose())


async def _anext(iterator: AsyncIterator[Any]) -> Any:
    return await iterator.__anext__()


class BlockingProxy:
    """Makes an object with coroutine methods callable like its sync twin."""

    def __init__(self, target: Any, loop: LoopThread) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not inspect.ismethod(attribute):  # e.g. a driver connection (callable itself)
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            return self._loop.run(result) if inspect.iscoroutine(result) else result

        return call


class BlockingContext:
    """A sync context manager over an async one (``store.transaction()``)."""

    def __init__(self, manager: Any, loop: LoopThread) -> None:
        self._manager = manager
        self._loop = loop

    def __enter__(self) -> BlockingProxy:
        return BlockingProxy(self._loop.run(self._manager.__aenter__()), self._loop)

    def __exit__(self, *exc_info: Any) -> bool:
        return bool(self._loop.run(self._manager.__aexit__(*exc_info)))


class BlockingStore:
    """Makes an AsyncEventStore callable like an EventStore (for the tests only)."""

    def __init__(self, store: ss.AsyncEventStore, loop: LoopThread) -> None:
        self.async_store = store
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.async_store, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            if inspect.iscoroutine(result):
                return self._loop.run(result)
            if hasattr(result, "__anext__"):
                return BlockingIterator(result, self._loop)
            if hasattr(result, "__aenter__"):
                return BlockingContext(result, self._loop)
            return result

        return call

    def __enter__(self) -> BlockingStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.stop()


StoreFactory = Callable[[], Any]


def open_for(api: str, url: str, loop: LoopThread) -> Any:
    """Open ``url`` through the sync API or the async API behind the blocking shim."""
    try:
        if api == "sync":
            return ss.open_store(url)
        return BlockingStore(loop.run(ss.open_async_store(url)), loop)
    except ss.NotSupportedError as exc:
        pytest.skip(str(exc))


@pytest.fixture(
    params=[
        pytest.param((backend, api), id=f"{backend}-{api}", marks=BACKEND_MARKS.get(backend, []))
        for backend in BACKENDS
        for api in APIS
    ]
)
def store_factory(
    request: pytest.FixtureRequest, tmp_path: Path, loop_thread: LoopThread
) -> Iterator[Callable[[], Any]]:
    """Opens stores of this test's backend and API; each call a new, empty one."""
    backend, api = request.param
    opened: list[Any] = []  # kept open until the end, so ids in urls stay unique
    urls: dict[int, str] = {}
    counter = iter(range(1_000_000))

    def factory() -> Any:
        directory = tmp_path / f"store{next(counter)}"
        directory.mkdir()
        url = BACKENDS[backend](directory, request)
        store = open_for(api, url, loop_thread)
        urls[id(store)] = url
        opened.append(store)
        return store

    def reopen(store: Any) -> Any:
        if backend in EPHEMERAL:
            pytest.skip(f"the {backend} backend keeps nothing once closed")
        store.close()
        url = urls[id(store)]
        again = open_for(api, url, loop_thread)
        urls[id(again)] = url
        opened.append(again)
        return again

    def again(store: Any) -> Any:
        url = urls[id(store)]
        twin = open_for(api, url, loop_thread)
        urls[id(twin)] = url
        opened.append(twin)
        return twin

    factory.reopen = reopen  # type: ignore[attr-defined]
    factory.again = again  # type: ignore[attr-defined]
    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: Callable[[], Any]) -> Any:
    """An empty store of this test's backend, driven through this test's API."""
    return store_factory()


@pytest.fixture
def reopen(store_factory: Any) -> Callable[[Any], Any]:
    """``reopen(store)``: close it and open its URL again (skips ephemeral backends)."""
    return store_factory.reopen  # type: ignore[no-any-return]


@pytest.fixture
def open_again(store_factory: Any) -> Callable[[Any], Any]:
    """``open_again(store)``: open its URL once more while it stays open (memory:// opens a
    new, separate store each time)."""
    return store_factory.again  # type: ignore[no-any-return]
