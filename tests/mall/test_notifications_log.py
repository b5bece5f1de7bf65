"""Notifications number their rows ``max(seq) + 1`` as they insert them: an index keeps that
from reading every notification ever sent, once per order event (asked of SQLite's query
planner, on a real service store)."""

from __future__ import annotations

from pathlib import Path

from examples.mall.notifications import SERVICE as NOTIFICATIONS
from examples.mall.platform.storage import ServiceStore


def test_numbering_a_notification_does_not_scan_them_all(tmp_path: Path) -> None:
    own = ServiceStore("notifications", f"sqlite:///{tmp_path / 'n.db'}", NOTIFICATIONS.tables)
    try:
        plan = own.query("EXPLAIN QUERY PLAN SELECT coalesce(max(seq), 0) + 1 FROM notifications")
    finally:
        own.close()
    steps = " / ".join(str(row[-1]) for row in plan)
    assert "notifications_by_seq" in steps and "SCAN notifications" not in steps, steps
