"""``/api/customers``."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import Field

from ..platform.http import Camel, Created, created, encoded, on_loop
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
    local = customers.own.local

    @api.post("", status_code=201, response_model=Created)
    @on_loop(local)
    def register(body: RegisterCustomer) -> Response:
        return created(customers.register(body.name, body.sms_number))

    @api.get("/{id}", response_model=CustomerView)
    @on_loop(local)
    def get(id: str) -> Response:
        c = customers.load(id)
        view = {"id": c.id, "name": c.name, "smsNumber": c.sms_number, "enabled": c.enabled}
        return encoded(view)

    @api.put("/{id}/enable", status_code=204)
    @on_loop(local)
    def enable(id: str) -> None:
        customers.change(id, lambda c: c.enable())

    @api.put("/{id}/disable", status_code=204)
    @on_loop(local)
    def disable(id: str) -> None:
        customers.change(id, lambda c: c.disable())

    @api.put("/{id}/change-sms", status_code=204)
    @on_loop(local)
    def change_sms(id: str, body: ChangeSms) -> None:
        customers.change(id, lambda c: c.change_sms(body.sms_number))

    return api
