"""The HTTP contract of the mall (issue 11, section 3) against a real ``mall serve`` process:
camelCase JSON, string ids, 404 for unknown ids, 409 with ``{error, detail}`` for commands
the state refuses, 422 for malformed input, never a 500; OpenAPI and docs served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mall_process import MallProcess, json_of
from shopping import Shopper

pytestmark = pytest.mark.slow

UNKNOWN = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data_dir: Path = tmp_path_factory.mktemp("mall")
    with MallProcess.start(data_dir) as mall, mall.client() as client:
        yield client


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error", "detail"} and body["detail"], body
    return str(body["error"])


def test_openapi_and_docs(http: httpx.Client) -> None:
    spec = json_of(http.get("/openapi.json"))
    paths = set(spec["paths"])
    assert {
        "/api/customers",
        "/api/customers/{id}/change-sms",
        "/api/stores/participating",
        "/api/stores/{store_id}/products",
        "/api/stores/products/{id}/increasePrice",
        "/api/payments/invoices/{id}/pay",
        "/api/baskets/{id}/checkout",
        "/api/ordering/{id}",
        "/api/depot/shopping/{id}/assign",
        "/api/notifications",
        "/api/search/orders",
        "/api/sagas/{id}",
    } <= paths
    body = spec["components"]["schemas"]["RegisterCustomer"]
    assert set(body["properties"]) == {"name", "smsNumber"}
    schemas = spec["components"]["schemas"]
    assert {"customerId", "customerName", "items"} <= set(schemas["FoundOrder"]["properties"])
    assert {"productId", "productName", "storeId", "storeName"} <= set(
        schemas["FoundItem"]["properties"]
    )
    assert "customerName" in schemas["SearchOrders"]["properties"]
    docs = http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


JSON_TYPES = {"string": str, "integer": int, "object": dict, "array": list, "boolean": bool}


def conforms(body: dict[str, Any], schema: dict[str, Any]) -> None:
    """``body`` has exactly the documented properties, each of a documented type."""
    assert set(body) == set(schema["properties"]), (body, schema)
    for name, value in body.items():
        options = schema["properties"][name].get("anyOf", [schema["properties"][name]])
        types = tuple(JSON_TYPES[o["type"]] for o in options if o.get("type") != "null")
        nullable = any(o.get("type") == "null" for o in options)
        assert isinstance(value, types) or (value is None and nullable), (name, value, options)


def test_views_encoded_without_their_models_are_the_documented_ones(
    http: httpx.Client,
) -> None:
    """The views the order flow reads (customer, basket, order, saga, shopping list, invoice,
    the ``{id}`` of a creation) are encoded without their response models, for speed: their
    bodies still are what /openapi.json documents."""
    schemas = json_of(http.get("/openapi.json"))["components"]["schemas"]
    shop = Shopper(http)
    customer = shop.customer()
    conforms(json_of(http.get(f"/api/customers/{customer}")), schemas["CustomerView"])
    conforms({"id": customer}, schemas["Created"])
    store, product = shop.store_with_product(price=300)
    basket = shop.basket(customer, product, quantity=1)
    held = json_of(http.get(f"/api/baskets/{basket}"))
    conforms(held, schemas["BasketView"])
    assert len(held["items"]) == 1
    conforms(held["items"][0], schemas["ItemView"])
    shop.checkout(basket, shop.payment(customer, 300))
    order = shop.order_when(basket, "approved")
    conforms(order, schemas["OrderView"])
    conforms(shop.saga_when(basket, "completed"), schemas["SagaView"])
    shopping = shop.shopping(order["shoppingId"])
    conforms(shopping, schemas["ShoppingListView"])
    assert (shopping["orderId"], shopping["botId"]) == (basket, None)
    assert shopping["stops"][0]["storeId"] == store
    shop.ship(order["shoppingId"])
    assert shop.shopping(order["shoppingId"])["botId"] == "bot-7"
    invoice = shop.pay_invoice(basket)
    conforms(invoice, schemas["InvoiceView"])
    assert invoice == {
        "id": basket,
        "orderId": basket,
        "paymentId": order["paymentId"],
        "amount": 300,
        "status": "issued",
    }


def test_customers(http: httpx.Client) -> None:
    shop = Shopper(http)
    id = shop.customer("Ada", "+1555")
    assert isinstance(id, str)
    assert json_of(http.get(f"/api/customers/{id}")) == {
        "id": id,
        "name": "Ada",
        "smsNumber": "+1555",
        "enabled": True,
    }
    json_of(http.put(f"/api/customers/{id}/change-sms", json={"smsNumber": "+1666"}), 204)
    json_of(http.put(f"/api/customers/{id}/disable"), 204)
    assert error(http.put(f"/api/customers/{id}/disable"), 409) == "conflict"
    customer = json_of(http.get(f"/api/customers/{id}"))
    assert (customer["smsNumber"], customer["enabled"]) == ("+1666", False)
    json_of(http.put(f"/api/customers/{id}/enable"), 204)
    assert error(http.get(f"/api/customers/{UNKNOWN}"), 404) == "not_found"
    assert error(http.put(f"/api/customers/{UNKNOWN}/enable"), 404) == "not_found"
    assert error(http.post("/api/customers", json={"name": "Ada"}), 422) == "invalid_request"


def test_stores_and_products(http: httpx.Client) -> None:
    shop = Shopper(http)
    store, product = shop.store_with_product(price=500, name="Cup")
    assert json_of(http.get(f"/api/stores/{store}")) == {
        "id": store,
        "name": "Corner",
        "location": "Main St",
        "participating": True,
    }
    assert store in [s["id"] for s in json_of(http.get("/api/stores/participating"))]
    json_of(http.put(f"/api/stores/{store}/rebrand", json={"name": "Corner & Co"}), 204)
    assert error(http.put(f"/api/stores/{store}/participating"), 409) == "conflict"
    json_of(http.delete(f"/api/stores/{store}/participating"), 204)
    assert store not in [s["id"] for s in json_of(http.get("/api/stores/participating"))]
    assert store in [s["id"] for s in json_of(http.get("/api/stores"))]

    json_of(http.put(f"/api/stores/products/{product}/decreasePrice", json={"price": 100}), 204)
    json_of(
        http.put(
            f"/api/stores/products/{product}/rebrand", json={"name": "Big cup", "description": "d"}
        ),
        204,
    )
    assert json_of(http.get(f"/api/stores/{store}/products")) == [
        {
            "id": product,
            "storeId": store,
            "name": "Big cup",
            "description": "d",
            "sku": "SKU-Cup",
            "price": 400,
        }
    ]
    too_much = http.put(f"/api/stores/products/{product}/decreasePrice", json={"price": 400})
    assert error(too_much, 409) == "conflict"
    json_of(http.delete(f"/api/stores/products/{product}"), 204)
    assert error(http.get(f"/api/stores/products/{product}"), 404) == "not_found"
    assert error(http.delete(f"/api/stores/products/{product}"), 409) == "conflict"
    assert error(http.get(f"/api/stores/{UNKNOWN}/products"), 404) == "not_found"
    assert error(http.put(f"/api/stores/products/{UNKNOWN}/increasePrice", json={"price": 1}), 404)
    new_product = {"name": "x", "sku": "y", "price": 1}
    assert error(http.post(f"/api/stores/{UNKNOWN}/products", json=new_product), 404)
    assert error(http.post(f"/api/stores/{store}/products", json={**new_product, "price": -5}), 422)
    assert error(
        http.post(f"/api/stores/{store}/products", json={**new_product, "price": 1.5}), 422
    )


def test_baskets(http: httpx.Client) -> None:
    shop = Shopper(http)
    customer = shop.customer()
    store, product = shop.store_with_product(price=300)
    basket = shop.basket(customer, product, quantity=3)
    assert error(
        http.put(f"/api/baskets/{basket}/removeItem", json={"productId": product, "quantity": 4}),
        409,
    )
    json_of(
        http.put(f"/api/baskets/{basket}/removeItem", json={"productId": product, "quantity": 1}),
        204,
    )
    assert json_of(http.get(f"/api/baskets/{basket}")) == {
        "id": basket,
        "customerId": customer,
        "items": [
            {
                "productId": product,
                "storeId": store,
                "productName": "Mug",
                "price": 300,
                "quantity": 2,
            }
        ],
        "status": "open",
    }
    json_of(
        http.put(f"/api/baskets/{basket}/removeItem", json={"productId": product, "quantity": 2}),
        204,
    )
    # checkout of an empty basket is refused
    assert (
        error(http.put(f"/api/baskets/{basket}/checkout", json={"paymentId": "p"}), 409)
        == "conflict"
    )
    assert error(
        http.put(f"/api/baskets/{basket}/addItem", json={"productId": UNKNOWN, "quantity": 1}), 404
    )
    assert error(
        http.put(f"/api/baskets/{basket}/addItem", json={"productId": product, "quantity": 0}), 422
    )
    json_of(http.delete(f"/api/baskets/{basket}"), 204)
    assert json_of(http.get(f"/api/baskets/{basket}"))["status"] == "canceled"
    assert error(http.delete(f"/api/baskets/{basket}"), 409) == "conflict"
    assert error(http.get(f"/api/baskets/{UNKNOWN}"), 404) == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/api/ordering/{}",
        "/api/depot/shopping/{}",
        "/api/payments/invoices/{}",
        "/api/search/orders/{}",
        "/api/sagas/{}",
    ],
)
def test_unknown_ids_are_404(http: httpx.Client, path: str) -> None:
    assert error(http.get(path.format(UNKNOWN)), 404) == "not_found"


@pytest.mark.parametrize(
    ("method", "path", "content"),
    [
        ("POST", "/api/customers", b"{not json"),
        ("POST", "/api/customers", b"[]"),
        ("POST", "/api/customers", b"null"),
        ("POST", "/api/customers", b'{"name": "a", "smsNumber": "1", "extra": 1}'),
        ("POST", "/api/customers", b'{"name": "' + b"a" * 10_000 + b'", "smsNumber": "1"}'),
        ("POST", "/api/payments", b'{"customerId": "c", "amount": "ten"}'),
        ("POST", "/api/baskets", b"{}"),
        ("POST", "/api/search/orders", b'{"status": "shipped"}'),
        ("POST", "/api/search/orders", b'{"after": "yesterday"}'),
        ("POST", "/api/search/orders", b'{"limit": 100000}'),
        ("POST", "/api/search/orders", b'{"customerName": ""}'),
        ("POST", "/api/search/orders", b'{"customerName": "' + b"a" * 201 + b'"}'),
        ("PUT", "/api/depot/shopping/x/assign", b'{"botId": 7}'),
        ("GET", "/api/notifications", b""),
    ],
)
def test_malformed_input_is_422(http: httpx.Client, method: str, path: str, content: bytes) -> None:
    headers = {"content-type": "application/json"}
    assert (
        error(http.request(method, path, content=content, headers=headers), 422)
        == "invalid_request"
    )


def test_notifications_and_search_of_a_stranger_are_empty(http: httpx.Client) -> None:
    assert json_of(http.get("/api/notifications", params={"customerId": UNKNOWN})) == []
    assert json_of(http.post("/api/search/orders", json={"customerId": UNKNOWN})) == {"orders": []}


def test_a_body_over_a_mebibyte_is_refused_with_413(http: httpx.Client) -> None:
    big = b'{"name": "' + b"a" * (1 << 20) + b'", "smsNumber": "1"}'
    headers = {"content-type": "application/json"}
    assert error(http.post("/api/customers", content=big, headers=headers), 413) == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no content-length: counted as it streams
        yield b'{"name": "'
        for _ in range(20):
            yield b"a" * 65536
        yield b'", "smsNumber": "1"}'

    streamed = http.post("/api/customers", content=chunks(), headers=headers)
    assert error(streamed, 413) == "body_too_large"
    assert json_of(http.post("/api/customers", json={"name": "a", "smsNumber": "1"}), 201)


def test_metrics_count_the_services_appends(http: httpx.Client) -> None:
    def appends(text: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith('streamsource_store_appends_total{backend="sqlite"}')
        )

    before = appends(http.get("/metrics").text)
    assert http.post("/api/customers", json={"name": "Ada", "smsNumber": "555"}).status_code == 201
    answer = http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert appends(answer.text) > before  # the customer's registration was an append
    assert "/metrics" not in http.get("/openapi.json").json()["paths"]
