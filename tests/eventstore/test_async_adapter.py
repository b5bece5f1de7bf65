"""The thread adapter that gives a sync recorder its asyncio face."""

from __future__ import annotations

import asyncio

import pytest

import streamsource as ss
from streamsource.eventstore.backends import threaded
from streamsource.eventstore.backends.memory import MemoryRecorder
from streamsource.eventstore.recorder import AsyncRecorder


def test_adapter_implements_the_async_protocol() -> None:
    assert isinstance(threaded.ThreadedAsyncRecorder(MemoryRecorder()), AsyncRecorder)


async def test_pages_cross_the_thread_boundary_in_order() -> None:
    count = 2 * threaded.PAGE_SIZE + 7
    store = ss.AsyncEventStore(threaded.ThreadedAsyncRecorder(MemoryRecorder()))
    await store.append("s-1", [ss.NewEvent("E", n) for n in range(count)])
    assert [e.data async for e in store.read_stream("s-1")] == list(range(count))
    assert [e.data async for e in store.read_all(backwards=True)] == list(range(count))[::-1]
    await store.close()


async def test_concurrent_tasks_race_like_threads() -> None:
    store = ss.AsyncEventStore(threaded.ThreadedAsyncRecorder(MemoryRecorder()))
    await store.append("s-1", ss.NewEvent("Start", {}), ss.NO_STREAM)

    async def attempt(n: int) -> object:
        try:
            return await store.append("s-1", ss.NewEvent("Try", {"n": n}), 0)
        except ss.WrongExpectedVersion as lost:
            return lost

    results = await asyncio.gather(*(attempt(n) for n in range(8)))
    assert sum(isinstance(r, ss.AppendResult) for r in results) == 1
    assert all(r.actual == 1 for r in results if isinstance(r, ss.WrongExpectedVersion))
    await store.close()


async def test_argument_errors_raise_when_the_method_is_called() -> None:
    store = ss.AsyncEventStore(threaded.ThreadedAsyncRecorder(MemoryRecorder()))
    with pytest.raises(ss.InvalidStreamName):
        store.read_stream("")
    with pytest.raises(ss.ProgrammingError):
        store.read_all(limit=-1)
    await store.close()
    with pytest.raises(ss.InterfaceError):
        await store.append("s-1", ss.NewEvent("A", {}))
