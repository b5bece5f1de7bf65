"""The saga engine for asyncio code: ``await sagas.start(...)``, ``async with sagas:``.

Messaging services and their transports are synchronous (their store transactions and the
Kafka client block), so this wraps a :class:`~streamsource.sagas.SagaEngine` and runs each
call on a worker thread (``asyncio.to_thread``): an HTTP handler awaits a saga's start
without blocking its event loop. Semantics are the sync engine's, call for call.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from streamsource.sagas.core import SagaState
from streamsource.sagas.definition import Saga, SagaData
from streamsource.sagas.engine import SagaEngine


class AsyncSagaEngine:
    """``engine``'s operations, awaited; ``async with`` fires deadlines in the background."""

    def __init__(self, engine: SagaEngine) -> None:
        self.engine = engine
        self._stop = threading.Event()
        self._task: asyncio.Future[None] | None = None

    async def start(self, saga: type[Saga], key: str, data: SagaData | None = None) -> str:
        """:meth:`SagaEngine.start` in a transaction of its own."""
        return await asyncio.to_thread(self.engine.start, saga, key, data)

    async def load(self, saga_id: str) -> SagaState:
        return await asyncio.to_thread(self.engine.load, saga_id)

    async def find(self, saga: type[Saga], key: str) -> SagaState | None:
        return await asyncio.to_thread(self.engine.find, saga, key)

    async def resume(self, saga_id: str) -> None:
        await asyncio.to_thread(self.engine.resume, saga_id)

    async def abort(self, saga_id: str, reason: str = "aborted by an operator") -> None:
        await asyncio.to_thread(self.engine.abort, saga_id, reason)

    async def fire_due(self, limit: int = 100) -> int:
        return await asyncio.to_thread(self.engine.fire_due, limit)

    async def run(self) -> None:
        """Fire deadlines until this task is cancelled (the loop runs on a worker thread)."""
        stop = threading.Event()
        worker = asyncio.ensure_future(asyncio.to_thread(self.engine.run, stop))
        try:
            await asyncio.shield(worker)
        except asyncio.CancelledError:
            stop.set()
            await worker
            raise

    async def __aenter__(self) -> AsyncSagaEngine:
        self._task = asyncio.ensure_future(self.run())
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
