"""``streamsource mall load``: shoppers driving a running mall over HTTP, and what it measured.

Each client is a shopper in a loop: a basket with one to three products, a payment for its
total, checkout; then it waits for the order's saga to end (the measured checkout-to-approved
time runs from the client's clock at checkout to the saga's completion in its history, the
server's clock, so the shopper on the mall's machine, as here), has a bot shop the list, pays
the invoice and waits for the order to complete. With ``rate`` the shoppers start orders on a
fixed schedule (open loop: a late order does not delay the next one's start time), else as
fast as they can.

A shopper reads the saga rather than the order to learn that its order was approved: the
saga's end is the approval (its last step), its history has the time the measurement needs
and its data the shopping list's id, so one read serves all three. Where it waits, it first
looks after the typical wait (:class:`Pacing`), then every ``POLL``: a look costs the mall
about what any request does, and the measured time does not depend on when the shopper looks.

The shoppers share one event loop, each with a keep-alive connection per mall process
(:mod:`.client`); setting up the shop uses the standard library's HTTP client. A mall split
across several processes is given as all their URLs: each request goes to the process whose
``/openapi.json`` lists its service's paths (``/api/<service>/...``).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import uvloop

from .client import AsyncHttp

POLL = 0.05  # seconds between polls of an order's status (more often loads the server)
# Pacing: the first look's delay grows by UP after a first look too early and shrinks by
# DOWN after one in time, so that about UP / (UP + DOWN) of first looks find it done
UP = POLL / 8
DOWN = UP / 3
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
                return response.status, _decoded(data)
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


def _decoded(data: bytes) -> Any:
    """A JSON body, else its text (someone else's error page)."""
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data[:200].decode(errors="replace")


def service_of(path: str) -> str:
    """``/api/<service>``, the part of a path that names the service answering it."""
    return "/".join(path.split("/", 3)[:3])


def routes(urls: Sequence[str], timeout: float = 30.0) -> dict[str, str]:
    """Which of ``urls`` serves each service's paths, from each one's ``/openapi.json``."""
    owners: dict[str, str] = {}
    for url in urls:
        client = Http(url, timeout)
        try:
            status, spec = client.call("GET", "/openapi.json")
        finally:
            client.close()
        if status != 200 or not isinstance(spec, dict) or "paths" not in spec:
            raise LoadError(f"{url} is not a mall: GET /openapi.json gave {status}")
        for path in spec["paths"]:
            if path.startswith("/api/"):
                owners.setdefault(service_of(path), url)
    return owners


class Mall:
    """A shopper's connections to the mall: one per process, each request sent to the process
    that serves its path (all to the one URL when only one is given)."""

    def __init__(self, urls: str | Sequence[str], owners: dict[str, str] | None = None) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        if owners is None and len(self.urls) > 1:
            owners = routes(self.urls)
        self.owners = owners or {}
        self.connections = {url: Http(url) for url in self.urls}
        self.requests = 0  # sent, for the benchmark's cost per order

    def _to(self, path: str) -> Http:
        return self.connections[self.owners.get(service_of(path), self.urls[0])]

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        self.requests += 1
        return self._to(path).call(method, path, body)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        self.requests += 1
        return self._to(path).ok(method, path, body, status)

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()


class ShopperMall:
    """What :class:`Mall` is for ``set_up``, for a shopper on the event loop."""

    def __init__(self, urls: Sequence[str], owners: dict[str, str] | None) -> None:
        self.urls = list(urls)
        self.owners = owners or {}
        self.connections = {url: AsyncHttp(url) for url in self.urls}
        self.requests = 0  # sent, for the benchmark's cost per order

    def _to(self, path: str) -> AsyncHttp:
        return self.connections[self.owners.get(service_of(path), self.urls[0])]

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        self.requests += 1
        return await self._to(path).call(method, path, body)

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, data = await self.call(method, path, body)
        if got != status:
            raise LoadError(f"{method} {path}: {got} {data}")
        return data

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()


@dataclass
class Catalogue:
    customers: list[str]
    products: list[tuple[str, int]]  # (id, price)


def set_up(
    url: str | Sequence[str], customers: int = 20, stores: int = 5, products_per_store: int = 4
) -> Catalogue:
    """Customers, participating stores and their products (the shoppers' world)."""
    client = Mall(url)
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
    requests: int = 0  # HTTP requests the shoppers sent, polls included
    polls: int = 0  # of them, GETs repeated until an order (or its saga, invoice) moved on

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


class Pacing:
    """How long shoppers wait before they first look whether what they wait for is done, one
    delay per kind of wait, shared by the shoppers of a run and adapting to the mall's pace
    (a busy mall approves later). Looking at once and then every ``POLL`` took 3.3-4.9
    looks per order beyond the one each wait needs (a fifth of an order's requests)."""

    def __init__(self) -> None:
        self._first: dict[str, float] = {}

    def first(self, kind: str) -> float:
        return self._first.get(kind, 0.0)

    def looked(self, kind: str, in_time: bool) -> None:
        """The first look of a wait of ``kind`` found it done (``in_time``), or not yet."""
        first = self._first.get(kind, 0.0)
        self._first[kind] = max(0.0, first - DOWN) if in_time else first + UP


class Shopper:
    def __init__(
        self,
        mall: ShopperMall,
        world: Catalogue,
        result: Result,
        pacing: Pacing,
    ) -> None:
        self.http = mall
        self.world = world
        self.result = result
        self.pacing = pacing
        self.random = random.Random()
        self.polls = 0  # repeated GETs (the first GET of each wait is the shopper's read)

    async def order(self) -> None:
        customer = self.random.choice(self.world.customers)
        started = await self.http.ok("POST", "/api/baskets", {"customerId": customer}, 201)
        basket = started["id"]
        total = 0
        for product, price in self.random.sample(self.world.products, self.random.randint(1, 3)):
            quantity = self.random.randint(1, 3)
            await self.http.ok(
                "PUT",
                f"/api/baskets/{basket}/addItem",
                {"productId": product, "quantity": quantity},
                204,
            )
            total += price * quantity
        body = {"customerId": customer, "amount": total}
        payment = (await self.http.ok("POST", "/api/payments", body, 201))["id"]
        checkout = time.time()
        await self.http.ok("PUT", f"/api/baskets/{basket}/checkout", {"paymentId": payment}, 204)
        saga = await self._until("saga", f"/api/sagas/{basket}", lambda s: s["status"] != "running")
        done = [h["at"] for h in saga["history"] if h["event"] == "completed"]
        if saga["status"] != "completed" or not done:
            raise LoadError(f"the saga of order {basket} is {saga['status']}: {saga['reason']}")
        shopping = saga["data"]["shoppingId"]
        await self.http.ok("PUT", f"/api/depot/shopping/{shopping}/assign", {"botId": "bot"}, 204)
        await self.http.ok("PUT", f"/api/depot/shopping/{shopping}/complete", status=204)
        await self._until("invoice", f"/api/payments/invoices/{basket}", lambda i: True)
        await self.http.ok("PUT", f"/api/payments/invoices/{basket}/pay", status=204)
        await self._until(
            "completed", f"/api/ordering/{basket}", lambda o: o["status"] == "completed"
        )
        self.result.completed += 1
        self.result.approved_latencies.append(float(done[0]) - checkout)

    async def _until(self, kind: str, path: str, done: Any) -> Any:
        """GET ``path`` until ``done`` says its body is what the shopper waits for (a 404
        meaning not there yet): first after the typical wait of this ``kind``, then every
        ``POLL``."""
        deadline = time.monotonic() + ORDER_TIMEOUT
        await asyncio.sleep(self.pacing.first(kind))
        first = True
        while True:
            if not first:
                self.polls += 1
            status, body = await self.http.call("GET", path)
            in_time = status == 200 and done(body)
            if first:
                self.pacing.looked(kind, in_time)
                first = False
            if in_time:
                return body
            if status not in (200, 404):
                raise LoadError(f"GET {path}: {status} {body}")
            if time.monotonic() > deadline:
                raise LoadError(f"GET {path}: not done after {ORDER_TIMEOUT}s")
            await asyncio.sleep(POLL)

    async def run(self, until: float, interval: float | None, offset: float) -> None:
        next_start = time.monotonic() + offset
        while True:
            if interval is not None:
                wait = next_start - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                next_start += interval
            if time.monotonic() >= until:
                return
            self.result.started += 1
            try:
                await self.order()
            except (LoadError, OSError) as error:
                self.result.failed += 1
                if len(self.result.errors) < 5:
                    self.result.errors.append(str(error) or type(error).__name__)

    def close(self) -> None:
        self.http.close()


def run_load(
    url: str | Sequence[str],
    clients: int,
    duration: float,
    rate: float | None = None,
    world: Catalogue | None = None,
) -> Result:
    """Drive the mall at ``url`` (or at the URLs of its processes) with ``clients`` shoppers
    for ``duration`` seconds (orders still in flight then are finished and counted); at
    ``rate`` orders/s if given. The shoppers share one event loop in this thread."""
    urls = [url] if isinstance(url, str) else list(url)
    owners = routes(urls) if len(urls) > 1 else None
    world = world or set_up(urls)
    return uvloop.run(_shop(urls, owners, world, clients, duration, rate))


async def _shop(
    urls: list[str],
    owners: dict[str, str] | None,
    world: Catalogue,
    clients: int,
    duration: float,
    rate: float | None,
) -> Result:
    result, pacing = Result(), Pacing()
    shoppers = [Shopper(ShopperMall(urls, owners), world, result, pacing) for _ in range(clients)]
    interval = clients / rate if rate else None
    start = time.monotonic()
    until = start + duration
    tasks = [
        asyncio.create_task(s.run(until, interval, (interval or 0) * i / clients))
        for i, s in enumerate(shoppers)
    ]
    _, late = await asyncio.wait(tasks, timeout=duration + ORDER_TIMEOUT + 30)
    for task in late:  # a shopper stuck beyond every deadline: its order counts as failed
        task.cancel()
        result.failed += 1
    await asyncio.wait(tasks)
    bugs = [t.exception() for t in tasks if not t.cancelled() and t.exception() is not None]
    if bugs:  # a shopper's own, not an answer of the mall's: the run says so
        raise bugs[0]  # type: ignore[misc]
    result.elapsed = time.monotonic() - start
    for shopper in shoppers:
        result.requests += shopper.http.requests
        result.polls += shopper.polls
        shopper.close()
    return result
