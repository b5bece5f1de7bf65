"""Search's names when messages arrive out of order, through its HTTP API: an order indexed
before search has heard of its customer, store and product is found with null names, and
the names fill in when their events arrive; a later rebrand leaves the indexed order's
names alone. Real service stores (SQLite files) and the mall's messaging; each transport
is drained by hand, so the order of arrival is the test's to choose."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from examples.mall.customers.application import Customers
from examples.mall.customers.messages import CustomerRegistered
from examples.mall.ordering.messages import OrderCreated
from examples.mall.platform.storage import ServiceStore
from examples.mall.search import SERVICE as SEARCH
from examples.mall.search.application import Names, Search, index
from examples.mall.stores import SERVICE as STORES
from examples.mall.stores.application import Stores
from examples.mall.stores.domain import Product
from service_api import serve_service

from deadline import wait_until
from pg_server import pg_store_url
from streamsource.messaging import Context, LocalTransport
from streamsource.messaging.envelope import Envelope, now


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[dict[str, ServiceStore]]:
    own = {
        name: ServiceStore(name, f"sqlite:///{tmp_path / f'{name}.db'}", tables)
        for name, tables in (
            ("customers", ()),
            ("stores", STORES.tables),
            ("ordering", ()),
            ("search", SEARCH.tables),
        )
    }
    yield own
    for store in own.values():
        store.close()


@pytest.fixture
def api(stores: dict[str, ServiceStore]) -> Iterator[httpx.Client]:
    """Search's HTTP API on a real uvicorn server in a thread, on a free port."""
    with serve_service(SEARCH, stores["search"]) as client:
        yield client


def deliver(search: ServiceStore, *senders: ServiceStore, name: str) -> None:
    """Every message ``senders`` have published so far, delivered to search."""
    # the senders' messaging services have no handlers here: they only publish
    LocalTransport([search.messages, *(s.messages for s in senders)], name=name).drain(30)


def search(api: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    response = api.post("/api/search/orders", json=filters)
    assert response.status_code == 200, response.text
    orders: list[dict[str, Any]] = response.json()["orders"]
    return orders


def order(ordering: ServiceStore, id: str, customer: str, items: list[dict[str, Any]]) -> None:
    total = sum(i["price"] * i["quantity"] for i in items)

    def publish(ctx: Context) -> None:
        ctx.publish(OrderCreated(id, customer, "payment-1", items, total), key=id)

    ordering.run(publish)


def test_names_arrive_after_the_order_and_fill_it_in(
    stores: dict[str, ServiceStore], api: httpx.Client
) -> None:
    customer = Customers(stores["customers"]).register("Ada", "+1555")
    shop = Stores(stores["stores"])
    store = shop.create_store("Corner", "Main St")
    mug = shop.add_product(store, "Mug", "a mug", "SKU-1", 800)
    items = [
        {"productId": mug, "storeId": store, "productName": "Mug", "storeName": "Corner",
         "price": 800, "quantity": 2},
    ]  # fmt: skip
    order(stores["ordering"], "order-1", customer, items)

    # Given search has seen the order only
    deliver(stores["search"], stores["ordering"], name="orders")
    found = api.get("/api/search/orders/order-1")
    assert found.status_code == 200, found.text
    early = found.json()
    assert early["customerId"] == customer and early["customerName"] is None
    assert [
        (i["productId"], i["storeId"], i["productName"], i["storeName"]) for i in early["items"]
    ] == [(mug, store, None, None)]
    # (a search by store finds it all the same; by the customer's name, not yet)
    assert [o["id"] for o in search(api, storeIds=[store])] == ["order-1"]
    assert search(api, customerName="ad") == []

    # When the customer's, the store's and the product's events arrive
    deliver(stores["search"], stores["customers"], stores["stores"], name="names")
    # Then the order has their names
    filled = api.get("/api/search/orders/order-1").json()
    assert filled["customerName"] == "Ada"
    assert [
        (i["productName"], i["storeName"], i["price"], i["quantity"]) for i in filled["items"]
    ] == [("Mug", "Corner", 800, 2)]
    assert search(api, customerId=customer) == [filled]
    for part, expected in (("aD", [filled]), ("ADA", [filled]), ("Adam", []), ("%", []), ("_", [])):
        assert search(api, customerName=part) == expected, part

    # When the store and the product are rebranded, then a second order is indexed
    shop.change_store(store, lambda s: s.rebrand("Corner Deli"))
    shop.change_product(mug, lambda p: p.rebrand("Big Mug", "a big mug"))
    deliver(stores["search"], stores["stores"], name="names")
    order(stores["ordering"], "order-2", customer, items)
    deliver(stores["search"], stores["ordering"], name="orders")
    # Then the new order has the new names, the first keeps those it was indexed with
    names = {
        o["id"]: (o["customerName"], o["items"][0]["productName"], o["items"][0]["storeName"])
        for o in search(api, productIds=[mug])
    }
    assert names == {
        "order-1": ("Ada", "Mug", "Corner"),
        "order-2": ("Ada", "Big Mug", "Corner Deli"),
    }


def test_product_removal_keeps_its_name_in_search(
    stores: dict[str, ServiceStore], api: httpx.Client
) -> None:
    """An order for a product removed before search indexed it still gets its name."""
    customer = Customers(stores["customers"]).register("Ærø", "+1556")
    shop = Stores(stores["stores"])
    store = shop.create_store("Kiosk", "Pier")
    tea = shop.add_product(store, "Tea", "green", "SKU-2", 300)
    shop.change_product(tea, Product.remove)
    deliver(stores["search"], stores["customers"], stores["stores"], name="names")
    items = [{"productId": tea, "storeId": store, "price": 300, "quantity": 1}]
    order(stores["ordering"], "order-3", customer, items)
    deliver(stores["search"], stores["ordering"], name="orders")
    found = api.get("/api/search/orders/order-3").json()
    assert (found["customerName"], found["items"][0]["productName"]) == ("Ærø", "Tea")
    # a name outside ASCII matches in any case too (SQLite's own folding is ASCII only)
    assert [o["id"] for o in search(api, customerName="æRØ")] == ["order-3"]


@pytest.mark.postgres
def test_a_name_committed_with_its_order_by_another_consumer_is_not_missed(
    pg_server_url: str,
) -> None:
    """Two search consumers (two processes on one PostgreSQL schema): one brings the
    customer's name while the other indexes the customer's first order. Whichever commits
    second sees the other's work, so the order ends with the name."""
    url = pg_store_url(pg_server_url)
    one = ServiceStore("search", url, SEARCH.tables)
    other = ServiceStore("search", url, SEARCH.tables)
    named, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def bring_name(ctx: Context) -> None:
        Names(one).customer_registered(ctx, CustomerRegistered("ada-1", "Ada"))

        def hold(tx: Any) -> None:  # after the name's rows, before the commit
            named.set()
            release.wait(30)

        ctx.write(hold)

    def index_order(ctx: Context) -> None:
        ctx.envelope = Envelope(
            "message-1", "OrderCreated", "event", "mall.ordering.events", "ordering",
            "message-1", sent_at=now(),
        )  # fmt: skip
        index(other, ctx, OrderCreated("order-1", "ada-1", "payment-1", [], 0))

    def run(own: ServiceStore, command: Callable[[Context], None]) -> None:
        try:
            own.run(command)
        except BaseException as exc:
            failures.append(exc)

    def waiting_on_a_lock() -> bool:
        rows = one.query(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(rows[0][0])

    name = threading.Thread(target=run, args=(one, bring_name))
    order = threading.Thread(target=run, args=(other, index_order))
    try:
        name.start()
        wait_until(named.is_set, what="the name written, not committed")
        order.start()
        # the order is either indexed already (without the name: what this test forbids)
        # or waiting for the name's transaction
        wait_until(lambda: not order.is_alive() or waiting_on_a_lock(), what="the order")
    finally:
        release.set()
        name.join(30)
        order.join(30)
        one.close()
        other.close()
    assert not failures, failures
    search = ServiceStore("search", url, SEARCH.tables)
    try:
        assert Search(search).order("order-1")["customerName"] == "Ada"
    finally:
        search.close()
