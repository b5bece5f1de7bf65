"""Reads: streams forwards/backwards, the global log, categories, type filters, time travel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import streamsource as ss
from conformance.helpers import events, versions


@pytest.fixture
def filled(store: Any) -> Any:
    """Interleaved appends to three streams in two categories (10 events)."""
    store.append("account-1", events("Opened", "Deposited"))
    store.append("order-7", events("Placed"))
    store.append("account-2", events("Opened"))
    store.append("account-1", events("Withdrawn", "Deposited"))
    store.append("order-7", events("Shipped"))
    store.append("account-2", events("Deposited", "Deposited"))
    store.append("accounting", events("Closed"))  # category "accounting", not "account"
    return store


def test_read_stream_forwards_and_backwards(filled: Any) -> None:
    assert versions(filled, "account-1") == [0, 1, 2, 3]
    assert versions(filled, "account-1", backwards=True) == [3, 2, 1, 0]
    assert [e.type for e in filled.read_stream("account-1")] == [
        "Opened",
        "Deposited",
        "Withdrawn",
        "Deposited",
    ]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"from_version": 2}, [2, 3]),
        ({"from_version": 0, "limit": 2}, [0, 1]),
        ({"from_version": 1, "limit": 2}, [1, 2]),
        ({"from_version": 9}, []),
        ({"limit": 0}, []),
        ({"limit": 100}, [0, 1, 2, 3]),
        ({"backwards": True, "from_version": 2}, [2, 1, 0]),
        ({"backwards": True, "limit": 1}, [3]),
        ({"backwards": True, "from_version": 1, "limit": 5}, [1, 0]),
        ({"backwards": True, "from_version": 99}, [3, 2, 1, 0]),
    ],
)
def test_read_stream_from_version_and_limit(
    filled: Any, options: dict[str, Any], expected: list[int]
) -> None:
    assert versions(filled, "account-1", **options) == expected


def test_read_stream_of_a_missing_stream_is_empty(filled: Any) -> None:
    assert list(filled.read_stream("nobody-1")) == []
    assert list(filled.read_stream("nobody-1", backwards=True)) == []


def test_read_stream_filtered_by_type(filled: Any) -> None:
    assert versions(filled, "account-1", types=["Deposited"]) == [1, 3]
    assert versions(filled, "account-1", types="Deposited") == [1, 3]
    assert versions(filled, "account-1", types={"Deposited", "Opened"}, limit=2) == [0, 1]
    assert versions(filled, "account-1", types=["Deposited"], backwards=True, limit=1) == [3]
    assert versions(filled, "account-1", types=["Nope"]) == []


def test_global_positions_strictly_increase_in_append_order(filled: Any) -> None:
    log = list(filled.read_all())
    assert len(log) == 10
    positions = [e.position for e in log]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
    assert all(p > 0 for p in positions)
    assert [(e.stream, e.version) for e in log] == [
        ("account-1", 0),
        ("account-1", 1),
        ("order-7", 0),
        ("account-2", 0),
        ("account-1", 2),
        ("account-1", 3),
        ("order-7", 1),
        ("account-2", 1),
        ("account-2", 2),
        ("accounting", 0),
    ]
    assert filled.head_position() == positions[-1]
    for event in log:  # read_all and read_stream agree on every event
        (same,) = filled.read_stream(event.stream, from_version=event.version, limit=1)
        assert same == event


def test_read_all_positions_are_exclusive_bounds(filled: Any) -> None:
    log = list(filled.read_all())
    positions = [e.position for e in log]
    assert [e.position for e in filled.read_all(backwards=True)] == positions[::-1]
    assert [e.position for e in filled.read_all(after=positions[4])] == positions[5:]
    assert [e.position for e in filled.read_all(after=positions[4], limit=3)] == positions[5:8]
    assert [e.position for e in filled.read_all(before=positions[4], backwards=True)] == (
        positions[3::-1]
    )
    assert [e.position for e in filled.read_all(backwards=True, limit=2)] == positions[:-3:-1]
    assert list(filled.read_all(after=positions[-1])) == []
    assert list(filled.read_all(before=positions[0], backwards=True)) == []
    assert list(filled.read_all(before=0, backwards=True)) == []
    assert list(filled.read_all(limit=0)) == []
    assert [e.position for e in filled.read_all(after=0)] == positions
    # resuming from a checkpoint, the last position processed
    checkpoint = positions[5]
    assert [e.position for e in filled.read_all(after=checkpoint)] == positions[6:]


def test_a_bound_for_the_other_direction_is_refused(filled: Any) -> None:
    with pytest.raises(ss.ProgrammingError, match="before="):
        list(filled.read_all(after=3, backwards=True))
    with pytest.raises(ss.ProgrammingError, match="after="):
        list(filled.read_all(before=3))
    with pytest.raises(TypeError):  # the old inclusive name is gone, not silently flipped
        list(filled.read_all(from_position=3))


def test_read_category(filled: Any) -> None:
    accounts = list(filled.read_category("account"))
    assert [(e.stream, e.version) for e in accounts] == [
        ("account-1", 0),
        ("account-1", 1),
        ("account-2", 0),
        ("account-1", 2),
        ("account-1", 3),
        ("account-2", 1),
        ("account-2", 2),
    ]
    assert [e.position for e in filled.read_all(category="account")] == [
        e.position for e in accounts
    ]
    assert [e.stream for e in filled.read_category("accounting")] == ["accounting"]
    assert [e.position for e in filled.read_category("account", backwards=True, limit=2)] == [
        e.position for e in accounts[::-1][:2]
    ]
    checkpoint = accounts[3].position
    assert [e.position for e in filled.read_category("account", after=checkpoint)] == [
        e.position for e in accounts[4:]
    ]
    assert list(filled.read_category("nothing")) == []


def test_read_all_filtered_by_type(filled: Any) -> None:
    deposits = list(filled.read_all(types=["Deposited"]))
    assert [(e.stream, e.version) for e in deposits] == [
        ("account-1", 1),
        ("account-1", 3),
        ("account-2", 1),
        ("account-2", 2),
    ]
    assert [e.type for e in filled.read_all(types={"Placed", "Shipped"})] == ["Placed", "Shipped"]
    assert [e.version for e in filled.read_category("account", types="Opened")] == [0, 0]
    assert len(list(filled.read_all(types=["Deposited"], limit=3))) == 3
    assert [e.version for e in filled.read_all(types="Deposited", backwards=True, limit=1)] == [2]


# -- time travel --------------------------------------------------------------------------


def test_as_of_version(filled: Any) -> None:
    assert versions(filled, "account-1", as_of_version=1) == [0, 1]
    assert versions(filled, "account-1", as_of_version=0) == [0]
    assert versions(filled, "account-1", as_of_version=99) == [0, 1, 2, 3]
    assert versions(filled, "account-1", as_of_version=2, backwards=True) == [2, 1, 0]
    assert versions(filled, "account-1", as_of_version=2, from_version=1) == [1, 2]
    assert versions(filled, "account-1", as_of_version=2, backwards=True, limit=1) == [2]


def test_as_of_time(store: Any) -> None:
    for n in range(6):
        store.append("price-1", [ss.NewEvent("PriceChanged", {"price": n})])
    history = list(store.read_stream("price-1"))
    times = [e.recorded_at for e in history]
    assert times == sorted(times)
    moments = [times[0] - timedelta(seconds=1), *times, times[-1] + timedelta(days=1)]
    for moment in moments:
        expected = [e.version for e in history if e.recorded_at <= moment]
        assert versions(store, "price-1", as_of_time=moment) == expected
        assert versions(store, "price-1", as_of_time=moment, backwards=True) == expected[::-1]
        assert versions(store, "price-1", as_of_time=moment, limit=2) == expected[:2]


def test_as_of_time_accepts_any_timezone(store: Any) -> None:
    from datetime import timezone

    store.append("s-1", events("A"))
    (event,) = store.read_stream("s-1")
    elsewhere = event.recorded_at.astimezone(timezone(timedelta(hours=-7)))
    assert versions(store, "s-1", as_of_time=elsewhere) == [0]
    assert versions(store, "s-1", as_of_time=elsewhere - timedelta(microseconds=1)) == []


def test_reads_are_lazy_and_can_stop_early(store: Any) -> None:
    store.append("big-1", [ss.NewEvent("T", {"n": n}) for n in range(3000)])
    iterator = iter(store.read_stream("big-1"))
    assert next(iterator).data == {"n": 0}
    assert next(iterator).data == {"n": 1}
    iterator.close()
    everything = list(store.read_all())
    assert [e.data["n"] for e in everything] == list(range(3000))
    assert [e.version for e in store.read_stream("big-1", backwards=True, limit=1500)] == list(
        range(2999, 1499, -1)
    )


def test_read_all_sees_events_appended_after_it_started(store: Any) -> None:
    store.append("s-1", events("A"))
    reader = iter(store.read_all())
    assert next(reader).stream == "s-1"
    store.append("s-2", events("B"))
    assert [e.stream for e in reader] in (["s-2"], [])  # a live reader may or may not see it
    assert [e.stream for e in store.read_all()] == ["s-1", "s-2"]
