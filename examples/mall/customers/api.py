"""``/api/customers``."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from ..platform.http import Camel, Created
from .application import Customers


class RegisterCustomer(Camel):
    name: str = Field(min_length=1, max_length=200)
    sms_number: str = Field(min_length=1, max_length=40)


class ChangeSms(Camel):
    sms_number: str = Field(min_length=1, max_length=40)


class CustomerView(Camel):
    id: str
    name: str
    sms_number: str
    enabled: bool


def router(customers: Customers) -> APIRouter:
    api = APIRouter(prefix="/api/customers", tags=["customers"])

    @api.post("", status_code=201, response_model=Created)
    def register(body: RegisterCustomer) -> Created:
        return Created(id=customers.register(body.name, body.sms_number))

    @api.get("/{id}", response_model=CustomerView, response_model_by_alias=True)
    def get(id: str) -> CustomerView:
        c = customers.load(id)
        return CustomerView(id=c.id, name=c.name, sms_number=c.sms_number, enabled=c.enabled)

    @api.put("/{id}/enable", status_code=204)
    def enable(id: str) -> None:
        customers.change(id, lambda c: c.enable())

    @api.put("/{id}/disable", status_code=204)
    def disable(id: str) -> None:
        customers.change(id, lambda c: c.disable())

    @api.put("/{id}/change-sms", status_code=204)
    def change_sms(id: str, body: ChangeSms) -> None:
        customers.change(id, lambda c: c.change_sms(body.sms_number))

    return api
