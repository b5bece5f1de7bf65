"""The create-order saga, event-sourced: one stream per order (``createordersaga-<orderId>``).

The saga is declared as ordered steps, each with an action (a command to a service) and an
optional compensation. Going forward, each success runs the next action; a failure turns
the saga around and runs the compensations of the steps before, newest first. A step that
gets no reply by its deadline is sent again once, then treated as failed (its own
compensation runs too, since it may have taken effect); a compensation that fails or times
out is sent again up to ``COMPENSATION_ATTEMPTS`` times and then parks the saga as stuck with
the reason. The commands are the saga's own events (with routing metadata), so the command
and the saga state that sent it commit together; a reply or a timeout that is not for the
command awaited now is ignored (``awaiting`` holds its id).

Event-sourced rather than a state table: the history the API shows is the stream itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

import streamsource as ss

from ..platform.messaging import route

events = ss.EventRegistry()
NAME = "CreateOrderSaga"
COMPENSATION_ATTEMPTS = 3
FORWARD_ATTEMPTS = 2


class Command(msgspec.Struct, frozen=True, kw_only=True):
    """What every command carries; participants read their fields and ignore the saga's."""

    orderId: str
    commandId: str
    step: int  # the saga's position, restored from the stream on load
    direction: str
    attempt: int


@events.event("RejectOrder")
class RejectOrder(Command, frozen=True):
    pass


@events.event("AuthorizeCustomer")
class AuthorizeCustomer(Command, frozen=True):
    customerId: str


@events.event("CreateShoppingList")
class CreateShoppingList(Command, frozen=True):
    items: list[dict[str, Any]]


@events.event("CancelShoppingList")
class CancelShoppingList(Command, frozen=True):
    shoppingId: str | None


@events.event("ConfirmPayment")
class ConfirmPayment(Command, frozen=True):
    paymentId: str
    customerId: str
    amount: int


@events.event("InitiateShopping")
class InitiateShopping(Command, frozen=True):
    shoppingId: str


@events.event("ApproveOrder")
class ApproveOrder(Command, frozen=True):
    shoppingId: str


@events.event("CreateOrderSagaStarted")
class SagaStarted(msgspec.Struct, frozen=True):
    customerId: str
    paymentId: str
    items: list[dict[str, Any]]
    total: int


@events.event("CreateOrderSagaReplied")
class SagaReplied(msgspec.Struct, frozen=True):
    commandId: str
    command: str
    outcome: str
    reason: str | None
    data: dict[str, Any]


@events.event("CreateOrderSagaStepTimedOut")
class SagaStepTimedOut(msgspec.Struct, frozen=True):
    commandId: str
    command: str


@events.event("CreateOrderSagaEnded")
class SagaEnded(msgspec.Struct, frozen=True):
    status: str  # completed, compensated or stuck
    reason: str | None


@dataclass(frozen=True)
class Step:
    name: str
    action: tuple[str, str] | None  # (service, command)
    compensation: tuple[str, str] | None = None


STEPS = (
    Step("RejectOrder", None, ("ordering", "RejectOrder")),
    Step("AuthorizeCustomer", ("customers", "AuthorizeCustomer")),
    Step("CreateShoppingList", ("depot", "CreateShoppingList"), ("depot", "CancelShoppingList")),
    Step("ConfirmPayment", ("payments", "ConfirmPayment")),
    Step("InitiateShopping", ("depot", "InitiateShopping")),
    Step("ApproveOrder", ("ordering", "ApproveOrder")),
)
FORWARD, COMPENSATING = "forward", "compensating"
RUNNING, COMPLETED, COMPENSATED, STUCK = "running", "completed", "compensated", "stuck"


class CreateOrderSaga(ss.Aggregate):
    registry = events
    category = "createordersaga"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.customer_id = ""
        self.payment_id = ""
        self.items: list[dict[str, Any]] = []
        self.total = 0
        self.shopping_id: str | None = None
        self.step = 0
        self.direction = FORWARD
        self.awaiting: str | None = None  # id of the command awaiting its reply
        self.attempts = 0  # sends of the awaited command
        self.status = RUNNING
        self.reason: str | None = None

    # -- decisions ----------------------------------------------------------------------------

    def start(
        self, customer_id: str, payment_id: str, items: list[dict[str, Any]], total: int
    ) -> None:
        self.record(SagaStarted(customer_id, payment_id, items, total))
        self._forward_from(0)

    def on_reply(self, reply: dict[str, Any]) -> None:
        if self.status != RUNNING or reply.get("commandId") != self.awaiting:
            return  # late, duplicate or for a command sent before a timeout
        failed = reply.get("outcome") != "success"
        self.record(
            SagaReplied(
                str(reply["commandId"]),
                str(reply["command"]),
                "failure" if failed else "success",
                reply.get("reason"),
                dict(reply.get("data") or {}),
            )
        )
        if self.direction == FORWARD:
            if failed:
                self._compensate_from(self.step - 1)
            else:
                self._forward_from(self.step + 1)
        elif failed:
            self._retry_compensation(f"{reply['command']} failed: {reply.get('reason')}")
        else:
            self._compensate_from(self.step - 1)

    def on_timeout(self) -> None:
        if self.status != RUNNING or self.awaiting is None:
            return
        name = self._awaited_command()
        self.record(SagaStepTimedOut(self.awaiting, name))
        if self.direction == COMPENSATING:
            self._retry_compensation(f"{name} got no reply")
        elif self.attempts < FORWARD_ATTEMPTS:
            self._send(self.step, FORWARD, self.attempts + 1)
        else:  # it may have taken effect: undo this step too
            self._compensate_from(self.step)

    # -- the walk over the steps ---------------------------------------------------------------

    def _forward_from(self, index: int) -> None:
        for i in range(index, len(STEPS)):
            if STEPS[i].action is not None:
                self._send(i, FORWARD, 1)
                return
        self.record(SagaEnded(COMPLETED, None))

    def _compensate_from(self, index: int) -> None:
        for i in range(index, -1, -1):
            if STEPS[i].compensation is not None:
                self._send(i, COMPENSATING, 1)
                return
        self.record(SagaEnded(COMPENSATED, None))

    def _retry_compensation(self, reason: str) -> None:
        if self.attempts < COMPENSATION_ATTEMPTS:
            self._send(self.step, COMPENSATING, self.attempts + 1)
        else:
            self.record(SagaEnded(STUCK, f"{reason} after {self.attempts} attempts"))

    def _send(self, index: int, direction: str, attempt: int) -> None:
        step = STEPS[index]
        target = step.action if direction == FORWARD else step.compensation
        assert target is not None
        service, name = target
        command_id = str(uuid.uuid4())
        position = {
            "orderId": self.id,
            "commandId": command_id,
            "step": index,
            "direction": direction,
            "attempt": attempt,
        }
        metadata = route(to=service, reply_to="cosec", saga_id=self.id, command_id=command_id)
        self.record(self._command(name, position), metadata=metadata)

    def _command(self, name: str, p: dict[str, Any]) -> Command:
        match name:
            case "RejectOrder":
                return RejectOrder(**p)
            case "AuthorizeCustomer":
                return AuthorizeCustomer(**p, customerId=self.customer_id)
            case "CreateShoppingList":
                return CreateShoppingList(**p, items=self.items)
            case "CancelShoppingList":
                return CancelShoppingList(**p, shoppingId=self.shopping_id)
            case "ConfirmPayment":
                return ConfirmPayment(
                    **p, paymentId=self.payment_id, customerId=self.customer_id, amount=self.total
                )
            case "InitiateShopping":
                return InitiateShopping(**p, shoppingId=self.shopping_id or "")
            case "ApproveOrder":
                return ApproveOrder(**p, shoppingId=self.shopping_id or "")
        raise ss.ProgrammingError(f"the saga has no command {name}")

    def _awaited_command(self) -> str:
        step = STEPS[self.step]
        target = step.action if self.direction == FORWARD else step.compensation
        return target[1] if target else step.name

    # -- state ---------------------------------------------------------------------------------

    @ss.applies(SagaStarted)
    def _started(self, event: SagaStarted) -> None:
        self.customer_id, self.payment_id = event.customerId, event.paymentId
        self.items, self.total = event.items, event.total

    @ss.applies(
        RejectOrder,
        AuthorizeCustomer,
        CreateShoppingList,
        CancelShoppingList,
        ConfirmPayment,
        InitiateShopping,
        ApproveOrder,
    )
    def _sent(self, event: Command) -> None:
        self.step, self.direction = event.step, event.direction
        self.awaiting, self.attempts = event.commandId, event.attempt

    @ss.applies(SagaReplied)
    def _replied(self, event: SagaReplied) -> None:
        self.awaiting = None
        if event.outcome == "success" and "shoppingId" in event.data:
            self.shopping_id = str(event.data["shoppingId"])

    @ss.applies(SagaStepTimedOut)
    def _timed_out(self, event: SagaStepTimedOut) -> None:
        self.awaiting = None

    @ss.applies(SagaEnded)
    def _ended(self, event: SagaEnded) -> None:
        self.status, self.reason, self.awaiting = event.status, event.reason, None
