"""Running the create-order saga on the toolkit's engine, and how the API shows one."""

from __future__ import annotations

from typing import Any

from streamsource.messaging import Context
from streamsource.sagas import Saga, SagaAlreadyStarted, SagaEngine, SagaState

from ..ordering.messages import OrderCreated
from ..platform.http import NotFound
from ..platform.storage import ServiceStore
from .domain import create_order_saga

# the four statuses; the engine's finer ones map onto them
STATUS = {
    "new": "running",
    "running": "running",
    "compensating": "running",
    "completed": "completed",
    "compensated": "compensated",
    "stuck": "stuck",
    "aborted": "stuck",
}


class Sagas:
    def __init__(self, own: ServiceStore, step_timeout: float) -> None:
        self.own = own
        self.saga: type[Saga] = create_order_saga(step_timeout)
        self.engine = SagaEngine(own.messages, [self.saga])

    def start(self, ctx: Context, event: OrderCreated) -> None:
        data = {
            "orderId": event.order_id,
            "customerId": event.customer_id,
            "paymentId": event.payment_id,
            "items": event.items,
            "total": event.total,
        }
        try:
            self.engine.start(self.saga, key=event.order_id, data=data, ctx=ctx)
        except SagaAlreadyStarted:
            pass  # one saga per order, whatever comes again

    def view(self, order_id: str) -> dict[str, Any]:
        state = self.engine.find(self.saga, order_id)
        if state is None:
            raise NotFound(f"no saga for order {order_id}")
        return view(self.saga, state)


def view(saga: type[Saga], state: SagaState) -> dict[str, Any]:
    history = []
    for entry in state.history:
        line: dict[str, Any] = {
            "at": entry.at,
            "event": entry.event,
            "step": entry.step,
            "detail": entry.detail,
        }
        if entry.event in ("command sent", "compensation sent"):
            line["command"] = entry.detail.split(" ", 1)[0]
        history.append(line)
    return {
        "id": state.key,
        "name": state.name,
        "step": saga.steps[state.step].name,
        "status": STATUS[state.status],
        "engineStatus": state.status,
        "reason": state.reason,
        "data": state.data,
        "history": history,
    }
