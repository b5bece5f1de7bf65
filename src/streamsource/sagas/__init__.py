"""Sagas (orchestration) and process managers (choreography) over the store's database.

* ``definition``: how a saga is declared (``Saga``, ``Step``, ``SagaCommand``).
* ``core``: the sans-I/O state machine, ``transition(saga, state, input, now)``.
* ``tables``: saga state and deadline rows in the service's store database.
* ``engine``: ``SagaEngine``, running sagas for a messaging ``Service``.
* ``async_engine``: ``AsyncSagaEngine``, the engine's operations for asyncio code.
* ``process``: process managers (``ProcessManager``, ``reacts``, ``ProcessRunner``).
* ``admin``: what operators do (list, show, resume, abort; ``streamsource sagas``).
"""

from streamsource.sagas.async_engine import AsyncSagaEngine
from streamsource.sagas.core import HistoryEntry, SagaState
from streamsource.sagas.definition import Saga, SagaCommand, SagaData, Step
from streamsource.sagas.engine import SagaEngine
from streamsource.sagas.errors import (
    InvalidSagaInput,
    SagaAlreadyStarted,
    SagaConflict,
    SagaDataNotSerializable,
    SagaError,
    SagaNotFound,
)
from streamsource.sagas.process import Process, ProcessManager, ProcessRunner, reacts

__all__ = [
    "AsyncSagaEngine",
    "HistoryEntry",
    "InvalidSagaInput",
    "Process",
    "ProcessManager",
    "ProcessRunner",
    "Saga",
    "SagaAlreadyStarted",
    "SagaCommand",
    "SagaConflict",
    "SagaData",
    "SagaDataNotSerializable",
    "SagaEngine",
    "SagaError",
    "SagaNotFound",
    "SagaState",
    "Step",
    "reacts",
]
