"""``/api/payments``."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from ..platform.http import Camel, Created
from .application import Payments


class AuthorizePayment(Camel):
    customer_id: str = Field(min_length=1, max_length=100)
    amount: int = Field(gt=0, lt=10**12, description="integer cents")


class InvoiceView(Camel):
    id: str
    order_id: str
    payment_id: str
    amount: int
    status: str


def router(payments: Payments) -> APIRouter:
    api = APIRouter(prefix="/api/payments", tags=["payments"])

    @api.post("", status_code=201, response_model=Created)
    def authorize(body: AuthorizePayment) -> Created:
        return Created(id=payments.authorize(body.customer_id, body.amount))

    @api.get("/invoices/{id}", response_model=InvoiceView)
    def invoice(id: str) -> InvoiceView:
        i = payments.invoice(id)
        return InvoiceView(
            id=i.id, order_id=i.id, payment_id=i.payment_id, amount=i.amount, status=i.status
        )

    @api.put("/invoices/{id}/pay", status_code=204)
    def pay(id: str) -> None:
        payments.pay(id)

    return api
