"""``/api/notifications``."""

from __future__ import annotations

from fastapi import APIRouter, Query

from ..platform.http import Camel
from .application import Notifications


class NotificationView(Camel):
    customer_id: str
    order_id: str
    kind: str
    sent_at: str


def router(notifications: Notifications) -> APIRouter:
    api = APIRouter(prefix="/api/notifications", tags=["notifications"])

    @api.get("", response_model=list[NotificationView])
    def sent(
        customer_id: str = Query(alias="customerId", min_length=1, max_length=100),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> list[NotificationView]:
        return [
            NotificationView.model_validate(n) for n in notifications.sent_to(customer_id, limit)
        ]

    return api
