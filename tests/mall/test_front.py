"""The mall's front (``examples/mall/platform/routes.py``) answers as its FastAPI app does:
the same requests, served by each, get the same statuses and bodies (ids aside), and what
the front does not take reaches the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
from examples.mall.app import Mall
from examples.mall.platform.routes import Front
from fastapi import FastAPI, Response
from fastapi.routing import APIRoute

UNKNOWN = "00000000-0000-0000-0000-000000000000"
JSON = {"content-type": "application/json"}


@pytest.fixture
async def mall(tmp_path: Path) -> AsyncIterator[Mall]:
    # no transports started: commands write their stores and outboxes, nothing is delivered
    mall = Mall(tmp_path, transport="local")
    try:
        yield mall
    finally:
        mall.close()


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mall")


def comparable(response: httpx.Response) -> tuple[int, Any]:
    """Status and body, with what differs between two servings of one request left out:
    a new id, and the wording of a validation error (its location is kept)."""
    if not response.content:
        return response.status_code, None
    body = response.json()
    if response.status_code == 201:
        return 201, sorted(body)
    if response.status_code == 422:
        assert body["detail"], body
        return 422, (body["error"], sorted(tuple(p["loc"][:2]) for p in body["detail"]))
    return response.status_code, body


async def test_the_front_serves_the_orders_routes(mall: Mall) -> None:
    served = {
        (method, route.path)
        for routes in mall.asgi.table.values()
        for _, r in routes
        if r is not None
        for route in mall.app.router.routes
        if isinstance(route, APIRoute) and route.endpoint is r.endpoint
        for method in route.methods or ()
    }
    assert {
        ("POST", "/api/baskets"),
        ("PUT", "/api/baskets/{id}/addItem"),
        ("PUT", "/api/baskets/{id}/checkout"),
        ("POST", "/api/payments"),
        ("GET", "/api/sagas/{id}"),
        ("PUT", "/api/depot/shopping/{id}/assign"),
        ("PUT", "/api/depot/shopping/{id}/complete"),
        ("GET", "/api/payments/invoices/{id}"),
        ("PUT", "/api/payments/invoices/{id}/pay"),
        ("GET", "/api/ordering/{id}"),
    } <= served
    # queries and bodies FastAPI serialises by their models stay with the app
    assert ("GET", "/api/notifications") not in served
    assert ("POST", "/api/search/orders") not in served
    assert ("GET", "/api/stores/{id}") not in served


async def test_the_front_answers_as_the_app_does(mall: Mall) -> None:
    async with client(mall.asgi) as front, client(mall.app) as app:
        customer = (await app.post("/api/customers", json={"name": "Ada", "smsNumber": "1"})).json()
        basket = (await app.post("/api/baskets", json={"customerId": customer["id"]})).json()
        customer_id, basket_id = customer["id"], basket["id"]
        requests: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", "/api/customers", {"json": {"name": "Bo", "smsNumber": "2"}}),
            ("POST", "/api/customers", {"content": b'{"name": "Cy", "smsNumber": "3"}'}),
            ("POST", "/api/customers", {"content": b"{not json", "headers": JSON}),
            ("POST", "/api/customers", {"content": b"", "headers": JSON}),
            ("POST", "/api/customers", {"content": b"null", "headers": JSON}),
            ("POST", "/api/customers", {"content": b"[]", "headers": JSON}),
            ("POST", "/api/customers", {"json": {"name": "a", "smsNumber": "1", "extra": 1}}),
            ("POST", "/api/customers", {"json": {"name": "a" * 10_000, "smsNumber": "1"}}),
            ("POST", "/api/customers", {"json": {"name": "a"}}),
            (
                "POST",
                "/api/customers",
                {"content": b'{"name": "a"}', "headers": {"content-type": "text/plain"}},
            ),
            ("POST", "/api/payments", {"json": {"customerId": customer_id, "amount": "ten"}}),
            ("GET", f"/api/customers/{customer_id}", {}),
            ("GET", f"/api/customers/{UNKNOWN}", {}),
            ("PUT", f"/api/customers/{UNKNOWN}/enable", {}),
            ("PUT", f"/api/baskets/{basket_id}/checkout", {"json": {"paymentId": "p"}}),
            (
                "PUT",
                f"/api/baskets/{basket_id}/addItem",
                {"json": {"productId": "x", "quantity": 0}},
            ),
            ("GET", f"/api/baskets/{basket_id}", {}),
            ("GET", f"/api/ordering/{basket_id}", {}),
            ("GET", f"/api/sagas/{basket_id}", {}),
            ("PUT", f"/api/depot/shopping/{UNKNOWN}/assign", {"json": {"botId": 7}}),
            ("PUT", f"/api/depot/shopping/{UNKNOWN}/complete", {}),
            ("GET", f"/api/payments/invoices/{UNKNOWN}", {}),
            ("PATCH", f"/api/customers/{customer_id}", {}),
            ("GET", "/api/customers/", {}),
            ("GET", "/api/nowhere", {}),
            ("GET", "/api/stores/participating", {}),
        ]
        for method, path, options in requests:
            by_app = await app.request(method, path, **options)
            by_front = await front.request(method, path, **options)
            assert comparable(by_front) == comparable(by_app), (method, path, by_front.text)
            assert by_front.headers.get("content-type") == by_app.headers.get("content-type")
        # a command the state refuses, once each way: a basket cancelled, then again
        assert (await front.delete(f"/api/baskets/{basket_id}")).status_code == 204
        again = await front.delete(f"/api/baskets/{basket_id}")
        assert comparable(again) == comparable(await app.delete(f"/api/baskets/{basket_id}"))
        assert again.status_code == 409 and again.json()["error"] == "conflict"


async def test_a_body_over_the_limit_is_413_before_it_reaches_a_route(mall: Mall) -> None:
    big = b'{"name": "' + b"a" * (1 << 20) + b'", "smsNumber": "1"}'
    async with client(mall.asgi) as front:
        refused = await front.post("/api/customers", content=big, headers=JSON)
        assert refused.status_code == 413 and refused.json()["error"] == "body_too_large"
        listed = await front.get("/openapi.json")
        assert "/api/baskets/{id}/checkout" in listed.json()["paths"]


async def test_a_route_the_front_does_not_serve_still_wins_where_it_comes_first() -> None:
    # as in Starlette, the first route that matches a path serves it: the front must not
    # take /things/special for /things/{id} when the app declares /things/special first
    app = FastAPI()

    class Thing(pydantic.BaseModel):
        name: str

    @app.get("/things/special", response_model=Thing)
    def special() -> Thing:
        return Thing(name="special")

    @app.get("/things/{id}")
    def thing(id: str) -> Response:
        return Response(id.encode(), media_type="text/plain")

    front = Front(app)
    assert front.lookup("GET", "/things/7") is not None  # the front serves this one
    assert front.lookup("GET", "/things/special") is None
    async with client(front) as http:
        assert (await http.get("/things/special")).json() == {"name": "special"}
        assert (await http.get("/things/7")).text == "7"
