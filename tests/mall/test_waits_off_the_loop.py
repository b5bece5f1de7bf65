"""A route that must wait (baskets' addItem for a product not yet in its cache) waits in
the thread pool, not on the event loop where it would hold every other request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from examples.mall.app import Mall

JSON = {"content-type": "application/json"}


@pytest.fixture
async def mall(tmp_path: Path) -> AsyncIterator[Mall]:
    # no transports started: stores' events never reach the baskets' cache
    mall = Mall(tmp_path, transport="local")
    try:
        yield mall
    finally:
        mall.close()


async def test_an_item_waiting_for_the_cache_holds_no_other_request(mall: Mall) -> None:
    transport = httpx.ASGITransport(app=mall.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://mall") as http:
        customer = (await http.post("/api/customers", json={"name": "A", "smsNumber": "1"})).json()
        store = (await http.post("/api/stores", json={"name": "S", "location": "L"})).json()
        product = await http.post(
            f"/api/stores/{store['id']}/products",
            json={"name": "P", "description": "D", "sku": "K", "price": 100},
        )
        basket = (await http.post("/api/baskets", json={"customerId": customer["id"]})).json()
        adding = asyncio.create_task(
            http.put(
                f"/api/baskets/{basket['id']}/addItem",
                json={"productId": product.json()["id"], "quantity": 1},
            )
        )
        # served while the item waits for the cache (3 s): on a held loop it could only be
        # answered after the item's answer
        got = await asyncio.wait_for(http.get(f"/api/customers/{customer['id']}"), 30)
        assert got.status_code == 200 and got.json()["name"] == "A"
        assert not adding.done()
        refused = await asyncio.wait_for(adding, 30)
        # the product never reached baskets here: after the wait, an unknown product
        assert refused.status_code == 404 and refused.json()["error"] == "not_found"
