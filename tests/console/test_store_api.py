"""The store's JSON API, from a real console process over a store the demo filled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

import streamsource as ss
from deadline import Deadline

from .conftest import BIG_STREAM_EVENTS, PAGED_STREAMS
from .console_process import run_cli

# one worker runs the whole module: its tests share one console over one store
pytestmark = pytest.mark.xdist_group("console-store-api")


@pytest.fixture
def api(console_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console_url, timeout=10) as client:
        yield client


def test_streams_list_counts_and_last_event_time(api: httpx.Client, demo_store: str) -> None:
    page = api.get("/api/streams", params={"category": "account"}).json()
    with ss.open_store(demo_store) as store:
        expected = {
            s.stream: s.version + 1
            for s in store.list_streams()
            if s.stream.startswith("account-") and s.version is not None
        }
        last = next(store.read_stream("account-tt", backwards=True, limit=1))
    assert {row["stream"]: row["events"] for row in page["streams"]} == expected
    row = next(r for r in page["streams"] if r["stream"] == "account-tt")
    assert row["last_event_at"] == last.recorded_at.isoformat()
    assert row["version"] == 3


def test_streams_search_and_keyset_pages(api: httpx.Client) -> None:
    assert [
        r["stream"]
        for r in api.get("/api/streams", params={"search": "paging-07"}).json()["streams"]
    ] == [f"paging-{n:03}" for n in range(70, 80)]
    seen: list[str] = []
    params: dict[str, str | int] = {"category": "paging", "limit": 50}
    while True:
        page = api.get("/api/streams", params=params).json()
        seen += [row["stream"] for row in page["streams"]]
        if page["next_after"] is None:
            break
        params["after"] = page["next_after"]
    assert seen == [f"paging-{n:03}" for n in range(PAGED_STREAMS)]


def test_stream_pages_newest_first_and_oldest_first(api: httpx.Client) -> None:
    for direction, order in (("backwards", reversed), ("forwards", iter)):
        versions: list[int] = []
        params: dict[str, str | int] = {"name": "big-1", "limit": 50, "direction": direction}
        while True:
            page = api.get("/api/stream", params=params).json()
            versions += [e["version"] for e in page["events"]]
            assert page["head"] == BIG_STREAM_EVENTS - 1
            if page["next_from"] is None:
                break
            params["from_version"] = page["next_from"]
        assert versions == list(order(range(BIG_STREAM_EVENTS)))
    event = api.get("/api/stream", params={"name": "big-1", "limit": 1}).json()["events"][0]
    assert event["type"] == "Counted" and event["data"] == {"n": BIG_STREAM_EVENTS - 1}


def test_time_travel_shows_the_aggregate_as_of_a_version_and_a_time(
    api: httpx.Client, demo_store: str
) -> None:
    travel = api.get("/api/time-travel", params={"name": "account-tt", "version": 1}).json()
    assert [e["version"] for e in travel["events"]["events"]] == [1, 0]
    assert travel["aggregate"]["state"] == {"owner": "Grace", "balance": 100}
    assert travel["aggregate"]["version"] == 1
    now = api.get("/api/time-travel", params={"name": "account-tt"}).json()
    assert now["aggregate"]["state"]["balance"] == 120
    with ss.open_store(demo_store) as store:
        second = list(store.read_stream("account-tt"))[2]
    moment = (second.recorded_at + timedelta(microseconds=1)).isoformat()
    then = api.get("/api/time-travel", params={"name": "account-tt", "time": moment}).json()
    assert then["aggregate"]["state"]["balance"] == 150
    assert then["events"]["events"][0]["version"] == 2


def test_global_log_pages_and_filters(api: httpx.Client, demo_store: str) -> None:
    with ss.open_store(demo_store) as store:
        head = store.head_position()
    first = api.get("/api/log", params={"limit": 10}).json()
    assert [e["position"] for e in first["events"]] == list(range(head, head - 10, -1))
    second = api.get("/api/log", params={"limit": 10, "before": first["next_before"]}).json()
    assert second["events"][0]["position"] == head - 10
    paged = api.get("/api/log", params={"category": "paging", "limit": 500}).json()
    assert {e["stream"] for e in paged["events"]} == {
        f"paging-{n:03}" for n in range(PAGED_STREAMS)
    }
    typed = api.get("/api/log", params={"type": "Deposited", "limit": 500}).json()
    assert typed["events"] and {e["type"] for e in typed["events"]} == {"Deposited"}


def test_live_log_sends_new_events(api: httpx.Client, demo_store: str) -> None:
    with ss.open_store(demo_store) as store:
        head = store.head_position()
        with api.stream(
            "GET", "/api/log/live", params={"after": head, "category": "live"}
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            store.append("other-1", [ss.NewEvent("Ignored", {})])
            store.append("live-1", [ss.NewEvent("Shown", {"hello": "world"})])
            deadline = Deadline(20, "the live event")
            for line in response.iter_lines():
                deadline.check()
                if line.startswith("data: "):
                    event = json.loads(line[len("data: ") :])
                    break
    assert event["stream"] == "live-1" and event["data"] == {"hello": "world"}


def test_following_correlation_and_causation(api: httpx.Client, demo_store: str) -> None:
    with ss.open_store(demo_store) as store:
        placed = next(store.read_stream("order-9"))
        issued = next(store.read_stream("invoice-9"))
    shown = api.get("/api/stream", params={"name": "invoice-9"}).json()["events"][0]
    assert shown["causation_id"] == str(placed.id)
    assert shown["correlation_id"] == str(placed.id)
    chain = api.get("/api/correlation", params={"id": shown["correlation_id"]}).json()
    assert [e["stream"] for e in chain["events"]] == ["order-9", "invoice-9"]
    assert chain["next_after"] is None
    cause = api.get(
        "/api/event", params={"id": shown["causation_id"], "before": issued.position}
    ).json()
    assert [e["position"] for e in cause["events"]] == [placed.position]


@pytest.mark.parametrize(
    ("path", "params", "status", "reason"),
    [
        ("/api/stream", {"name": ""}, 422, "name"),
        ("/api/stream", {"name": "x", "limit": 0}, 422, "limit"),
        ("/api/stream", {"name": "x", "limit": "many"}, 422, "limit"),
        ("/api/stream", {"name": "x", "from_version": -1}, 422, "from_version"),
        ("/api/stream", {"name": "bad\x01name"}, 400, "control character"),
        ("/api/time-travel", {"name": "account-tt", "time": "yesterday"}, 400, "invalid time"),
        ("/api/log", {"before": "x"}, 422, "before"),
        ("/api/correlation", {"id": "x", "after": -5}, 400, "after"),
        ("/api/nothing-here", {}, 404, "Not Found"),
    ],
)
def test_bad_input_is_a_4xx_with_a_reason(
    api: httpx.Client, path: str, params: dict[str, str | int], status: int, reason: str
) -> None:
    response = api.get(path, params=params)
    assert response.status_code == status
    assert reason in response.json()["error"]


def test_deleted_stream_is_gone(api: httpx.Client, demo_store: str) -> None:
    with ss.open_store(demo_store) as store:
        store.append("doomed-1", [ss.NewEvent("Born", {})])
        store.delete_stream("doomed-1", hard=True)
    response = api.get("/api/stream", params={"name": "doomed-1"})
    assert response.status_code == 410
    assert "doomed-1" in response.json()["error"]


def test_openapi_describes_the_json_endpoints(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path in ("/api/streams", "/api/stream", "/api/time-travel", "/api/log", "/api/log/live"):
        assert path in paths


def test_refuses_a_public_address_without_auth(demo_store: str) -> None:
    result = run_cli(["console", "--store", demo_store, "--host", "0.0.0.0", "--port", "0"])
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without --auth" in result.stderr


def test_refuses_a_store_that_is_not_there(tmp_path: Path) -> None:
    result = run_cli(["console", "--store", f"sqlite:///{tmp_path / 'missing.db'}"])
    assert result.returncode == 2 and "no store at" in result.stderr
