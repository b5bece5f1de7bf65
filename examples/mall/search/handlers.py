"""Search's messages in: ordering's order events (its own consumer: it sees all of them)."""

from __future__ import annotations

from .application import index

handle_orders = index
