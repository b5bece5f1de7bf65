"""Baskets price items from their copies of stores and products, which stores' events fill on
different partitions: a product can reach baskets before its store. An item added then is
never recorded with an empty store name: the request waits a moment for the store, answers
503 if it does not come, and succeeds with the name once it has. Baskets' HTTP API on a real
uvicorn server, its store a real SQLite file, the caches filled by their own handlers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from examples.mall.baskets import SERVICE as BASKETS
from examples.mall.baskets import application
from examples.mall.baskets.application import Caches
from examples.mall.platform.storage import ServiceStore
from examples.mall.stores.messages import ProductAdded, StoreCreated
from service_api import serve_service


@pytest.fixture
def baskets(tmp_path: Path) -> Iterator[ServiceStore]:
    own = ServiceStore("baskets", f"sqlite:///{tmp_path / 'baskets.db'}", BASKETS.tables)
    yield own
    own.close()


@pytest.fixture
def api(baskets: ServiceStore) -> Iterator[httpx.Client]:
    with serve_service(BASKETS, baskets) as client:
        yield client


def test_an_item_is_never_added_without_its_store_name(
    baskets: ServiceStore, api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(application, "CACHE_WAIT", 0.3)
    caches = Caches(baskets)
    mug = ProductAdded("mug-1", "corner-1", "Mug", "a mug", "SKU-1", 800)
    baskets.run(lambda ctx: caches.product_added(ctx, mug))
    basket = api.post("/api/baskets", json={"customerId": "ada"}).json()["id"]
    add = {"productId": "mug-1", "quantity": 2}

    # Given baskets knows the product but not yet its store: the item is refused for now
    early = api.put(f"/api/baskets/{basket}/addItem", json=add)
    assert early.status_code == 503, early.text
    assert early.json()["error"] == "unavailable"
    assert "store of product mug-1" in early.json()["detail"]
    assert api.get(f"/api/baskets/{basket}").json()["items"] == []

    # When the store arrives, the same request adds the item with the store's name
    corner = StoreCreated("corner-1", "Corner", "Main St")
    baskets.run(lambda ctx: caches.store_created(ctx, corner))
    assert api.put(f"/api/baskets/{basket}/addItem", json=add).status_code == 204
    items = api.get(f"/api/baskets/{basket}").json()["items"]
    assert [(i["productName"], i["storeId"], i["quantity"]) for i in items] == [
        ("Mug", "corner-1", 2)
    ]
    # (the store's name is in the item the basket recorded, which checkout hands to ordering)
    assert application.Baskets(baskets).load(basket).items["mug-1"].storeName == "Corner"


def test_an_unknown_basket_is_404_before_an_unknown_product(api: httpx.Client) -> None:
    response = api.put("/api/baskets/nobody/addItem", json={"productId": "x", "quantity": 1})
    assert response.status_code == 404
    assert response.json()["detail"] == "no basket nobody"
