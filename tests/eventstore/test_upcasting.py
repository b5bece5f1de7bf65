"""Typed events with schema versions: old stored shapes are upcast to the current class."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

import streamsource as ss

events = ss.EventRegistry()


@events.event("Deposited", version=3)
class Deposited(msgspec.Struct, frozen=True):
    amount_cents: int
    currency: str


@events.upcaster("Deposited", from_version=1)
def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    # v1 stored whole euros as "amount"
    return {"amount_cents": data["amount"] * 100}


@events.upcaster("Deposited", from_version=2)
def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "currency": "EUR"}


class Wallet(ss.Aggregate):
    registry = events

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.deposits: list[Deposited] = []

    def deposit(self, cents: int, currency: str) -> None:
        self.record(Deposited(amount_cents=cents, currency=currency))

    @ss.applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.deposits.append(event)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ss.EventStore]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/store.db"
    with ss.open_store(url) as opened:
        yield opened


def test_old_events_are_upcast_through_the_chain_on_load(store: ss.EventStore) -> None:
    store.append(
        "wallet-w",
        [
            ss.NewEvent("Deposited", {"amount": 3}),  # no schema_version: version 1
            ss.NewEvent("Deposited", {"amount_cents": 250}, metadata={ss.SCHEMA_VERSION: 2}),
            ss.NewEvent(
                "Deposited",
                {"amount_cents": 99, "currency": "USD"},
                metadata={ss.SCHEMA_VERSION: 3},
            ),
        ],
    )
    wallet = ss.Repository(store, Wallet).load("w")
    assert wallet.deposits == [
        Deposited(300, "EUR"),
        Deposited(250, "EUR"),
        Deposited(99, "USD"),
    ]
    assert wallet.version == 2


def test_new_events_are_stored_with_the_current_schema_version(store: ss.EventStore) -> None:
    repository = ss.Repository(store, Wallet)
    wallet = repository.create("w")
    wallet.deposit(500, "CHF")
    repository.save(wallet)
    (stored,) = store.read_stream("wallet-w")
    assert stored.type == "Deposited"
    assert stored.data == {"amount_cents": 500, "currency": "CHF"}
    assert stored.metadata[ss.SCHEMA_VERSION] == 3
    assert [d.event for d in repository.history("w")] == [Deposited(500, "CHF")]


def test_a_missing_upcaster_step_names_the_versions(store: ss.EventStore) -> None:
    registry = ss.EventRegistry()

    @registry.event("Renamed", version=3)
    class Renamed(msgspec.Struct):
        name: str

    registry.add_upcaster("Renamed", 1, lambda data: data)  # 2 -> 3 is missing
    store.append("thing-1", [ss.NewEvent("Renamed", {"name": "x"})])
    (stored,) = store.read_stream("thing-1")
    with pytest.raises(
        ss.UnknownEventType, match="no upcaster for 'Renamed' from schema version 2 to 3"
    ):
        registry.decode_recorded(stored)


def test_an_event_from_newer_code_is_refused(store: ss.EventStore) -> None:
    store.append(
        "wallet-w",
        [ss.NewEvent("Deposited", {"amount_cents": 1}, metadata={ss.SCHEMA_VERSION: 4})],
    )
    with pytest.raises(ss.UnknownEventType, match="schema version 4, newer than"):
        ss.Repository(store, Wallet).load("w")


def test_an_unknown_stored_type_is_refused_on_load(store: ss.EventStore) -> None:
    store.append("wallet-w", [ss.NewEvent("Withdrawn", {"amount": 1})])
    with pytest.raises(ss.UnknownEventType, match="'Withdrawn' has no registered class"):
        ss.Repository(store, Wallet).load("w")


def test_stored_data_that_does_not_fit_the_class_is_a_data_error(store: ss.EventStore) -> None:
    store.append(
        "wallet-w",
        [ss.NewEvent("Deposited", {"amount_cents": "lots"}, metadata={ss.SCHEMA_VERSION: 3})],
    )
    with pytest.raises(ss.InvalidEventData, match="wallet-w") as caught:
        ss.Repository(store, Wallet).load("w")
    assert isinstance(caught.value, ss.DataError)


def test_a_second_upcaster_for_the_same_step_is_refused() -> None:
    with pytest.raises(ss.ProgrammingError, match="already has an upcaster from version 1"):
        events.add_upcaster("Deposited", 1, lambda data: data)
    with pytest.raises(ss.ProgrammingError, match="from_version must be an int >= 1"):
        events.add_upcaster("Deposited", 0, lambda data: data)


def test_module_level_decorators_use_the_default_registry() -> None:
    @ss.event("ToolkitTestPinged", version=2)
    class Pinged(msgspec.Struct):
        at: str

    @ss.upcaster("ToolkitTestPinged", from_version=1)
    def _add_at(data: dict[str, Any]) -> dict[str, Any]:
        return {"at": "unknown"}

    assert "ToolkitTestPinged" in ss.default_registry
    assert ss.default_registry.decode("ToolkitTestPinged", {}, 1) == Pinged(at="unknown")


def test_registering_a_class_under_a_new_name_is_a_rename() -> None:
    registry = ss.EventRegistry()

    @registry.event("FundsAdded")
    class MoneyIn(msgspec.Struct, frozen=True):
        amount: int

    registry.register(MoneyIn, "MoneyIn")
    assert registry.encode(MoneyIn(5))[0] == "MoneyIn"  # written under the new name
    assert registry.decode("FundsAdded", {"amount": 5}) == MoneyIn(5)  # old events still read
    assert registry.names() == ["FundsAdded", "MoneyIn"]
