"""Customers' messages in: the AuthorizeCustomer command. A disabled or unknown customer
raises a DomainError, which the messaging service turns into a refusal reply."""

from __future__ import annotations

from streamsource.messaging import Context

from .application import load
from .messages import AuthorizeCustomer


def authorize(ctx: Context, command: AuthorizeCustomer) -> None:
    load(ctx, command.customer_id).authorize(command.order_id)
