"""Runs declared sagas for one messaging :class:`~streamsource.messaging.Service`.

Every transition happens inside one transaction of the service's store, through the
messaging :class:`~streamsource.messaging.Context`: the incoming reply's inbox row, the
commands the saga sends (outbox events), the saga's row and its deadline rows commit
together or not at all (see :mod:`.tables` for the rows and why they are rows).

* ``engine.start(CreateOrder, key=order_id, data={...}, ctx=ctx)`` inside a handler (the
  saga is started by the event that handler receives) or on its own transaction.
* Replies come back on the service's labelled replies channel (``{service}.replies.{saga}``)
  and are matched to the saga by the envelope's saga id and to the command by its causation
  id. A ``Failure(refused=True)`` is a business failure, any other ``Failure`` a retriable
  fault, every other reply a success (its fields are what ``on_reply`` sees).
* Deadlines fire from :meth:`SagaEngine.fire_due` (a background thread: ``with engine:``, or
  ``engine.run(stop)``), each in its own transaction that deletes the deadline's row.
* Operators' requests (``streamsource sagas resume|abort``) are deadline rows due at once,
  carried out by the engine that owns the saga, since only it can build the commands.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from streamsource.bridge.background import BackgroundLoop
from streamsource.errors import StreamsourceError
from streamsource.eventstore.database import ensure_tables, require_database
from streamsource.eventstore.event_ids import new_event_id
from streamsource.messaging import Context, Failure, Service
from streamsource.observability import tracing
from streamsource.sagas.core import (
    Abort,
    CancelDeadline,
    DeadlineFired,
    Effect,
    Input,
    Reply,
    Resume,
    SagaState,
    ScheduleDeadline,
    SendCommand,
    Start,
    new_state,
    transition,
)
from streamsource.sagas.definition import Saga, SagaData
from streamsource.sagas.errors import (
    InvalidSagaInput,
    SagaAlreadyStarted,
    SagaConflict,
    SagaNotFound,
)
from streamsource.sagas.tables import DeadlineTaken, SagaRows, create_statements, encode_state

log = logging.getLogger("streamsource.sagas")


def owner_of(service: str) -> str:
    """The owner name of a service's saga rows and deadlines."""
    return f"sagas.{service}"


class SagaEngine:
    """The sagas of ``service``: starts them, feeds them replies, fires their deadlines.

    ``clock`` gives the time deadlines are measured in (epoch seconds). ``poll_interval``
    bounds how long the deadline thread sleeps when nothing is due sooner.
    """

    def __init__(
        self,
        service: Service,
        sagas: Sequence[type[Saga]],
        *,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.2,
    ) -> None:
        self.service = service
        self.name = service.name
        self.owner = owner_of(service.name)
        self._sagas: dict[str, type[Saga]] = {}
        for saga in sagas:
            if saga.name in self._sagas:
                raise InvalidSagaInput(f"two sagas are named {saga.name!r}")
            self._sagas[saga.name] = saga
        self.clock = clock
        self.poll_interval = poll_interval
        database = require_database(service.store.recorder, "sagas")
        self.rows = SagaRows(database.dialect)
        ensure_tables(database, *create_statements(database.dialect))
        self._wake = threading.Event()
        self._next_look = 0.0  # when the deadline thread looks next (clock time)
        self._loop = _DeadlineLoop(self)
        for saga in sagas:
            service.handle_replies(self._on_reply, label=saga.name)

    # -- starting ---------------------------------------------------------------------------

    def start(
        self,
        saga: type[Saga],
        key: str,
        data: SagaData | None = None,
        *,
        ctx: Context | None = None,
    ) -> str:
        """Start ``saga`` for correlation ``key`` (its first command goes out when the
        transaction commits); the saga id. SagaAlreadyStarted if the key has one."""
        if ctx is None:
            with self.service.transaction() as own:
                return self.start(saga, key, data, ctx=own)
        self._definition(saga.name)
        existing = self.rows.find(ctx.tx, saga.name, key)
        if existing is not None:
            raise SagaAlreadyStarted(saga.name, key, existing.state.saga_id)
        if not isinstance(key, str) or not key or len(key) > 200:
            raise InvalidSagaInput(f"a saga key is a string of 1-200 characters, not {key!r:.60}")
        correlation = ctx.causation().correlation_id
        state = new_state(saga, str(new_event_id()), key, data or {}, correlation)
        encode_state(state)  # refuse data that is not JSON now, not when the row is written
        state, writes = self._step(ctx, saga, state, Start())

        def create(tx: Any) -> None:
            if not self.rows.create(tx, self.owner, state):
                other = self.rows.find(tx, saga.name, key)
                raise SagaAlreadyStarted(saga.name, key, other.state.saga_id if other else "?")
            writes(tx)

        ctx.write(create)
        return state.saga_id

    # -- reading ----------------------------------------------------------------------------

    def load(self, saga_id: str) -> SagaState:
        """A saga's current state; SagaNotFound if there is none."""
        with self.service.store.transaction() as tx:
            row = self.rows.load(tx, saga_id)
        if row is None:
            raise SagaNotFound(saga_id)
        return row.state

    def find(self, saga: type[Saga], key: str) -> SagaState | None:
        """The saga ``saga`` of correlation ``key``, if one was started."""
        with self.service.store.transaction() as tx:
            row = self.rows.find(tx, saga.name, key)
        return None if row is None else row.state

    # -- inputs -----------------------------------------------------------------------------

    def _on_reply(self, ctx: Context, message: Any) -> None:
        envelope = ctx.envelope
        assert envelope is not None
        if envelope.saga_id is None or envelope.causation_id is None:
            raise InvalidSagaInput(
                f"reply {envelope.message_id} ({envelope.name}) names no saga or command"
            )
        if isinstance(message, Failure):
            reply = Reply(
                envelope.causation_id,
                "failure" if message.refused else "fault",
                reason=message.reason,
            )
        else:
            payload = msgspec.to_builtins(message)
            reply = Reply(envelope.causation_id, "success", payload=dict(payload or {}))
        self._apply(ctx, envelope.saga_id, reply)

    def resume(self, saga_id: str) -> None:
        """Start a stuck saga's compensation again (InvalidSagaInput unless it is stuck)."""
        with self.service.transaction() as ctx:
            self._apply(ctx, saga_id, Resume())

    def abort(self, saga_id: str, reason: str = "aborted by an operator") -> None:
        """Give up a saga: a running one compensates, a stuck or compensating one stops."""
        with self.service.transaction() as ctx:
            self._apply(ctx, saga_id, Abort(reason))

    def _apply(
        self,
        ctx: Context,
        saga_id: str,
        event: Input,
        before: Callable[[Any], None] | None = None,
    ) -> SagaState:
        row = self.rows.load(ctx.tx, saga_id)
        if row is None:
            raise SagaNotFound(saga_id)
        saga = self._definition(row.state.name)
        state, writes = self._step(ctx, saga, row.state, event)

        def save(tx: Any) -> None:
            if before is not None:
                before(tx)
            self.rows.save(tx, state, row.version)
            writes(tx)

        ctx.write(save)
        return state

    def _definition(self, name: str) -> type[Saga]:
        saga = self._sagas.get(name)
        if saga is None:
            raise InvalidSagaInput(
                f"service {self.service.name} runs no saga named {name!r}"
                f" (it runs {sorted(self._sagas)})"
            )
        return saga

    def _step(
        self, ctx: Context, saga: type[Saga], state: SagaState, event: Input
    ) -> tuple[SagaState, Callable[[Any], None]]:
        """One transition and its effects, in a span (tracing on) within the handling of
        the message that caused it: the commands it sends carry the span's traceparent."""
        with tracing.span(
            "streamsource.saga.step",
            attributes={
                "streamsource.saga": saga.name,
                "streamsource.saga_id": state.saga_id,
                "streamsource.saga_input": type(event).__name__,
            },
        ) as span:
            new, effects = transition(saga, state, event, self.clock())
            if span is not None:
                span.set_attribute("streamsource.saga_status", new.status)
            return self._carry_out(ctx, saga, new, effects)

    def _carry_out(
        self, ctx: Context, saga: type[Saga], state: SagaState, effects: list[Effect]
    ) -> tuple[SagaState, Callable[[Any], None]]:
        """Send the commands now (the context appends them to the outbox); return the state
        with the sent commands' real message ids and the row writes for later."""
        ids: dict[str, str] = {}
        rows: list[Callable[[Any], None]] = []
        for effect in effects:
            if isinstance(effect, SendCommand):
                envelope = ctx.send(
                    effect.command.message,
                    to=effect.command.to,
                    reply_label=saga.name,
                    key=state.key,
                    saga_id=state.saga_id,
                    saga_name=saga.name,
                )
                ids[effect.command_id] = envelope.message_id
            elif isinstance(effect, ScheduleDeadline):
                rows.append(self._scheduler(effect, state.saga_id))
            elif isinstance(effect, CancelDeadline):
                rows.append(self._canceller(effect.deadline_id))
            else:
                log.info("saga %s %s: %s", saga.name, state.saga_id, effect)
        if ids:
            state = msgspec.structs.replace(state, sent=tuple(ids.get(c, c) for c in state.sent))

        def write(tx: Any) -> None:
            for row in rows:
                row(tx)

        return state, write

    def _scheduler(self, effect: ScheduleDeadline, saga_id: str) -> Callable[[Any], None]:
        def schedule(tx: Any) -> None:
            self.rows.schedule_deadline(tx, self.owner, effect.deadline_id, saga_id, effect.at)
            if effect.at < self._next_look:  # sooner than the thread would look: wake it
                self._wake.set()

        return schedule

    def _canceller(self, deadline_id: str) -> Callable[[Any], None]:
        return lambda tx: self.rows.cancel_deadline(tx, deadline_id)

    # -- deadlines --------------------------------------------------------------------------

    def fire_due(self, limit: int = 100) -> int:
        """Fire the deadlines due now (each in its own transaction); how many fired here."""
        now = self.clock()
        with self.service.store.transaction() as tx:
            due = self.rows.due_deadlines(tx, self.owner, now, limit)
        fired = 0
        for deadline_id, saga_id, request in due:
            try:
                with self.service.transaction() as ctx:
                    self._fire(ctx, deadline_id, saga_id, request)
                fired += 1
            except (DeadlineTaken, SagaConflict) as exc:
                log.debug("deadline %s: %s", deadline_id, exc)  # another process got there
            except InvalidSagaInput as exc:  # an operator's request that does not apply
                log.warning("saga %s: %s (request dropped)", saga_id, exc)
                with self.service.store.transaction() as tx:
                    self.rows.cancel_deadline(tx, deadline_id)
        return fired

    def _fire(self, ctx: Context, deadline_id: str, saga_id: str, request: str | None) -> None:
        def claim(tx: Any) -> None:
            self.rows.claim_deadline(tx, deadline_id)

        event: Input
        if request is None:
            event = DeadlineFired(deadline_id)
        else:
            event = _operator_request(request, saga_id)
        if self.rows.load(ctx.tx, saga_id) is None:
            ctx.write(claim)  # the saga is gone: just drop its deadline
            return
        self._apply(ctx, saga_id, event, before=claim)

    def next_due(self) -> float | None:
        """When this service's next deadline is due (epoch seconds), if it has any."""
        with self.service.store.transaction() as tx:
            return self.rows.next_due_at(tx, self.owner)

    def run(self, stop: threading.Event) -> None:
        """Fire deadlines until ``stop`` is set; faults that may pass are retried."""
        failures = 0
        while not stop.is_set():
            self._wake.clear()
            try:
                while self.fire_due():
                    pass
                upcoming = self.next_due()
                failures = 0
            except StreamsourceError as exc:
                if not exc.retriable:
                    raise
                failures += 1
                delay = self.service.backoff.delay(failures)
                log.warning("sagas of %s: %s; retrying in %.2fs", self.name, exc, delay)
                stop.wait(delay)
                continue
            wait = self.poll_interval
            if upcoming is not None:
                wait = max(0.0, min(wait, upcoming - self.clock()))
            self._next_look = self.clock() + wait
            self._wake.wait(wait)
            self._next_look = 0.0

    def __enter__(self) -> SagaEngine:
        self._loop.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.stop()


def _operator_request(request: str, saga_id: str) -> Input:
    """The input an operator's request row asks for; InvalidSagaInput if it is malformed."""
    try:
        asked = json.loads(request)
        op, reason = asked["op"], asked.get("reason") or "aborted by an operator"
    except (ValueError, TypeError, KeyError):
        raise InvalidSagaInput(
            f"saga {saga_id}: unreadable operator request {request!r:.80}"
        ) from None
    if op == "resume":
        return Resume()
    if op == "abort":
        return Abort(str(reason))
    raise InvalidSagaInput(f"saga {saga_id}: unknown operator request {op!r:.40}")


class _DeadlineLoop(BackgroundLoop):
    """The engine's deadline thread (``with engine:``); its error re-raised on exit."""

    thread_kind = "sagas"

    def __init__(self, engine: SagaEngine) -> None:
        super().__init__()
        self.engine = engine
        self.name = engine.name

    def run(self, stop: threading.Event | None = None) -> None:
        self.engine.run(stop or self._stop)
