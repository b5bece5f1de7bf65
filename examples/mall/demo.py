"""The mall's section of ``streamsource demo``: one order from basket to completed, and one
rejected with its compensation, through the real HTTP API of the mall in this process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from streamsource.cli.listener import tcp_listener

from .app import Mall
from .load import Http


class Trail(Protocol):
    def text(self, line: str) -> None: ...

    def table(
        self, title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
    ) -> None: ...


def run_demo(directory: Path, out: Trail) -> None:
    import uvicorn

    # the Kafka clients' retries (a slow first answer of the broker just started) are not
    # the demo's story: its output stays the tables
    logging.getLogger("streamsource.bridge.kafka").setLevel(logging.ERROR)

    mall = Mall(directory)
    listener = tcp_listener("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(mall.asgi, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        _until(lambda: server.started, "the mall to start")
        http = Http(f"http://127.0.0.1:{listener.getsockname()[1]}")
        out.text(
            f"all nine services in this process, their stores under {directory}, their"
            f" messages through the broker it started at {mall.broker_address}"
        )
        _completed_order(http, out)
        _rejected_order(http, out)
        http.close()
    finally:
        server.should_exit = True
        thread.join(30)


def _completed_order(http: Http, out: Trail) -> None:
    customer = http.ok("POST", "/api/customers", {"name": "Ada", "smsNumber": "+15550100"}, 201)
    store = http.ok("POST", "/api/stores", {"name": "Corner shop", "location": "Main St"}, 201)
    http.ok("PUT", f"/api/stores/{store['id']}/participating", status=204)
    mug = {"name": "Mug", "sku": "MUG-1", "price": 800}
    product = http.ok("POST", f"/api/stores/{store['id']}/products", mug, 201)["id"]
    basket = http.ok("POST", "/api/baskets", {"customerId": customer["id"]}, 201)["id"]
    http.ok("PUT", f"/api/baskets/{basket}/addItem", {"productId": product, "quantity": 2}, 204)
    payment = {"customerId": customer["id"], "amount": 1600}
    payment_id = http.ok("POST", "/api/payments", payment, 201)["id"]
    rows: list[tuple[str, str]] = []

    def status() -> str:
        got, order = http.call("GET", f"/api/ordering/{basket}")
        return str(order["status"]) if got == 200 else "(none yet)"

    http.ok("PUT", f"/api/baskets/{basket}/checkout", {"paymentId": payment_id}, 204)
    rows.append(("checkout: 2 mugs at 8.00, payment of 16.00", status()))
    order = _until(lambda: _order_if(http, basket, "approved"), "approval")
    rows.append(("saga: customer, shopping list, payment, shopping, approval", order["status"]))
    shopping = order["shoppingId"]
    http.ok("PUT", f"/api/depot/shopping/{shopping}/assign", {"botId": "bot-7"}, 204)
    http.ok("PUT", f"/api/depot/shopping/{shopping}/complete", status=204)
    _until(lambda: _order_if(http, basket, "ready"), "the order to be ready")
    rows.append(("bot-7 shops the list and completes it", "ready"))
    _until(lambda: http.call("GET", f"/api/payments/invoices/{basket}")[0] == 200, "invoice")
    http.ok("PUT", f"/api/payments/invoices/{basket}/pay", status=204)
    _until(lambda: _order_if(http, basket, "completed"), "completion")
    rows.append(("the invoice is paid", "completed"))
    out.table(f"Order {basket[:8]}: basket to completed", ["what happened", "order"], rows)
    notes = _until(
        lambda: _notes_if(http, customer["id"], 3), "the notifications of the completed order"
    )
    out.table(
        "Notifications sent to Ada",
        ["kind", "order"],
        [(n["kind"], n["orderId"][:8]) for n in notes],
    )


def _rejected_order(http: Http, out: Trail) -> None:
    customer = http.ok("POST", "/api/customers", {"name": "Bob", "smsNumber": "+15550101"}, 201)
    store = http.ok("POST", "/api/stores", {"name": "Tea house", "location": "Side St"}, 201)
    tea = {"name": "Tea", "sku": "TEA-1", "price": 1200}
    product = http.ok("POST", f"/api/stores/{store['id']}/products", tea, 201)["id"]
    basket = http.ok("POST", "/api/baskets", {"customerId": customer["id"]}, 201)["id"]
    http.ok("PUT", f"/api/baskets/{basket}/addItem", {"productId": product, "quantity": 1}, 204)
    payment = {"customerId": customer["id"], "amount": 1000}  # below the 12.00 total
    payment_id = http.ok("POST", "/api/payments", payment, 201)["id"]
    http.ok("PUT", f"/api/baskets/{basket}/checkout", {"paymentId": payment_id}, 204)
    _until(lambda: _order_if(http, basket, "rejected"), "the rejection")
    saga = _until(lambda: _saga_if(http, basket, "compensated"), "the compensation")
    rows = [
        (entry["step"] or "", entry["event"], entry["detail"])
        for entry in saga["history"]
        if entry["event"] != "started"
    ]
    out.table(
        f"Order {basket[:8]}: a payment of 10.00 for 12.00 of tea; the saga compensates",
        ["step", "what happened", "detail"],
        rows,
    )


def _order_if(http: Http, id: str, status: str) -> dict[str, Any] | None:
    got, order = http.call("GET", f"/api/ordering/{id}")
    return order if got == 200 and order["status"] == status else None


def _saga_if(http: Http, id: str, status: str) -> dict[str, Any] | None:
    got, saga = http.call("GET", f"/api/sagas/{id}")
    return saga if got == 200 and saga["status"] == status else None


def _notes_if(http: Http, customer: str, count: int) -> list[dict[str, Any]] | None:
    notes: list[dict[str, Any]] = http.ok("GET", f"/api/notifications?customerId={customer}")
    return notes if len(notes) >= count else None


def _until(check: Callable[[], Any], what: str, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the mall demo gave up waiting for {what}")
        time.sleep(0.02)
    return value
