"""Two clerks at once: exactly one append wins, the other retries on fresh state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import streamsource as ss
from examples.concurrency.app import Product, add_product, two_clerks_at_once


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ss.EventStore]:
    url = f"sqlite:///{tmp_path}/shop.db" if request.param == "sqlite" else "memory://"
    with ss.open_store(url) as opened:
        yield opened


def test_exactly_one_clerk_wins_and_the_other_retries_on_fresh_state(
    store: ss.EventStore,
) -> None:
    add_product(store, "p1", 1000)
    results = two_clerks_at_once(store, "p1", raises=(100, 50))
    assert [r.error for r in results] == [None, None]
    losers = [r for r in results if r.conflicts]
    winners = [r for r in results if not r.conflicts]
    assert len(losers) == 1 and len(winners) == 1
    loser, winner = losers[0], winners[0]
    assert winner.loaded_versions == [0]
    assert loser.loaded_versions == [0, 1]  # retried on the state the winner wrote
    (conflict,) = loser.conflicts
    assert (conflict.stream, conflict.expected, conflict.actual) == ("stockitem-p1", 0, 1)

    final = ss.Repository(store, Product).load("p1")
    assert final.price == 1150  # no lost update
    clerks = [e.metadata.get("changed_by") for e in store.read_stream("stockitem-p1")]
    assert clerks == [None, winner.name, loser.name]


def test_without_a_retry_the_loser_sees_wrong_expected_version(store: ss.EventStore) -> None:
    add_product(store, "p1", 1000)
    products = ss.Repository(store, Product)
    alice, bob = products.load("p1"), products.load("p1")
    alice.raise_price(100)
    bob.raise_price(50)
    products.save(alice)
    with pytest.raises(ss.WrongExpectedVersion, match="expected version 0, but it is at version 1"):
        products.save(bob)
    assert products.load("p1").price == 1100
