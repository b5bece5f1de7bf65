"""The create-order saga, declared on :mod:`streamsource.sagas` (one per order, keyed by the
order id), with the original's steps:

1. CheckOrderPending (ordering), compensated by RejectOrder: the original's step 0, which
   only compensates (our engine needs an action; this one refuses an order cancelled before
   the saga began);
2. AuthorizeCustomer (customers): a disabled customer is refused;
3. CreateShoppingList (depot), compensated by CancelShoppingList; the reply's shopping list
   id is kept in the saga's data;
4. ConfirmPayment (payments): refused when the authorized amount is below the total;
5. InitiateShopping (depot): the list becomes available to bots;
6. ApproveOrder (ordering).

Every step waits ``timeout`` seconds for its reply; then it is sent again (participants are
idempotent: the shopping list's id derives from the order's), and after ``attempts`` sends
the saga compensates, that step included.
"""

from __future__ import annotations

from typing import Any

from streamsource.sagas import Saga, SagaCommand, SagaData, Step

from ..customers.messages import AuthorizeCustomer
from ..depot.messages import CancelShoppingList, CreateShoppingList, InitiateShopping
from ..ordering.messages import ApproveOrder, CheckOrderPending, RejectOrder
from ..payments.messages import ConfirmPayment

NAME = "CreateOrderSaga"


def _shopping(data: SagaData, reply: Any) -> SagaData:
    return {**data, "shoppingId": reply["shoppingId"]}


def create_order_saga(timeout: float) -> type[Saga]:
    """The saga class, with ``timeout`` seconds per step."""

    def step(name: str, **kwargs: Any) -> Step:
        return Step(name, timeout=timeout, on_timeout="retry", attempts=2, **kwargs)

    class CreateOrderSaga(Saga):
        name = NAME
        steps = (
            step(
                "CheckOrderPending",
                action=lambda d: SagaCommand("ordering", CheckOrderPending(d["orderId"])),
                compensation=lambda d: SagaCommand("ordering", RejectOrder(d["orderId"])),
            ),
            step(
                "AuthorizeCustomer",
                action=lambda d: SagaCommand(
                    "customers", AuthorizeCustomer(d["customerId"], d["orderId"])
                ),
            ),
            step(
                "CreateShoppingList",
                action=lambda d: SagaCommand("depot", CreateShoppingList(d["orderId"], d["items"])),
                compensation=lambda d: SagaCommand("depot", CancelShoppingList(d["orderId"])),
                on_reply=_shopping,
            ),
            step(
                "ConfirmPayment",
                action=lambda d: SagaCommand(
                    "payments",
                    ConfirmPayment(d["paymentId"], d["customerId"], d["orderId"], d["total"]),
                ),
            ),
            step(
                "InitiateShopping",
                action=lambda d: SagaCommand(
                    "depot", InitiateShopping(d["orderId"], d["shoppingId"])
                ),
            ),
            step(
                "ApproveOrder",
                action=lambda d: SagaCommand(
                    "ordering", ApproveOrder(d["orderId"], d["shoppingId"])
                ),
            ),
        )

    return CreateOrderSaga
