"""The mall as three processes sharing a data directory (or one PostgreSQL database): the
scenarios pass the same, and an order still completes after ``kill -9`` of a process in the
middle of its flow, once that process restarts. Messages go through the broker the front
process starts (the default; the others get its address as ``--bootstrap``), through the
stores (``--transport local``), or through a broker process of their own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import scenarios
from mall_process import MallProcess, eventually, json_of
from shopping import Shopper

from pg_server import pg_store_url
from streamsource.kafka.broker.process import BrokerProcess

pytestmark = pytest.mark.slow

# front: what shoppers and stores touch; orders: ordering and the saga with its readers;
# depot alone, so that it can crash on its own
SPLIT = {
    "front": ("stores", "customers", "baskets", "payments"),
    "orders": ("ordering", "cosec", "notifications", "search"),
    "depot": ("depot",),
}
RECOVERY = 90.0  # seconds a restarted process may take to catch up

ROUTES = {
    "/api/stores": "front",
    "/api/customers": "front",
    "/api/baskets": "front",
    "/api/payments": "front",
    "/api/ordering": "orders",
    "/api/sagas": "orders",
    "/api/notifications": "orders",
    "/api/search": "orders",
    "/api/depot": "depot",
}


class Split:
    """Three ``mall serve`` processes, and an HTTP client that sends each path to its owner."""

    def __init__(
        self,
        data_dir: Path,
        store: str | None,
        bootstrap: str | None = None,
        step_timeout: float | None = None,
        transport: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.store = store
        self.bootstrap = bootstrap
        self.transport = transport
        self.step_timeout = step_timeout
        self.processes: dict[str, MallProcess] = {}
        self.clients: dict[str, httpx.Client] = {}
        for part in SPLIT:
            self.start(part)

    def start(self, part: str) -> None:
        bootstrap = self.bootstrap
        if bootstrap is None and self.transport is None and part != "front":
            bootstrap = self.processes["front"].broker  # the front process runs the broker
            assert bootstrap is not None
        mall = MallProcess.start(
            self.data_dir,
            store=self.store,
            services=SPLIT[part],
            bootstrap=bootstrap,
            transport=self.transport,
            step_timeout=self.step_timeout,
        )
        self.processes[part] = mall
        self.clients[part] = mall.client()

    def kill(self, part: str) -> None:
        self.clients.pop(part).close()
        self.processes.pop(part).kill()

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        with ExitStack() as stack:
            for mall in self.processes.values():
                stack.callback(mall.stop)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        part = next(owner for prefix, owner in ROUTES.items() if path.startswith(prefix))
        return self.clients[part].request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


@pytest.fixture(
    params=[
        "sqlite",
        "sqlite+local",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("sqlite+kafka", marks=pytest.mark.interop),
    ]
)
def split(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Split]:
    """Messages through the front process's broker (sqlite, postgres), the stores
    (sqlite+local), or a broker process (sqlite+kafka)."""
    store = None
    if request.param == "postgres":
        store = pg_store_url(request.getfixturevalue("pg_server_url"))
    transport = "local" if request.param.endswith("+local") else None
    with ExitStack() as stack:
        bootstrap = None
        if request.param.endswith("kafka"):
            broker = BrokerProcess(
                tmp_path / "broker",
                tmp_path / "broker.log",
                group_initial_rebalance_delay_ms=0,
            ).start()
            stack.callback(broker.terminate)
            bootstrap = broker.bootstrap
        mall = Split(tmp_path / "mall", store, bootstrap, transport=transport)
        stack.callback(mall.close)
        yield mall


def test_scenarios_across_three_processes(split: Split) -> None:
    shop = Shopper(split)  # type: ignore[arg-type]
    scenarios.happy_path(shop)
    scenarios.disabled_customer(shop)
    scenarios.payment_below_total(shop)
    scenarios.cancel_before_ready(shop)
    scenarios.price_change_in_basket(shop)


def test_an_order_completes_after_kill_9_mid_flow(split: Split) -> None:
    shop = Shopper(split)  # type: ignore[arg-type]
    customer = shop.customer()
    _, product = shop.store_with_product(price=700)
    # the depot dies before the saga's CreateShoppingList reaches it ...
    split.kill("depot")
    basket = shop.basket(customer, product, quantity=1)
    shop.checkout(basket, shop.payment(customer, 700))
    saga = shop.saga_when(basket, "running")
    assert shop.order_when(basket, "pending")["status"] == "pending"
    # ... and the orders process dies right after checkout, wherever it was
    split.kill("orders")
    split.start("orders")
    split.start("depot")
    # (on Kafka a restarted service gets its partitions once the dead member's session ends)
    order = shop.order_when(basket, "approved", seconds=RECOVERY)
    assert saga["id"] == basket
    # the depot dies again between approval and shopping; its list survives
    split.kill("depot")
    split.start("depot")
    shop.ship(order["shoppingId"])
    shop.order_when(basket, "ready", seconds=RECOVERY)
    shop.pay_invoice(basket)
    shop.order_when(basket, "completed", seconds=RECOVERY)
    saga = shop.saga_when(basket, "completed")
    # each command was sent and answered once: no duplicate from the restarts
    assert scenarios.sent_commands(saga) == [
        "CheckOrderPending",
        "AuthorizeCustomer",
        "CreateShoppingList",
        "ConfirmPayment",
        "InitiateShopping",
        "ApproveOrder",
    ]
    kinds = ["order_created", "order_ready", "order_completed"]
    eventually(lambda: [n["kind"] for n in shop.notifications(customer)] == kinds, "notifications")
    eventually(
        lambda: json_of(split.get(f"/api/search/orders/{basket}"))["status"] == "completed",
        "the completed order in search",
    )


def test_a_step_without_reply_times_out_and_the_saga_compensates(tmp_path: Path) -> None:
    split = Split(tmp_path / "mall", None, step_timeout=1.0)
    try:
        shop = Shopper(split)  # type: ignore[arg-type]
        customer = shop.customer()
        _, product = shop.store_with_product(price=500)
        split.kill("depot")  # CreateShoppingList gets no reply
        basket = shop.basket(customer, product, quantity=1)
        shop.checkout(basket, shop.payment(customer, 500))

        def compensating() -> dict[str, Any] | None:
            answer = split.get(f"/api/sagas/{basket}")
            if answer.status_code == 404:
                return None  # cosec has not heard of the checkout yet
            saga = json_of(answer)
            return saga if "CancelShoppingList" in scenarios.sent_commands(saga) else None

        saga = eventually(compensating, "the timed-out step compensated")
        sent = scenarios.sent_commands(saga)
        # every step has the 1 s timeout, so on a loaded machine an earlier step may be sent
        # twice too; what must hold: CreateShoppingList, after authorization, went out again
        assert sent[0] == "CheckOrderPending" and "AuthorizeCustomer" in sent
        creates = [i for i, command in enumerate(sent) if command == "CreateShoppingList"]
        assert len(creates) >= 2 and creates[0] > sent.index("AuthorizeCustomer")
        timeouts = [h["step"] for h in saga["history"] if h["event"] == "timed out"]
        assert "CreateShoppingList" in timeouts
        assert shop.order_when(basket, "pending")["status"] == "pending"
        # the depot comes back: the late commands and the compensation reach it, the saga ends
        split.start("depot")
        shop.order_when(basket, "rejected", seconds=RECOVERY)
        saga = shop.saga_when(basket, "compensated", seconds=RECOVERY)
        assert scenarios.sent_commands(saga)[-1] == "RejectOrder"
    finally:
        split.close()
