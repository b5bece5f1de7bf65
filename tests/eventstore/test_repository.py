"""Repository: load/save with optimistic concurrency, retries, as-of loads, causation."""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import pytest

import streamsource as ss

events = ss.EventRegistry()


@events.event("ItemAdded")
class ItemAdded(msgspec.Struct, frozen=True):
    sku: str


@events.event("ItemRemoved")
class ItemRemoved(msgspec.Struct, frozen=True):
    sku: str


class NotInCart(ss.DomainError):
    pass


class Cart(ss.Aggregate):
    registry = events

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.items: list[str] = []

    def add(self, sku: str) -> None:
        self.record(ItemAdded(sku=sku))

    def remove(self, sku: str) -> None:
        if sku not in self.items:
            raise NotInCart(f"{sku} is not in cart {self.id}")
        self.record(ItemRemoved(sku=sku))

    @ss.applies(ItemAdded)
    def _added(self, event: ItemAdded) -> None:
        self.items.append(event.sku)

    @ss.applies(ItemRemoved)
    def _removed(self, event: ItemRemoved) -> None:
        self.items.remove(event.sku)


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/store.db"


@pytest.fixture
def store(url: str) -> Iterator[ss.EventStore]:
    with ss.open_store(url) as opened:
        yield opened


@pytest.fixture
def carts(store: ss.EventStore) -> ss.Repository[Cart]:
    return ss.Repository(store, Cart)


def new_cart(carts: ss.Repository[Cart], id: str, *skus: str) -> Cart:
    cart = carts.create(id)
    for sku in skus:
        cart.add(sku)
    carts.save(cart)
    return cart


def test_save_then_load_rebuilds_the_aggregate(carts: ss.Repository[Cart]) -> None:
    cart = carts.create("c1")
    cart.add("apple")
    cart.add("pear")
    result = carts.save(cart)
    assert result is not None and result.version == 1
    assert cart.pending_events == () and cart.saved_version == 1
    cart.remove("apple")
    carts.save(cart)

    loaded = carts.load("c1")
    assert loaded.items == ["pear"]
    assert loaded.version == loaded.saved_version == 2
    assert loaded.pending_events == ()
    assert carts.exists("c1") and not carts.exists("c2")


def test_saving_nothing_writes_nothing(store: ss.EventStore, carts: ss.Repository[Cart]) -> None:
    assert carts.save(carts.create("empty")) is None
    assert store.stream_version("cart-empty") is None


def test_loading_a_missing_aggregate_raises_not_found(carts: ss.Repository[Cart]) -> None:
    with pytest.raises(ss.AggregateNotFound, match="Cart 'nope' not found \\(stream 'cart-nope'"):
        carts.load("nope")
    assert issubclass(ss.AggregateNotFound, LookupError)


def test_a_new_aggregate_is_saved_with_no_stream(carts: ss.Repository[Cart]) -> None:
    new_cart(carts, "c1", "apple")
    twin = carts.create("c1")
    twin.add("pear")
    with pytest.raises(ss.WrongExpectedVersion) as caught:
        carts.save(twin)
    assert caught.value.stream == "cart-c1"
    assert caught.value.expected == ss.NO_STREAM
    assert caught.value.actual == 0
    assert carts.load("c1").items == ["apple"]


def test_the_second_writer_of_a_loaded_version_gets_a_conflict(
    carts: ss.Repository[Cart],
) -> None:
    new_cart(carts, "c1", "apple")
    first, second = carts.load("c1"), carts.load("c1")
    first.add("pear")
    second.add("plum")
    carts.save(first)
    with pytest.raises(ss.WrongExpectedVersion) as caught:
        carts.save(second)
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    assert second.pending_events == (ItemAdded("plum"),)  # kept: the caller may retry
    assert carts.load("c1").items == ["apple", "pear"]


def test_a_save_retried_after_a_lost_reply_is_not_duplicated(
    store: ss.EventStore, carts: ss.Repository[Cart]
) -> None:
    cart = carts.create("c1")
    cart.add("apple")
    cart.add("pear")
    resend = copy.deepcopy(cart)  # what the caller still holds if the reply was lost
    first = carts.save(cart)
    again = carts.save(resend)
    assert again == first
    assert [e.data["sku"] for e in store.read_stream("cart-c1")] == ["apple", "pear"]


def test_retry_on_conflict_reruns_the_command_on_fresh_state(
    carts: ss.Repository[Cart],
) -> None:
    new_cart(carts, "c1", "apple")
    loaded_versions: list[int | None] = []
    conflicts: list[tuple[ss.WrongExpectedVersion, int]] = []

    def add_plum() -> Cart:
        cart = carts.load("c1")
        loaded_versions.append(cart.version)
        if len(loaded_versions) == 1:  # someone else writes between our load and save
            new_cart_writer = carts.load("c1")
            new_cart_writer.add("pear")
            carts.save(new_cart_writer)
        cart.add("plum")
        carts.save(cart)
        return cart

    cart = ss.retry_on_conflict(
        add_plum, attempts=3, on_conflict=lambda exc, n: conflicts.append((exc, n))
    )
    assert loaded_versions == [0, 1]
    assert [(exc.actual, n) for exc, n in conflicts] == [(1, 1)]
    assert cart.items == ["apple", "pear", "plum"]
    assert carts.load("c1").items == ["apple", "pear", "plum"]


def test_retry_on_conflict_gives_up_after_its_attempts(carts: ss.Repository[Cart]) -> None:
    new_cart(carts, "c1", "apple")
    calls = 0

    def always_stale() -> None:
        nonlocal calls
        calls += 1
        stale = carts.load("c1")
        rival = carts.load("c1")
        rival.add("x")
        carts.save(rival)
        stale.add("y")
        carts.save(stale)

    with pytest.raises(ss.WrongExpectedVersion):
        ss.retry_on_conflict(always_stale, attempts=2)
    assert calls == 2
    with pytest.raises(ss.ProgrammingError, match="attempts must be an int >= 1"):
        ss.retry_on_conflict(always_stale, attempts=0)


def test_domain_errors_are_not_retried(carts: ss.Repository[Cart]) -> None:
    new_cart(carts, "c1", "apple")
    calls = 0

    def remove_kiwi(cart: Cart) -> None:
        nonlocal calls
        calls += 1
        cart.remove("kiwi")

    with pytest.raises(NotInCart):
        carts.update("c1", remove_kiwi, attempts=5)
    assert calls == 1
    assert carts.load("c1").version == 0


def test_update_loads_runs_and_saves_with_metadata(
    store: ss.EventStore, carts: ss.Repository[Cart]
) -> None:
    new_cart(carts, "c1", "apple")
    cart = carts.update("c1", lambda c: c.add("fig"), metadata={"user": "ann"})
    assert cart.items == ["apple", "fig"] and cart.saved_version == 1
    last = list(store.read_stream("cart-c1"))[-1]
    assert last.metadata["user"] == "ann"
    assert last.metadata[ss.SCHEMA_VERSION] == 1


def test_load_as_of_a_version(carts: ss.Repository[Cart]) -> None:
    new_cart(carts, "c1", "a", "b", "c")
    assert carts.load("c1", as_of_version=0).items == ["a"]
    old = carts.load("c1", as_of_version=1)
    assert old.items == ["a", "b"] and old.version == 1
    assert carts.load("c1", as_of_version=99).items == ["a", "b", "c"]


def test_load_as_of_a_time(store: ss.EventStore, carts: ss.Repository[Cart]) -> None:
    new_cart(carts, "c1", "a")
    carts.update("c1", lambda c: c.add("b"))
    carts.update("c1", lambda c: c.add("c"))
    times = [e.recorded_at for e in store.read_stream("cart-c1")]
    # events recorded in the same microsecond are all "at" that time
    assert carts.load("c1", as_of_time=times[1]).items == [
        sku for sku, t in zip("abc", times, strict=True) if t <= times[1]
    ]
    assert carts.load("c1", as_of_time=times[2] + timedelta(days=1)).items == ["a", "b", "c"]
    with pytest.raises(ss.AggregateNotFound, match="at or before"):
        carts.load("c1", as_of_time=times[0] - timedelta(seconds=1))


def test_a_historical_aggregate_cannot_overwrite_newer_events(
    carts: ss.Repository[Cart],
) -> None:
    new_cart(carts, "c1", "a", "b")
    old = carts.load("c1", as_of_version=0)
    old.add("z")
    with pytest.raises(ss.WrongExpectedVersion):
        carts.save(old)


def test_caused_by_an_event_fills_correlation_and_causation(
    store: ss.EventStore, carts: ss.Repository[Cart]
) -> None:
    new_cart(carts, "order", "apple")
    (trigger,) = store.read_stream("cart-order")
    assert trigger.correlation_id is None  # nothing caused the first event

    with ss.caused_by(trigger):
        new_cart(carts, "invoice", "apple")
    (first,) = store.read_stream("cart-invoice")
    assert first.causation_id == str(trigger.id)
    assert first.correlation_id == str(trigger.id)  # the chain starts at the trigger

    follow = carts.load("invoice")
    follow.add("receipt")
    carts.save(follow, caused_by=first)  # explicit argument, one step further
    second = list(store.read_stream("cart-invoice"))[-1]
    assert second.causation_id == str(first.id)
    assert second.correlation_id == str(trigger.id)  # same conversation


def test_caused_by_a_command_id(store: ss.EventStore, carts: ss.Repository[Cart]) -> None:
    command_id = uuid.uuid4()
    with ss.caused_by(command_id, correlation_id="conversation-7") as causation:
        assert ss.current_causation() == causation
        new_cart(carts, "c1", "apple")
    assert ss.current_causation() is None
    (stored,) = store.read_stream("cart-c1")
    assert stored.causation_id == str(command_id)
    assert stored.correlation_id == "conversation-7"


def test_history_pairs_stored_events_with_typed_events(carts: ss.Repository[Cart]) -> None:
    new_cart(carts, "c1", "a")
    carts.update("c1", lambda c: c.remove("a"))
    history = list(carts.history("c1"))
    assert [h.event for h in history] == [ItemAdded("a"), ItemRemoved("a")]
    assert [h.version for h in history] == [0, 1]
    assert all(h.recorded_at.tzinfo is not None for h in history)


def test_threads_racing_with_retry_lose_no_update(url: str) -> None:
    with ss.open_store(url) as store:
        carts = ss.Repository(store, Cart)
        new_cart(carts, "shared", "seed")
        workers = 6
        errors: list[BaseException] = []

        def add(n: int) -> None:
            try:
                carts.update("shared", lambda c: c.add(f"item-{n}"), attempts=workers + 1)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=add, args=(n,)) for n in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        final = carts.load("shared")
        assert sorted(final.items) == sorted(["seed", *(f"item-{n}" for n in range(workers))])
        assert final.version == workers


# -- the asyncio repository: same semantics ----------------------------------------------


async def test_async_repository_saves_loads_and_detects_conflicts(url: str) -> None:
    store = await ss.open_async_store(url)
    try:
        carts = ss.AsyncRepository(store, Cart)
        cart = carts.create("c1")
        cart.add("apple")
        result = await carts.save(cart)
        assert result is not None and result.version == 0
        assert await carts.exists("c1")

        first, second = await carts.load("c1"), await carts.load("c1")
        first.add("pear")
        second.add("plum")
        await carts.save(first)
        with pytest.raises(ss.WrongExpectedVersion) as caught:
            await carts.save(second)
        assert caught.value.actual == 1

        retried = await carts.update("c1", lambda c: c.add("plum"))
        assert retried.items == ["apple", "pear", "plum"]
        assert (await carts.load("c1", as_of_version=0)).items == ["apple"]
        assert [h.event async for h in carts.history("c1")][-1] == ItemAdded("plum")
        with pytest.raises(ss.AggregateNotFound):
            await carts.load("missing")
    finally:
        await store.close()


async def test_async_retry_on_conflict_reruns_on_fresh_state(url: str) -> None:
    store = await ss.open_async_store(url)
    try:
        carts = ss.AsyncRepository(store, Cart)
        cart = carts.create("c1")
        cart.add("apple")
        await carts.save(cart)
        seen: list[int | None] = []

        async def add_plum() -> None:
            mine = await carts.load("c1")
            seen.append(mine.version)
            if len(seen) == 1:
                rival = await carts.load("c1")
                rival.add("pear")
                await carts.save(rival)
            mine.add("plum")
            with ss.caused_by("command-42"):
                await carts.save(mine)

        await ss.async_retry_on_conflict(add_plum, attempts=2)
        assert seen == [0, 1]
        final = await carts.load("c1")
        assert final.items == ["apple", "pear", "plum"]
        last = [e async for e in store.read_stream("cart-c1")][-1]
        assert last.causation_id == "command-42" and last.correlation_id == "command-42"
    finally:
        await store.close()


@pytest.mark.parametrize("bad", [-1, True, "1"])
def test_a_bad_as_of_version_is_a_programming_error(
    carts: ss.Repository[Cart], bad: object
) -> None:
    new_cart(carts, "c1", "a")
    with pytest.raises(ss.ProgrammingError):
        carts.load("c1", as_of_version=bad)  # type: ignore[arg-type]


def test_a_naive_as_of_time_is_refused(carts: ss.Repository[Cart]) -> None:
    new_cart(carts, "c1", "a")
    with pytest.raises(ss.ProgrammingError, match="timezone-aware"):
        carts.load("c1", as_of_time=datetime(2030, 1, 1))
