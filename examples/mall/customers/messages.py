"""What customers answers: the saga's AuthorizeCustomer (a disabled customer is refused)."""

from __future__ import annotations

from streamsource.messaging import Command

from ..platform.messaging import registry


@registry.event("AuthorizeCustomer")
class AuthorizeCustomer(Command, frozen=True, rename="camel"):
    customer_id: str
    order_id: str
