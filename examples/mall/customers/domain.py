"""Customers: registered with a name and an SMS number, enabled or disabled."""

from __future__ import annotations

import msgspec

import streamsource as ss

from ..platform.http import Refused

events = ss.EventRegistry()


@events.event("CustomerRegistered")
class CustomerRegistered(msgspec.Struct, frozen=True):
    name: str
    smsNumber: str


@events.event("CustomerSmsChanged")
class CustomerSmsChanged(msgspec.Struct, frozen=True):
    smsNumber: str


@events.event("CustomerEnabled")
class CustomerEnabled(msgspec.Struct, frozen=True):
    pass


@events.event("CustomerDisabled")
class CustomerDisabled(msgspec.Struct, frozen=True):
    pass


@events.event("CustomerAuthorized")
class CustomerAuthorized(msgspec.Struct, frozen=True):
    orderId: str


class Customer(ss.Aggregate):
    registry = events
    category = "customer"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.name = ""
        self.sms_number = ""
        self.enabled = False

    def register(self, name: str, sms_number: str) -> None:
        self.record(CustomerRegistered(name=name, smsNumber=sms_number))

    def change_sms(self, sms_number: str) -> None:
        self.record(CustomerSmsChanged(smsNumber=sms_number))

    def enable(self) -> None:
        if self.enabled:
            raise Refused(f"customer {self.id} is already enabled")
        self.record(CustomerEnabled())

    def disable(self) -> None:
        if not self.enabled:
            raise Refused(f"customer {self.id} is already disabled")
        self.record(CustomerDisabled())

    def authorize(self, order_id: str) -> None:
        if not self.enabled:
            raise Refused(f"customer {self.id} is disabled")
        self.record(CustomerAuthorized(orderId=order_id))

    @ss.applies(CustomerRegistered)
    def _registered(self, event: CustomerRegistered) -> None:
        self.name, self.sms_number, self.enabled = event.name, event.smsNumber, True

    @ss.applies(CustomerSmsChanged)
    def _sms_changed(self, event: CustomerSmsChanged) -> None:
        self.sms_number = event.smsNumber

    @ss.applies(CustomerEnabled)
    def _enabled(self, event: CustomerEnabled) -> None:
        self.enabled = True

    @ss.applies(CustomerDisabled)
    def _disabled(self, event: CustomerDisabled) -> None:
        self.enabled = False

    @ss.applies(CustomerAuthorized)
    def _authorized(self, event: CustomerAuthorized) -> None:
        pass
