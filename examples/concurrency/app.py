"""Optimistic concurrency: two clerks change the same product at the same moment.

Both clerks load the product at the same version, both change it, both save with that
version as the expected version. The store lets exactly one append through; the other gets
``WrongExpectedVersion`` and, through ``retry_on_conflict``, reloads the product and applies
its change again on the fresh state. No update is lost: with a CRUD "read, add, write back"
one of the two raises would silently vanish.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import msgspec

import streamsource as ss

stock_events = ss.EventRegistry()


@stock_events.event("ProductAdded")
class ProductAdded(msgspec.Struct, frozen=True):
    price: int


@stock_events.event("PriceRaised")
class PriceRaised(msgspec.Struct, frozen=True):
    by: int
    new_price: int


class Product(ss.Aggregate):
    """A product; each clerk raises its price by some amount."""

    registry = stock_events
    category = "stockitem"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.price = 0

    def add(self, price: int) -> None:
        self.record(ProductAdded(price=price))

    def raise_price(self, by: int) -> None:
        if by <= 0:
            raise ss.DomainError(f"a raise must be positive, not {by}")
        self.record(PriceRaised(by=by, new_price=self.price + by))

    @ss.applies(ProductAdded)
    def _added(self, event: ProductAdded) -> None:
        self.price = event.price

    @ss.applies(PriceRaised)
    def _raised(self, event: PriceRaised) -> None:
        self.price = event.new_price


@dataclass
class ClerkResult:
    """What happened to one clerk: the version each attempt loaded, and its conflicts."""

    name: str
    raise_by: int
    loaded_versions: list[int] = field(default_factory=list)
    conflicts: list[ss.WrongExpectedVersion] = field(default_factory=list)
    error: BaseException | None = None


def add_product(store: ss.EventStore, product_id: str, price: int) -> None:
    repository = ss.Repository(store, Product)
    product = repository.create(product_id)
    product.add(price)
    repository.save(product)


def two_clerks_at_once(
    store: ss.EventStore, product_id: str, raises: tuple[int, int] = (100, 50)
) -> list[ClerkResult]:
    """Run two clerks in threads; both load before either saves (a barrier makes sure)."""
    repository = ss.Repository(store, Product)
    both_loaded = threading.Barrier(2, timeout=30)
    results = [ClerkResult("alice", raises[0]), ClerkResult("bob", raises[1])]

    def clerk(result: ClerkResult) -> None:
        def attempt() -> None:
            product = repository.load(product_id)
            assert product.version is not None
            result.loaded_versions.append(product.version)
            if len(result.loaded_versions) == 1:
                both_loaded.wait()  # the race: both hold the same version now
            product.raise_price(result.raise_by)
            repository.save(product, metadata={"changed_by": result.name})

        try:
            ss.retry_on_conflict(
                attempt, attempts=3, on_conflict=lambda exc, _n: result.conflicts.append(exc)
            )
        except BaseException as exc:  # reported to the caller, not lost in the thread
            result.error = exc

    threads = [threading.Thread(target=clerk, args=(r,)) for r in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def run_demo(store: ss.EventStore, out: Any, product_id: str) -> None:
    add_product(store, product_id, 1000)
    results = two_clerks_at_once(store, product_id)
    for result in results:
        if result.error is not None:
            raise result.error
        if result.conflicts:
            out.text(
                f"{result.name}: save refused: {result.conflicts[0]}; "
                f"reloaded at version {result.loaded_versions[-1]} and applied +{result.raise_by} "
                "again"
            )
        else:
            out.text(
                f"{result.name}: loaded version {result.loaded_versions[0]}, "
                f"saved +{result.raise_by} first"
            )
    final = ss.Repository(store, Product).load(product_id)
    rows = [
        (
            e.version,
            e.type,
            e.data.get("by", ""),
            e.data.get("new_price", e.data.get("price")),
            e.metadata.get("changed_by", ""),
        )
        for e in store.read_stream(final.stream)
    ]
    out.table(f"stream {final.stream}", ["version", "event", "raise", "price", "clerk"], rows)
    out.text(f"final price {final.price} = 1000 + 100 + 50: no update was lost")
