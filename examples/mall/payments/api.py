"""``/api/payments``."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import Field

from ..platform.http import Camel, Created, created, encoded, on_loop
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
    @on_loop(payments.own.local)
    def authorize(body: AuthorizePayment) -> Response:
        return created(payments.authorize(body.customer_id, body.amount))

    @api.get("/invoices/{id}", response_model=InvoiceView)
    @on_loop(payments.own.local)
    def invoice(id: str) -> Response:
        i = payments.invoice(id)
        view = {"id": i.id, "orderId": i.id, "paymentId": i.payment_id, "amount": i.amount}
        return encoded({**view, "status": i.status})

    @api.put("/invoices/{id}/pay", status_code=204)
    @on_loop(payments.own.local)
    def pay(id: str) -> None:
        payments.pay(id)

    return api
