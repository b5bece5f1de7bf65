"""Notifications' messages in: ordering's order events (its own consumer, so it sees every
one of them; the original shared a group with search and each saw half)."""

from __future__ import annotations

from .application import notify

handle_orders = notify
