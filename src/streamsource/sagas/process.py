"""Process managers: react to integration events from several services, keep state per
correlation key, send commands; the choreography counterpart of a saga.

::

    class Shipping(ProcessManager):
        name = "Shipping"

        @reacts(OrderPlaced, source="ordering", key=lambda e: e.order, starts=True)
        def placed(self, process: Process, event: OrderPlaced) -> None:
            process.data["address"] = event.address
            self.ship_when_ready(process)

        @reacts(PaymentReceived, source="payments", key=lambda e: e.order, starts=True)
        def paid(self, process: Process, event: PaymentReceived) -> None:
            process.data["paid"] = True
            self.ship_when_ready(process)

        def ship_when_ready(self, process: Process) -> None:
            if process.data.get("paid") and "address" in process.data:
                process.send("shipping", ShipOrder(process.key, process.data["address"]))
                process.finish()

The guarantees are the saga's: each event is applied once (the messaging inbox), the
process's row (its data, a version column, its history) and the commands it sends commit in
that same transaction, two events of one process at once cannot both advance it (the
loser's transaction rolls back with a retriable SagaConflict and the event is delivered
again), and a key has one process. The state is a :class:`~streamsource.sagas.SagaState`
row, so ``streamsource sagas list|show`` shows processes too.

An event whose key has no process is ignored unless its reaction ``starts`` one; events
for a finished process are ignored (and not recorded).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import msgspec

from streamsource.eventstore.database import ensure_tables, require_database
from streamsource.eventstore.event_ids import new_event_id
from streamsource.messaging import Context, Service
from streamsource.sagas.core import HistoryEntry, SagaState
from streamsource.sagas.definition import SagaCommand
from streamsource.sagas.engine import owner_of
from streamsource.sagas.errors import InvalidSagaInput, SagaConflict
from streamsource.sagas.tables import SagaRows, create_statements

F = TypeVar("F", bound=Callable[..., Any])
_MAX_HISTORY = 200  # entries kept per process: a long-lived one must not grow without bound


@dataclass(frozen=True, slots=True)
class Reaction:
    event: type[Any]
    source: str
    key: Callable[[Any], str]
    starts: bool
    method: str


def reacts(
    event: type[Any], *, source: str, key: Callable[[Any], str], starts: bool = False
) -> Callable[[F], F]:
    """Mark a method ``(self, process, event)`` as the reaction to ``event`` published by
    service ``source``; ``key(event)`` is the process's correlation key."""

    def mark(method: F) -> F:
        method.__dict__["_reaction"] = (event, source, key, starts)
        return method

    return mark


@dataclass
class Process:
    """What a reaction sees and does: the process's key and data, commands to send."""

    key: str
    data: dict[str, Any]
    commands: list[SagaCommand] = field(default_factory=list)
    finished: bool = False

    def send(self, to: str, message: Any) -> None:
        """Send command ``message`` to service ``to`` (when the transaction commits)."""
        self.commands.append(SagaCommand(to, message))

    def finish(self) -> None:
        """The process is done: later events for its key are ignored."""
        self.finished = True


class ProcessManager:
    """Base class of a process manager: set ``name``, mark reactions with :func:`reacts`."""

    name: ClassVar[str]
    reactions: ClassVar[tuple[Reaction, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found = []
        for attribute, value in vars(cls).items():
            marked = getattr(value, "__dict__", {}).get("_reaction")
            if marked is not None:
                event, source, key, starts = marked
                found.append(Reaction(event, source, key, starts, attribute))
        cls.reactions = (*cls.reactions, *found)
        seen = [(r.event, r.source) for r in cls.reactions]
        if len(set(seen)) != len(seen):
            raise InvalidSagaInput(f"{cls.__qualname__} reacts twice to one event of one source")


class ProcessRunner:
    """Runs process managers for ``service``: registers their reactions as its handlers."""

    def __init__(
        self,
        service: Service,
        managers: Sequence[ProcessManager],
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.service = service
        self.owner = owner_of(service.name)
        self.clock = clock or time.time
        database = require_database(service.store.recorder, "process managers")
        self.rows = SagaRows(database.dialect)
        ensure_tables(database, *create_statements(database.dialect))
        by_event: dict[tuple[type[Any], str], list[tuple[ProcessManager, Reaction]]] = {}
        for manager in managers:
            for reaction in manager.reactions:
                by_event.setdefault((reaction.event, reaction.source), []).append(
                    (manager, reaction)
                )
        for (event_type, source), targets in by_event.items():
            service.handle(event_type, self._dispatcher(targets), source=source)

    def _dispatcher(
        self, targets: list[tuple[ProcessManager, Reaction]]
    ) -> Callable[[Context, Any], None]:
        def dispatch(ctx: Context, event: Any) -> None:
            for manager, reaction in targets:
                self._react(ctx, manager, reaction, event)

        return dispatch

    def _react(self, ctx: Context, manager: ProcessManager, reaction: Reaction, event: Any) -> None:
        key = reaction.key(event)
        row = self.rows.find(ctx.tx, manager.name, key)
        if row is None and not reaction.starts:
            return
        if row is not None and row.state.finished:
            return
        now = self.clock()
        state = row.state if row is not None else _new(manager.name, key, ctx)
        process = Process(key, dict(state.data))
        getattr(manager, reaction.method)(process, event)
        for command in process.commands:
            ctx.send(
                command.message,
                to=command.to,
                key=key,
                saga_id=state.saga_id,
                saga_name=manager.name,
            )
        sent = ", ".join(f"{type(c.message).__name__} to {c.to}" for c in process.commands)
        entries = [HistoryEntry(now, f"reacted to {type(event).__name__}", None, sent)]
        if process.finished:
            entries.append(HistoryEntry(now, "completed"))
        state = msgspec.structs.replace(
            state,
            status="completed" if process.finished else "running",
            data=process.data,
            history=(*state.history, *entries)[-_MAX_HISTORY:],
        )
        version = 0 if row is None else row.version

        def save(tx: Any) -> None:
            if version == 0:
                if not self.rows.create(tx, self.owner, state):
                    raise SagaConflict(state.saga_id, 0)  # another event started it: again
            else:
                self.rows.save(tx, state, version)

        ctx.write(save)

    def load(self, manager: ProcessManager, key: str) -> SagaState | None:
        """The process of ``manager`` for ``key``, if one started."""
        with self.service.store.transaction() as tx:
            row = self.rows.find(tx, manager.name, key)
        return None if row is None else row.state


def _new(name: str, key: str, ctx: Context) -> SagaState:
    return SagaState(
        saga_id=str(new_event_id()),
        name=name,
        key=key,
        status="running",
        data={},
        correlation_id=ctx.causation().correlation_id,
    )
