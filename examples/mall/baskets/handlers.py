"""Baskets' messages: stores' integration events in (the caches); BasketCheckedOut out."""

from __future__ import annotations

import streamsource as ss

from ..platform.storage import Unit
from .application import cache_unit


def handle_stores_events(event: ss.RecordedEvent) -> Unit | None:
    return cache_unit(event)
