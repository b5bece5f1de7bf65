"""How a saga is declared: a class with ordered steps, each a command, its compensation and
what a success reply does to the saga's data.

::

    class CreateOrder(Saga):
        name = "create-order"
        steps = (
            Step("reserve", action=lambda d: SagaCommand("inventory", Reserve(d["id"])),
                 compensation=lambda d: SagaCommand("inventory", Release(d["id"])),
                 timeout=5.0, on_timeout="retry"),
            Step("pay", action=lambda d: SagaCommand("payment", Charge(d["id"])),
                 on_reply=lambda d, reply: {**d, "payment": reply["payment_id"]}),
        )

Actions and compensations must be pure functions of the saga's data: the engine calls them
again when it retries a step, and the participant gets the same command (with a fresh id
but the same saga id and step), so a participant makes its handler idempotent per
``(saga_id, step)``. A step's compensation must be harmless when its action never took
effect: after a timeout the saga cannot know whether the participant acted, so it
compensates that step too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from streamsource.bridge.backoff import Backoff
from streamsource.sagas.errors import InvalidSagaInput

SagaData = dict[str, Any]
"""A saga's working data: a JSON object, persisted with its state."""


@dataclass(frozen=True, slots=True)
class SagaCommand:
    """A command a step sends: ``message`` (a :class:`streamsource.messaging.Command`) to
    the service named ``to``."""

    to: str
    message: Any


TimeoutPolicy = Literal["retry", "compensate"]


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a saga.

    ``attempts`` bounds how often the action is sent: a retriable fault reply, or a timeout
    under ``on_timeout="retry"``, sends it again until then; after that the saga
    compensates. ``timeout`` (seconds, None: wait forever) applies to the action and to
    the compensation alike.
    """

    name: str
    action: Callable[[SagaData], SagaCommand]
    compensation: Callable[[SagaData], SagaCommand] | None = None
    on_reply: Callable[[SagaData, Mapping[str, Any]], SagaData | None] | None = None
    timeout: float | None = None
    on_timeout: TimeoutPolicy = "compensate"
    attempts: int = 3

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise InvalidSagaInput(f"step {self.name!r}: attempts must be at least 1")
        if self.timeout is not None and not self.timeout > 0:
            raise InvalidSagaInput(f"step {self.name!r}: timeout must be positive seconds")
        if self.on_timeout not in ("retry", "compensate"):
            raise InvalidSagaInput(
                f"step {self.name!r}: on_timeout must be 'retry' or 'compensate',"
                f" not {self.on_timeout!r}"
            )


class Saga:
    """Base class of a declared saga: set ``name`` and ``steps`` (and optionally the rest)."""

    name: ClassVar[str]
    steps: ClassVar[Sequence[Step]]
    compensation_attempts: ClassVar[int] = 5
    """Sends of one compensation before the saga is parked as stuck."""
    backoff: ClassVar[Backoff] = Backoff(base=0.5, cap=30.0)
    """The wait before sending a command again after a fault reply."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not isinstance(cls.__dict__.get("name", ""), str):
            raise InvalidSagaInput(f"saga {cls.__qualname__}: name must be a string")
        steps = getattr(cls, "steps", None)
        if steps is None:
            return  # an abstract intermediate class
        if not steps:
            raise InvalidSagaInput(f"saga {cls.__qualname__}: needs at least one step")
        names = [step.name for step in steps]
        if len(set(names)) != len(names):
            raise InvalidSagaInput(f"saga {cls.__qualname__}: step names repeat: {names}")
        if cls.compensation_attempts < 1:
            raise InvalidSagaInput(f"saga {cls.__qualname__}: compensation_attempts < 1")
