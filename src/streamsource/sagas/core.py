"""The saga state machine, without I/O: ``transition(saga, state, input, now)`` returns the
new state and the effects to carry out.

The engine (``engine.py``) loads the state, calls :func:`transition` and, in one
transaction, saves the new state, sends the commands, schedules and cancels deadlines.
Nothing here reads a clock, sleeps or touches a database, so every path (a reply lost, a
deadline racing a reply, a compensation failing five times) is tested by feeding inputs.

Why a saga moves the way it does:

* A **business failure** reply means the participant refused and did nothing: the saga
  compensates the steps before it, newest first.
* A **retriable fault** reply means the participant could not act now and did nothing: the
  action is sent again after a backoff, up to the step's ``attempts``; then it counts as
  failed. Faults are never turned into business failures before that.
* A **timeout** means the saga does not know whether the participant acted: under
  ``retry`` it sends again (participants are idempotent per saga and step); under
  ``compensate``, or when attempts run out, it compensates *including* that step.
* A compensation that fails (any reply but success, or no reply in time) is sent again
  after a backoff up to ``compensation_attempts`` times; then the saga is **stuck**, with
  the reason, until an operator resumes (compensation starts again at that step) or
  aborts it (the saga gives up and stays as it is).
* Replies and deadlines are matched by id: a reply to an earlier attempt of the current
  step still counts, and anything older (a reply to a step already left, a deadline
  already cancelled) is recorded in the history and otherwise ignored.

Every decision appends a line to the state's ``history``: how it ended says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

import msgspec

from streamsource.sagas.definition import Saga, SagaCommand, Step
from streamsource.sagas.errors import InvalidSagaInput

Status = Literal["new", "running", "compensating", "completed", "compensated", "stuck", "aborted"]
FINISHED: frozenset[str] = frozenset({"completed", "compensated", "aborted"})
MAX_HISTORY = 500  # entries kept: stray replies must not grow a saga's row without bound


class HistoryEntry(msgspec.Struct, frozen=True):
    """One decision of the saga: when, about which step, what happened and why."""

    at: float
    event: str
    step: str | None = None
    detail: str = ""


class SagaState(msgspec.Struct, frozen=True):
    """Everything the state machine knows about one saga (persisted as JSON)."""

    saga_id: str
    name: str
    key: str
    status: Status
    data: dict[str, Any]
    step: int = 0  # the step being done (running) or undone (compensating)
    attempt: int = 0  # sends of the current step's command so far
    sent: tuple[str, ...] = ()  # ids of those sends: a reply to any of them counts
    deadline: str | None = None  # the one pending deadline (timeout or retry)
    deadline_kind: Literal["timeout", "retry"] | None = None
    seq: int = 0  # counter behind command and deadline ids
    reason: str | None = None  # why it compensates, or is stuck
    cause: str | None = None  # why it compensates (kept while it is stuck)
    correlation_id: str | None = None  # of the conversation that started it
    history: tuple[HistoryEntry, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


# -- inputs ---------------------------------------------------------------------------------


class Start(msgspec.Struct, frozen=True):
    """Begin with the first step."""


class Reply(msgspec.Struct, frozen=True):
    """A participant's reply to command ``command_id``."""

    command_id: str
    outcome: Literal["success", "failure", "fault"]
    payload: dict[str, Any] = {}
    reason: str = ""


class DeadlineFired(msgspec.Struct, frozen=True):
    """A scheduled deadline came due."""

    deadline_id: str


class CompensationFailed(msgspec.Struct, frozen=True):
    """The compensation ``command_id`` could not be carried out (reported by the sender)."""

    command_id: str
    reason: str


class Resume(msgspec.Struct, frozen=True):
    """An operator restarts the compensation of a stuck saga."""


class Abort(msgspec.Struct, frozen=True):
    """An operator (or the app) gives up: a running saga compensates, a stuck one stays."""

    reason: str = "aborted by an operator"


Input: TypeAlias = Start | Reply | DeadlineFired | CompensationFailed | Resume | Abort


# -- effects --------------------------------------------------------------------------------


class SendCommand(msgspec.Struct, frozen=True):
    """Send ``command`` (through the outbox, in the transaction saving the state)."""

    command_id: str
    step: str
    compensation: bool
    attempt: int
    command: SagaCommand


class ScheduleDeadline(msgspec.Struct, frozen=True):
    deadline_id: str
    at: float
    kind: Literal["timeout", "retry"]


class CancelDeadline(msgspec.Struct, frozen=True):
    deadline_id: str


class Completed(msgspec.Struct, frozen=True):
    pass


class Compensated(msgspec.Struct, frozen=True):
    reason: str


class Stuck(msgspec.Struct, frozen=True):
    reason: str


class Aborted(msgspec.Struct, frozen=True):
    reason: str


Effect: TypeAlias = (
    SendCommand | ScheduleDeadline | CancelDeadline | Completed | Compensated | Stuck | Aborted
)


def new_state(
    saga: type[Saga],
    saga_id: str,
    key: str,
    data: Mapping[str, Any],
    correlation_id: str | None = None,
) -> SagaState:
    """The state of a saga not yet started (feed it :class:`Start`)."""
    return SagaState(
        saga_id=saga_id,
        name=saga.name,
        key=key,
        status="new",
        data=dict(data),
        correlation_id=correlation_id,
    )


def transition(
    saga: type[Saga], state: SagaState, event: Input, now: float
) -> tuple[SagaState, list[Effect]]:
    """The state after ``event`` at time ``now`` (seconds), and what to do about it."""
    if state.name != saga.name:
        raise InvalidSagaInput(f"state of saga {state.name!r} given to saga {saga.name!r}")
    move = _Move(saga, state, now)
    if isinstance(event, Start):
        move.start()
    elif isinstance(event, Reply):
        move.reply(event)
    elif isinstance(event, DeadlineFired):
        move.deadline(event.deadline_id)
    elif isinstance(event, CompensationFailed):
        move.compensation_failed(event.command_id, event.reason)
    elif isinstance(event, Resume):
        move.resume()
    elif isinstance(event, Abort):
        move.abort(event.reason)
    else:  # pragma: no cover - the type says it cannot happen
        raise InvalidSagaInput(f"not a saga input: {event!r}")
    return move.state, move.effects


class _Move:
    """One transition in progress: the state so far and the effects gathered."""

    def __init__(self, saga: type[Saga], state: SagaState, now: float) -> None:
        self.saga, self.state, self.now = saga, state, now
        self.effects: list[Effect] = []

    # -- helpers --------------------------------------------------------------------------

    def set(self, **changes: Any) -> None:
        self.state = msgspec.structs.replace(self.state, **changes)

    def note(self, event: str, detail: str = "", step: int | None = None) -> None:
        index = self.state.step if step is None else step
        name = self.saga.steps[index].name if 0 <= index < len(self.saga.steps) else None
        entry = HistoryEntry(at=self.now, event=event, step=name, detail=detail)
        history = (*self.state.history, entry)
        if len(history) > MAX_HISTORY:  # keep how it started and the latest decisions
            history = (history[0], *history[-(MAX_HISTORY - 1) :])
        self.set(history=history)

    def next_id(self, prefix: str) -> str:
        self.set(seq=self.state.seq + 1)
        return f"{self.state.saga_id}/{prefix}{self.state.seq}"

    @property
    def current(self) -> Step:
        return self.saga.steps[self.state.step]

    @property
    def compensating(self) -> bool:
        return self.state.status == "compensating"

    def cancel_deadline(self) -> None:
        if self.state.deadline is not None:
            self.effects.append(CancelDeadline(self.state.deadline))
            self.set(deadline=None, deadline_kind=None)

    def schedule(self, kind: Literal["timeout", "retry"], delay: float) -> None:
        self.cancel_deadline()
        deadline_id = self.next_id("d")
        self.effects.append(ScheduleDeadline(deadline_id, self.now + delay, kind))
        self.set(deadline=deadline_id, deadline_kind=kind)

    def send(self) -> None:
        """Send the current step's action (or compensation) once more."""
        step = self.current
        maker = step.compensation if self.compensating else step.action
        assert maker is not None  # compensate_from skips steps without one
        command = maker(dict(self.state.data))
        command_id = self.next_id("c")
        attempt = self.state.attempt + 1
        self.set(attempt=attempt, sent=(*self.state.sent, command_id))
        self.effects.append(SendCommand(command_id, step.name, self.compensating, attempt, command))
        what = "compensation sent" if self.compensating else "command sent"
        self.note(what, f"{_name(command.message)} to {command.to} (attempt {attempt})")
        if step.timeout is not None:
            self.schedule("timeout", step.timeout)
        else:
            self.cancel_deadline()

    def begin_step(self, index: int) -> None:
        self.set(step=index, attempt=0, sent=())
        self.send()

    def compensate_from(self, index: int, reason: str) -> None:
        """Undo steps ``index``, ``index - 1``, ... 0 (those with a compensation)."""
        self.cancel_deadline()
        if self.state.status != "compensating":
            self.set(status="compensating", reason=reason, cause=reason)
            self.note("compensating", reason, step=index)
        while index >= 0 and self.saga.steps[index].compensation is None:
            index -= 1
        if index < 0:
            cause = self.state.cause or reason
            self.set(status="compensated", step=0, attempt=0, sent=(), reason=cause)
            self.note("compensated", cause, step=-1)
            self.effects.append(Compensated(cause))
            return
        self.begin_step(index)

    def retry_later(self, why: str) -> None:
        delay = self.saga.backoff.bound(self.state.attempt - 1)
        self.note("retry scheduled", f"{why}; again in {delay:g}s")
        self.schedule("retry", delay)

    def compensation_went_wrong(self, why: str) -> None:
        if self.state.attempt < self.saga.compensation_attempts:
            self.retry_later(f"compensation failed: {why}")
            return
        self.cancel_deadline()
        reason = (
            f"compensation of step {self.current.name!r} failed"
            f" {self.state.attempt} times, last: {why}"
        )
        self.set(status="stuck", reason=reason)
        self.note("stuck", reason)
        self.effects.append(Stuck(reason))

    def ignore(self, what: str) -> None:
        self.note("ignored", what, step=-1)

    # -- inputs ---------------------------------------------------------------------------

    def start(self) -> None:
        if self.state.status != "new":
            raise InvalidSagaInput(f"saga {self.state.saga_id} is already {self.state.status}")
        self.set(status="running")
        self.note("started", f"key {self.state.key}", step=-1)
        self.begin_step(0)

    def reply(self, reply: Reply) -> None:
        state = self.state
        if (
            state.status == "stuck"
            and reply.outcome == "success"
            and reply.command_id in state.sent
        ):
            # a compensation that timed out did act after all: carry on from there
            self.set(status="compensating", reason=state.cause)
            self.note("compensation done", "its reply came after the saga was parked")
            self.compensate_from(state.step - 1, state.cause or "")
            return
        if state.status not in ("running", "compensating") or reply.command_id not in state.sent:
            self.ignore(f"{reply.outcome} reply to {reply.command_id} (no longer awaited)")
            return
        if self.compensating:
            if reply.outcome == "success":
                self.cancel_deadline()
                self.note("compensation done")
                self.compensate_from(state.step - 1, state.reason or "")
            else:
                self.compensation_went_wrong(f"{reply.outcome}: {reply.reason}")
            return
        step = self.current
        if reply.outcome == "success":
            self.cancel_deadline()
            data = dict(state.data)
            if step.on_reply is not None:
                changed = step.on_reply(data, reply.payload)
                data = data if changed is None else dict(changed)
            self.set(data=data)
            self.note("step done")
            if state.step + 1 == len(self.saga.steps):
                self.set(status="completed", attempt=0, sent=())
                self.note("completed", step=-1)
                self.effects.append(Completed())
            else:
                self.begin_step(state.step + 1)
        elif reply.outcome == "failure":
            self.note("step refused", reply.reason)
            self.compensate_from(
                state.step - 1, f"step {step.name!r} refused: {reply.reason or 'no reason'}"
            )
        elif state.attempt < step.attempts:
            self.retry_later(f"fault: {reply.reason}")
        else:
            self.note("step failed", reply.reason)
            self.compensate_from(
                state.step - 1,
                f"step {step.name!r} faulted {state.attempt} times, last: {reply.reason}",
            )

    def deadline(self, deadline_id: str) -> None:
        state = self.state
        if deadline_id != state.deadline or state.status not in ("running", "compensating"):
            self.ignore(f"deadline {deadline_id} (cancelled before it fired)")
            return
        kind = state.deadline_kind
        self.set(deadline=None, deadline_kind=None)
        step = self.current
        if kind == "retry":
            self.send()
        elif self.compensating:
            self.compensation_went_wrong(f"no reply within {step.timeout:g}s")
        elif step.on_timeout == "retry" and state.attempt < step.attempts:
            self.note("timed out", f"no reply within {step.timeout:g}s; sending again")
            self.send()
        else:
            self.note("timed out", f"no reply within {step.timeout:g}s")
            self.compensate_from(
                state.step,  # it may have acted: undo it too
                f"step {step.name!r} got no reply within {step.timeout:g}s"
                f" ({state.attempt} attempts)",
            )

    def compensation_failed(self, command_id: str, reason: str) -> None:
        if not self.compensating or command_id not in self.state.sent:
            self.ignore(f"compensation failure of {command_id} (no longer awaited)")
            return
        self.compensation_went_wrong(reason)

    def resume(self) -> None:
        if self.state.status != "stuck":
            raise InvalidSagaInput(
                f"saga {self.state.saga_id} is {self.state.status}: only a stuck saga resumes"
            )
        self.set(status="compensating", reason=self.state.cause)
        self.note("resumed", "compensation starts again")
        self.begin_step(self.state.step)

    def abort(self, reason: str) -> None:
        status = self.state.status
        if status == "running":
            self.note("abort requested", reason)
            self.compensate_from(self.state.step, reason)  # the current step may have acted
            return
        if status not in ("compensating", "stuck"):
            raise InvalidSagaInput(f"saga {self.state.saga_id} is {status}: nothing to abort")
        self.cancel_deadline()
        self.set(status="aborted", reason=reason)
        self.note("aborted", f"{reason}; left as it was, compensation not finished")
        self.effects.append(Aborted(reason))


def _name(message: Any) -> str:
    return type(message).__name__
