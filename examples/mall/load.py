"""``streamsource mall load``: shoppers driving a running mall over HTTP, and what it measured.

Each client is a shopper in a loop: a basket with one to three products, a payment for its
total, checkout; then it waits for the order to be approved (the saga's work: the measured
checkout-to-approved time, from the client's clock at checkout to the saga's completion in
its history, so the shopper on the mall's machine, as here), has a bot shop the list, pays
the invoice and waits for the order to complete. With ``rate`` the shoppers start orders on a fixed schedule (open loop: a late
order does not delay the next one's start time), else as fast as they can.

Standard library HTTP (one keep-alive connection per shopper), so that the command needs
only the ``web`` extra the server needs anyway.
"""

from __future__ import annotations

import http.client
import json
import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

POLL = 0.05  # seconds between polls of an order's status (more often loads the server)
ORDER_TIMEOUT = 60.0  # an order not done by then counts as failed


class LoadError(RuntimeError):
    """The mall answered something a shopper cannot go on from."""


class Http:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if payload is not None else {}
        for attempt in range(2):
            try:
                self.connection.request(method, path, body=payload, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                return response.status, json.loads(data) if data else None
            except (ConnectionError, http.client.HTTPException):
                self.connection.close()
                self.connection = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout
                )
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, data = self.call(method, path, body)
        if got != status:
            raise LoadError(f"{method} {path}: {got} {data}")
        return data

    def close(self) -> None:
        self.connection.close()


@dataclass
class Catalogue:
    customers: list[str]
    products: list[tuple[str, int]]  # (id, price)


def set_up(
    url: str, customers: int = 20, stores: int = 5, products_per_store: int = 4
) -> Catalogue:
    """Customers, participating stores and their products (the shoppers' world)."""
    client = Http(url)
    try:
        people = [
            client.ok(
                "POST", "/api/customers", {"name": f"shopper {i}", "smsNumber": f"+1555{i:04}"}, 201
            )["id"]
            for i in range(customers)
        ]
        products = []
        for s in range(stores):
            store = client.ok(
                "POST", "/api/stores", {"name": f"store {s}", "location": "mall"}, 201
            )["id"]
            client.ok("PUT", f"/api/stores/{store}/participating", status=204)
            for p in range(products_per_store):
                price = 100 * (p + 1 + s)
                body = {"name": f"item {s}.{p}", "sku": f"S{s}P{p}", "price": price}
                product = client.ok("POST", f"/api/stores/{store}/products", body, 201)["id"]
                products.append((str(product), price))
        return Catalogue([str(p) for p in people], products)
    finally:
        client.close()


@dataclass
class Result:
    started: int = 0
    completed: int = 0
    failed: int = 0
    approved_latencies: list[float] = field(default_factory=list)  # seconds
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def completed_per_second(self) -> float:
        return self.completed / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        values = sorted(self.approved_latencies)
        if not values:
            return float("nan")
        if len(values) == 1:
            return values[0]
        return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


class Shopper:
    def __init__(self, url: str, world: Catalogue, result: Result, lock: threading.Lock) -> None:
        self.http = Http(url)
        self.world = world
        self.result = result
        self.lock = lock
        self.random = random.Random()

    def order(self) -> None:
        customer = self.random.choice(self.world.customers)
        basket = self.http.ok("POST", "/api/baskets", {"customerId": customer}, 201)["id"]
        total = 0
        for product, price in self.random.sample(self.world.products, self.random.randint(1, 3)):
            quantity = self.random.randint(1, 3)
            self.http.ok(
                "PUT",
                f"/api/baskets/{basket}/addItem",
                {"productId": product, "quantity": quantity},
                204,
            )
            total += price * quantity
        payment = self.http.ok(
            "POST", "/api/payments", {"customerId": customer, "amount": total}, 201
        )["id"]
        checkout = time.time()
        self.http.ok("PUT", f"/api/baskets/{basket}/checkout", {"paymentId": payment}, 204)
        order = self._until(f"/api/ordering/{basket}", lambda o: o["status"] != "pending")
        if order["status"] != "approved":
            raise LoadError(f"order {basket} was {order['status']}")
        shopping = order["shoppingId"]
        self.http.ok("PUT", f"/api/depot/shopping/{shopping}/assign", {"botId": "bot"}, 204)
        self.http.ok("PUT", f"/api/depot/shopping/{shopping}/complete", status=204)
        self._until(f"/api/payments/invoices/{basket}", lambda i: True)
        self.http.ok("PUT", f"/api/payments/invoices/{basket}/pay", status=204)
        self._until(f"/api/ordering/{basket}", lambda o: o["status"] == "completed")
        approved = self._approved_at(basket) - checkout  # the saga is surely done by now
        with self.lock:
            self.result.completed += 1
            self.result.approved_latencies.append(approved)

    def _approved_at(self, order: str) -> float:
        """When the saga approved the order (its history's time, the server's clock): polls
        every POLL only to move on, the measured time does not depend on them."""
        saga = self.http.ok("GET", f"/api/sagas/{order}")
        done = [h["at"] for h in saga["history"] if h["event"] == "completed"]
        if not done:
            raise LoadError(f"the saga of order {order} is {saga['status']}")
        return float(done[0])

    def _until(self, path: str, done: Any) -> Any:
        deadline = time.monotonic() + ORDER_TIMEOUT
        while True:
            status, body = self.http.call("GET", path)
            if status == 200 and done(body):
                return body
            if status not in (200, 404):
                raise LoadError(f"GET {path}: {status} {body}")
            if time.monotonic() > deadline:
                raise LoadError(f"GET {path}: not done after {ORDER_TIMEOUT}s")
            time.sleep(POLL)

    def run(self, until: float, interval: float | None, offset: float) -> None:
        next_start = time.monotonic() + offset
        while True:
            if interval is not None:
                wait = next_start - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                next_start += interval
            if time.monotonic() >= until:
                return
            with self.lock:
                self.result.started += 1
            try:
                self.order()
            except (LoadError, OSError) as error:
                with self.lock:
                    self.result.failed += 1
                    if len(self.result.errors) < 5:
                        self.result.errors.append(str(error))

    def close(self) -> None:
        self.http.close()


def run_load(
    url: str,
    clients: int,
    duration: float,
    rate: float | None = None,
    world: Catalogue | None = None,
) -> Result:
    """Drive the mall at ``url`` with ``clients`` shoppers for ``duration`` seconds (orders
    still in flight then are finished and counted); at ``rate`` orders/s if given."""
    world = world or set_up(url)
    result, lock = Result(), threading.Lock()
    shoppers = [Shopper(url, world, result, lock) for _ in range(clients)]
    interval = clients / rate if rate else None
    start = time.monotonic()
    until = start + duration
    threads = [
        threading.Thread(
            target=s.run, args=(until, interval, (interval or 0) * i / clients), daemon=True
        )
        for i, s in enumerate(shoppers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + ORDER_TIMEOUT + 30)
    result.elapsed = time.monotonic() - start
    for shopper in shoppers:
        shopper.close()
    return result
