"""The broker's log-writer thread: order, results, and what follows a write that a failed
connection's cancellation cannot undo."""

from __future__ import annotations

import asyncio
import threading
from functools import partial

import pytest

from streamsource.kafka.broker.log_writer import LogWriter


async def test_jobs_run_in_the_order_submitted_and_answer_their_own_futures() -> None:
    writer = LogWriter()
    order: list[int] = []

    def job(i: int) -> int:
        order.append(i)
        return i * 10

    try:
        futures = [writer.submit(partial(job, i)) for i in range(50)]
        assert await asyncio.wait_for(asyncio.gather(*futures), 5) == [i * 10 for i in range(50)]
    finally:
        writer.close()
    assert order == list(range(50))


async def test_then_is_told_once_the_job_ran_even_when_its_future_was_cancelled() -> None:
    """A produce whose connection failed has its answer cancelled, but the writer still
    appends it: waking readers and noting it for the flush hang on ``then``, not on the
    future, so they still happen, after the job and not before."""
    writer = LogWriter()
    gate = threading.Event()
    ran = threading.Event()
    told: list[tuple[bool, BaseException | None]] = []

    def job() -> str:
        gate.wait(5)
        ran.set()
        return "written"

    def then(error: BaseException | None) -> None:
        told.append((ran.is_set(), error))

    try:
        future = writer.submit(job, owner="connection", then=then)
        future.cancel()
        await asyncio.sleep(0)
        assert told == []  # not on the cancellation: the job has not run yet
        gate.set()
        await asyncio.wait_for(writer.settled("connection"), 5)  # cancelled: returns at once
        async with asyncio.timeout(5):
            while not told:
                await asyncio.sleep(0.01)
    finally:
        gate.set()
        writer.close()
    assert told == [(True, None)]
    assert future.cancelled()


async def test_then_is_told_the_error_of_a_failed_job() -> None:
    writer = LogWriter()
    told: list[BaseException | None] = []

    def job() -> None:
        raise OSError(28, "No space left on device")

    try:
        future = writer.submit(job, then=told.append)
        with pytest.raises(OSError, match="No space left"):
            await asyncio.wait_for(future, 5)
    finally:
        writer.close()
    assert len(told) == 1 and isinstance(told[0], OSError)
