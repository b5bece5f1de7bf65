"""Orders: created from a checked-out basket (the order id is the basket id), approved or
rejected by the create-order saga, readied by the depot, completed when its invoice is paid."""

from __future__ import annotations

from typing import Any

import msgspec

import streamsource as ss

from ..platform.http import Refused

events = ss.EventRegistry()


@events.event("OrderCreated")
class OrderCreated(msgspec.Struct, frozen=True):
    customerId: str
    paymentId: str
    items: list[dict[str, Any]]
    total: int


@events.event("OrderRejected")
class OrderRejected(msgspec.Struct, frozen=True):
    customerId: str


@events.event("OrderApproved")
class OrderApproved(msgspec.Struct, frozen=True):
    customerId: str
    shoppingId: str


@events.event("OrderCanceled")
class OrderCanceled(msgspec.Struct, frozen=True):
    customerId: str
    paymentId: str


@events.event("OrderReadied")
class OrderReadied(msgspec.Struct, frozen=True):
    customerId: str
    paymentId: str
    total: int


@events.event("OrderCompleted")
class OrderCompleted(msgspec.Struct, frozen=True):
    customerId: str
    invoiceId: str


PENDING, APPROVED, READY, COMPLETED = "pending", "approved", "ready", "completed"
REJECTED, CANCELLED = "rejected", "cancelled"


class Order(ss.Aggregate):
    registry = events
    category = "order"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.customer_id = ""
        self.payment_id = ""
        self.shopping_id = ""
        self.items: list[dict[str, Any]] = []
        self.total = 0
        self.status = PENDING

    def create(self, customer_id: str, payment_id: str, items: list[dict[str, Any]]) -> None:
        total = sum(int(i["price"]) * int(i["quantity"]) for i in items)
        self.record(
            OrderCreated(customerId=customer_id, paymentId=payment_id, items=items, total=total)
        )

    def reject(self) -> None:
        if self.status in (REJECTED, CANCELLED):
            return  # a compensation: already undone is fine
        self._require(PENDING, "reject")
        self.record(OrderRejected(customerId=self.customer_id))

    def approve(self, shopping_id: str) -> None:
        self._require(PENDING, "approve")
        self.record(OrderApproved(customerId=self.customer_id, shoppingId=shopping_id))

    def cancel(self) -> None:
        if self.status not in (PENDING, APPROVED):
            raise Refused(f"order {self.id} is {self.status}: it can no longer be cancelled")
        self.record(OrderCanceled(customerId=self.customer_id, paymentId=self.payment_id))

    def ready(self) -> None:
        self._require(APPROVED, "ready")
        self.record(
            OrderReadied(customerId=self.customer_id, paymentId=self.payment_id, total=self.total)
        )

    def complete(self, invoice_id: str) -> None:
        self._require(READY, "complete")
        self.record(OrderCompleted(customerId=self.customer_id, invoiceId=invoice_id))

    def _require(self, status: str, action: str) -> None:
        if self.status != status:
            raise Refused(f"order {self.id} is {self.status}: cannot {action} it")

    @ss.applies(OrderCreated)
    def _created(self, event: OrderCreated) -> None:
        self.customer_id, self.payment_id = event.customerId, event.paymentId
        self.items, self.total = event.items, event.total

    @ss.applies(OrderRejected)
    def _rejected(self, event: OrderRejected) -> None:
        self.status = REJECTED

    @ss.applies(OrderApproved)
    def _approved(self, event: OrderApproved) -> None:
        self.status, self.shopping_id = APPROVED, event.shoppingId

    @ss.applies(OrderCanceled)
    def _canceled(self, event: OrderCanceled) -> None:
        self.status = CANCELLED

    @ss.applies(OrderReadied)
    def _readied(self, event: OrderReadied) -> None:
        self.status = READY

    @ss.applies(OrderCompleted)
    def _completed(self, event: OrderCompleted) -> None:
        self.status = COMPLETED
