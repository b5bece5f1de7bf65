"""The sagas page and its JSON twin over the store of a service running sagas: stuck and
completed sagas, a saga's step history, resume (carried out by the service) and abort."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

import streamsource as ss
from sagas.mall import PlaceOrder, orders_service, payments_service, rows, stock_service
from streamsource.messaging import Context, LocalTransport, Refused
from streamsource.sagas import SagaEngine

from .browser import TIMEOUT_MS, open_page
from .conftest import PASSWORDS, login
from .console_process import console_process

# one worker runs the whole module: its tests share one console over one store
pytestmark = pytest.mark.xdist_group("console-sagas")

expect.set_options(timeout=TIMEOUT_MS)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Mall:
    engine: SagaEngine
    transport: LocalTransport
    stock: Any
    broken: threading.Event
    clock: Clock
    completed: str
    stuck: list[str]

    def carry_out_requests(self) -> int:
        done = self.engine.fire_due()
        self.transport.drain()
        return done


@pytest.fixture(scope="module")
def mall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Mall]]:
    """The orders service's store (a SQLite file) with one completed and two stuck sagas:
    their charge was refused and the warehouse refuses to release the stock."""
    directory = tmp_path_factory.mktemp("sagas")
    url = f"sqlite:///{directory / 'orders.db'}"
    broken = threading.Event()
    broken.set()

    def warehouse_api(ctx: Context, command: Any) -> None:
        if broken.is_set():
            raise Refused("warehouse API down")

    clock = Clock()
    with (
        ss.open_store(url) as orders_store,
        ss.open_store(f"sqlite:///{directory / 'stock.db'}") as stock_store,
        ss.open_store(f"sqlite:///{directory / 'payments.db'}") as payments_store,
    ):
        orders = orders_service(orders_store)
        engine = SagaEngine(orders, [PlaceOrder], clock=clock)
        stock = stock_service(stock_store, on_release=warehouse_api)
        transport = LocalTransport([orders, stock, payments_service(payments_store)])
        completed = engine.start(PlaceOrder, "o-ok", {"order": "o-ok", "amount": 5, "quantity": 1})
        stuck = [
            engine.start(PlaceOrder, key, {"order": key, "amount": 500, "quantity": 1})
            for key in ("o-1", "o-2")
        ]
        transport.drain()
        while any(engine.load(s).status != "stuck" for s in stuck):
            clock.now += 60
            engine.fire_due()
            transport.drain()
        yield url, Mall(engine, transport, stock, broken, clock, completed, stuck)


@pytest.fixture(scope="module")
def sagas_console(mall: tuple[str, Mall], users_file: Path) -> Iterator[str]:
    url, _ = mall
    with console_process(["--store", url, "--auth", str(users_file), "--mask-values"]) as base:
        yield base


def test_stuck_sagas_their_history_and_a_resume(sagas_console: str, mall: tuple[str, Mall]) -> None:
    _, shop = mall
    admin, csrf = login(sagas_console, "ada")
    admin.headers["X-CSRF-Token"] = csrf
    with closing(admin):
        listed = admin.get("/api/sagas").json()
        assert {s["saga_id"]: s["status"] for s in listed} == {
            shop.completed: "completed",
            shop.stuck[0]: "stuck",
            shop.stuck[1]: "stuck",
        }
        stuck = admin.get("/api/sagas", params={"status": "stuck"}).json()
        assert {s["key"] for s in stuck} == {"o-1", "o-2"}
        assert all(s["step"] == "reserve" and "warehouse API down" in s["reason"] for s in stuck)

        detail = admin.get("/api/saga", params={"id": shop.stuck[0]}).json()
        events = [(h["event"], h["step"]) for h in detail["history"]]
        assert ("step refused", "charge") in events
        assert detail["data"] == {"order": "o-1", "amount": 500, "quantity": 1}
        refused = next(h for h in detail["history"] if h["event"] == "step refused")
        assert "card limit is 100, 500 asked" in refused["detail"]

        done = admin.post("/api/saga/abort", params={"id": shop.completed})
        assert done.status_code == 409 and "is completed: nothing to abort" in done.json()["error"]
        missing = admin.get("/api/saga", params={"id": "no-such-saga"})
        assert missing.status_code == 404

        shop.broken.clear()
        resumed = admin.post("/api/saga/resume", params={"id": shop.stuck[0]}).json()
        assert resumed == {"saga_id": shop.stuck[0], "op": "resume", "status": "stuck"}
        assert shop.carry_out_requests() == 1  # the orders service carries it out
        after = admin.get("/api/saga", params={"id": shop.stuck[0]}).json()
        assert after["saga"]["status"] == "compensated"
        assert rows(shop.stock.store, "stock")["o-1"] == "released"


def test_viewers_read_sagas_without_data_and_cannot_act(
    sagas_console: str, mall: tuple[str, Mall]
) -> None:
    _, shop = mall
    viewer, csrf = login(sagas_console, "vic")
    viewer.headers["X-CSRF-Token"] = csrf
    with closing(viewer):
        detail = viewer.get("/api/saga", params={"id": shop.stuck[1]}).json()
        assert detail["data"] is None and detail["history"]
        refused = viewer.post("/api/saga/resume", params={"id": shop.stuck[1]})
        assert refused.status_code == 403


def test_an_admin_aborts_a_stuck_saga_in_the_browser(
    browser: Any, sagas_console: str, mall: tuple[str, Mall], page_errors: list[str], shots: Path
) -> None:
    _, shop = mall
    page = open_page(browser, sagas_console, page_errors)
    page.goto("/login?next=/sagas")
    page.get_by_label("User").fill("ada")
    page.get_by_label("Password").fill(PASSWORDS["ada"])
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1")).to_have_text("Sagas")
    page.get_by_label("Status").select_option("stuck")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#sagas td.status").first).to_have_text("stuck")
    page.screenshot(path=shots / "sagas.png", full_page=True)
    page.get_by_role("link", name=shop.stuck[1]).click()
    expect(page.locator("#saga-status")).to_have_text("stuck")
    expect(page.locator("#history")).to_contain_text("card limit is 100, 500 asked")
    page.wait_for_load_state("load")
    page.get_by_role("button", name="Abort").click()
    expect(page.get_by_role("status")).to_contain_text("abort requested")
    assert shop.carry_out_requests() == 1
    page.reload()
    expect(page.locator("#saga-status")).not_to_have_text("stuck")
    page.screenshot(path=shots / "saga-aborted.png", full_page=True)
    page.context.close()
    assert page_errors == []
