"""Saga definitions shared by the saga tests."""

from __future__ import annotations

from typing import Any

import msgspec

from streamsource.sagas import Saga, SagaCommand, Step


class Cmd(msgspec.Struct, frozen=True):
    """A stand-in command message: the state machine never looks inside."""

    name: str
    order: str


def _cmd(service: str, name: str) -> Any:
    return lambda data: SagaCommand(service, Cmd(name, data["order"]))


class OrderSaga(Saga):
    """Three steps: reserve stock (compensable), charge (compensable), confirm (final)."""

    name = "order"
    steps = (
        Step("reserve", _cmd("stock", "Reserve"), _cmd("stock", "Release"), timeout=5.0),
        Step(
            "charge",
            _cmd("payment", "Charge"),
            _cmd("payment", "Refund"),
            on_reply=lambda data, reply: {**data, "payment": reply["payment"]},
            timeout=5.0,
            on_timeout="retry",
            attempts=2,
        ),
        Step("confirm", _cmd("ordering", "Confirm")),
    )
    compensation_attempts = 2


def five_step_saga(on_timeout: Any = "compensate") -> type[Saga]:
    """Five participants p0..p4, each step compensable, 5 s timeouts."""

    class FiveSteps(Saga):
        name = "five"
        steps = tuple(
            Step(
                f"s{i}",
                _cmd(f"p{i}", "Do"),
                _cmd(f"p{i}", "Undo"),
                timeout=5.0,
                on_timeout=on_timeout,
                attempts=3,
            )
            for i in range(5)
        )
        compensation_attempts = 5

    return FiveSteps
