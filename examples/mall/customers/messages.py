"""What customers publishes (on ``mall.customers.events``: who registered, for search's
names) and answers: the saga's AuthorizeCustomer (a disabled customer is refused)."""

from __future__ import annotations

from streamsource.messaging import Command, IntegrationEvent

from ..platform.messaging import registry


@registry.event("AuthorizeCustomer")
class AuthorizeCustomer(Command, frozen=True, rename="camel"):
    customer_id: str
    order_id: str


@registry.event("CustomerRegistered")
class CustomerRegistered(IntegrationEvent, frozen=True, rename="camel"):
    customer_id: str
    name: str
