"""Projections and persistent subscriptions through the JSON API: status, rebuild, replay."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import streamsource as ss
from deadline import wait_until

# one worker runs the whole module: its tests share one console over one store
pytestmark = pytest.mark.xdist_group("console-admin-api")


@pytest.fixture
def api(console_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console_url, timeout=10) as client:
        csrf = client.get("/api/session").json()["csrf_token"]
        client.headers["X-CSRF-Token"] = csrf
        yield client


def test_projection_status_shows_checkpoint_lag_and_last_error(
    api: httpx.Client, demo_store: str
) -> None:
    answer = api.get("/api/projections")
    assert answer.status_code == 200, answer.text
    rows = {row["name"]: row for row in answer.json()}
    balances, orders = rows["account_balances"], rows["order_totals"]
    with ss.open_store(demo_store) as store:
        last_account = max(
            e.position
            for e in store.read_category(
                "account", types=["AccountOpened", "Deposited", "Withdrawn"]
            )
        )
    assert balances["generation"] == 1 and balances["checkpoint"] == last_account
    assert balances["lag_events"] == 0 and balances["last_error"] is None
    assert "cannot total a poisoned order" in orders["last_error"]
    assert orders["lag_events"] >= 1


def test_an_admin_rebuilds_a_projection_and_follows_its_progress(api: httpx.Client) -> None:
    started = api.post("/api/projections/account_balances/rebuild")
    assert started.status_code == 202 and started.json()["projection"] == "account_balances"

    def finished() -> dict[str, Any]:
        row = next(r for r in api.get("/api/projections").json() if r["name"] == "account_balances")
        rebuild = row["rebuild"]
        return row if rebuild["finished"] else {}

    row = wait_until(finished, timeout=60, what="the rebuild to finish")
    assert row["rebuild"]["error"] is None
    assert row["generation"] == 2 and row["rebuild"]["generation"] == 2
    assert row["lag_events"] == 0
    unknown = api.post("/api/projections/nope/rebuild")
    assert unknown.status_code == 404 and "no projection named 'nope'" in unknown.json()["error"]


def test_subscription_groups_show_in_flight_and_parked(api: httpx.Client) -> None:
    (billing,) = [g for g in api.get("/api/subscriptions").json() if g["name"] == "billing"]
    assert billing["category"] == "paging"
    assert billing["in_flight"] == 2
    assert billing["parked"] >= 2
    detail = api.get("/api/subscription", params={"group": "billing"}).json()
    errors = {p["original_stream"]: p["error"] for p in detail["parked"]}
    assert errors["paging-000"] == "ValueError: card declined"
    assert errors["paging-001"] == "address unknown"
    retried = [m for m in detail["in_flight"] if m["last_error"]]
    assert [m["last_error"] for m in retried] == ["bank timed out"]
    missing = api.get("/api/subscription", params={"group": "nobody"})
    assert missing.status_code == 404


def test_an_admin_replays_parked_messages(api: httpx.Client, demo_store: str) -> None:
    before = api.get("/api/subscription", params={"group": "billing"}).json()["group"]
    waiting = before["waiting_replay"]
    assert waiting >= 1
    done = api.post("/api/subscription/replay", params={"group": "billing"}).json()
    assert done == {"group": "billing", "replayed": waiting}
    after = api.get("/api/subscription", params={"group": "billing"}).json()["group"]
    assert after["waiting_replay"] == 0
    assert after["in_flight"] == before["in_flight"] + waiting
    # the replayed messages are delivered to the group's consumers again
    with (
        ss.open_store(demo_store) as store,
        ss.PersistentSubscription(store, "billing", category="paging") as consumer,
    ):
        redelivered = consumer.fetch(10)
        assert {m.event.stream for m in redelivered} >= {"paging-000", "paging-001"}
        for message in redelivered:
            consumer.ack(message)


def test_admin_actions_need_the_csrf_token(console_url: str) -> None:
    with httpx.Client(base_url=console_url, timeout=10) as client:
        refused = client.post("/api/subscription/replay", params={"group": "billing"})
        assert refused.status_code == 403
        refused = client.post("/api/projections/account_balances/rebuild")
        assert refused.status_code == 403
