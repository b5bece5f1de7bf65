"""Appends: versions, expected versions, atomic batches, idempotency, id reuse."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import streamsource as ss
from conformance.helpers import events, log_of, versions


def test_versions_start_at_zero_and_result_names_last_event(store: Any) -> None:
    first = store.append("account-1", events("Opened"), ss.NO_STREAM)
    assert first.version == 0
    second = store.append("account-1", events("Deposited", "Deposited"), 0)
    assert second.version == 2
    assert second.position > first.position
    recorded = list(store.read_stream("account-1"))
    assert [e.version for e in recorded] == [0, 1, 2]
    assert recorded[-1].position == second.position
    assert store.stream_version("account-1") == 2


def test_recorded_event_keeps_what_was_appended(store: Any) -> None:
    event = ss.NewEvent(
        "Deposited",
        {"amount": 100, "note": "salário ✓", "nested": [1, 2.5, None, True]},
        metadata={"reason": "salary", "correlation_id": "c-1", "causation_id": "k-9"},
    )
    result = store.append("account-1", [event])
    (recorded,) = store.read_stream("account-1")
    assert recorded.id == event.id
    assert recorded.stream == "account-1"
    assert recorded.category == "account"
    assert (recorded.version, recorded.position) == (result.version, result.position)
    assert recorded.type == "Deposited"
    assert recorded.data == event.data
    assert recorded.metadata == event.metadata
    assert recorded.correlation_id == "c-1"
    assert recorded.causation_id == "k-9"
    assert recorded.recorded_at.tzinfo is not None


def test_a_single_new_event_may_be_passed_without_a_list(store: Any) -> None:
    assert store.append("s-1", ss.NewEvent("T", 1)).version == 0
    assert [e.data for e in store.read_stream("s-1")] == [1]


@pytest.mark.parametrize(
    ("expected", "ok"),
    [(ss.ANY, True), (ss.NO_STREAM, True), (ss.STREAM_EXISTS, False), (0, False)],
)
def test_expected_version_on_a_new_stream(store: Any, expected: Any, ok: bool) -> None:
    if ok:
        assert store.append("s-1", events("A"), expected).version == 0
        return
    with pytest.raises(ss.WrongExpectedVersion) as caught:
        store.append("s-1", events("A"), expected)
    assert (caught.value.stream, caught.value.expected, caught.value.actual) == (
        "s-1",
        expected,
        None,
    )
    assert log_of(store) == []


@pytest.mark.parametrize(
    ("expected", "ok"),
    [
        (ss.ANY, True),
        (ss.NO_STREAM, False),
        (ss.STREAM_EXISTS, True),
        (1, True),
        (0, False),
        (2, False),
    ],
)
def test_expected_version_on_an_existing_stream(store: Any, expected: Any, ok: bool) -> None:
    store.append("s-1", events("A", "B"))  # now at version 1
    before = log_of(store)
    if ok:
        assert store.append("s-1", events("C"), expected).version == 2
        return
    with pytest.raises(ss.WrongExpectedVersion) as caught:
        store.append("s-1", events("C"), expected)
    error = caught.value
    assert (error.stream, error.expected, error.actual) == ("s-1", expected, 1)
    assert "s-1" in str(error)
    assert error.retriable
    assert log_of(store) == before


def test_a_failing_batch_writes_nothing(store: Any) -> None:
    store.append("s-1", events("A"))
    taken = ss.NewEvent("Taken", {})
    store.append("s-2", [taken])
    before = log_of(store)
    batch = [ss.NewEvent("B", {}), ss.NewEvent("C", {}), taken]  # the last id is used elsewhere
    with pytest.raises(ss.DuplicateEventId):
        store.append("s-1", batch, 0)
    assert log_of(store) == before
    assert store.stream_version("s-1") == 0
    # and the same events without the reused one go through as a whole
    assert store.append("s-1", batch[:2], 0).version == 2


def test_streams_are_independent(store: Any) -> None:
    store.append("a-1", events("X", "Y"))
    assert store.append("a-2", events("X"), ss.NO_STREAM).version == 0
    assert versions(store, "a-1") == [0, 1]
    assert versions(store, "a-2") == [0]
    assert store.stream_version("nobody-1") is None


# -- idempotency and id reuse ---------------------------------------------------------------


def test_retried_append_returns_the_original_result_and_writes_nothing(store: Any) -> None:
    batch = events("A", "B")
    original = store.append("s-1", batch, ss.NO_STREAM)
    store.append("s-1", events("C"))  # someone else wrote since: the retry must still match
    before = log_of(store)
    assert store.append("s-1", batch, ss.NO_STREAM) == original
    assert store.append("s-1", batch, ss.ANY) == original
    assert log_of(store) == before


def test_retry_of_a_single_event_append(store: Any) -> None:
    event = ss.NewEvent("A", {"x": 1})
    first = store.append("s-1", [event])
    assert store.append("s-1", [event]) == first
    assert versions(store, "s-1") == [0]


def test_reused_id_with_different_content_is_refused(store: Any) -> None:
    event = ss.NewEvent("A", {"x": 1})
    store.append("s-1", [event])
    before = log_of(store)
    changed = ss.NewEvent("A", {"x": 2}, id=event.id)
    with pytest.raises(ss.DuplicateEventId) as caught:
        store.append("s-1", [changed])
    assert caught.value.event_id == event.id
    retyped = ss.NewEvent("B", {"x": 1}, id=event.id)
    with pytest.raises(ss.DuplicateEventId):
        store.append("s-1", [retyped])
    remeta = ss.NewEvent("A", {"x": 1}, metadata={"m": 1}, id=event.id)
    with pytest.raises(ss.DuplicateEventId):
        store.append("s-1", [remeta])
    assert log_of(store) == before


def test_reused_id_in_another_stream_is_refused(store: Any) -> None:
    event = ss.NewEvent("A", {"x": 1})
    store.append("s-1", [event])
    before = log_of(store)
    with pytest.raises(ss.DuplicateEventId) as caught:
        store.append("s-2", [event])
    assert caught.value.event_id == event.id
    assert log_of(store) == before
    assert store.stream_version("s-2") is None


def test_partial_overlap_with_an_earlier_append_is_refused(store: Any) -> None:
    old = events("A", "B")
    store.append("s-1", old)
    before = log_of(store)
    with pytest.raises(ss.DuplicateEventId):
        store.append("s-1", [old[1], ss.NewEvent("C", {})])
    with pytest.raises(ss.DuplicateEventId):
        store.append("s-1", [ss.NewEvent("C", {}), old[0]])
    assert log_of(store) == before


def test_earlier_events_in_another_order_are_not_a_retry(store: Any) -> None:
    old = events("A", "B")
    store.append("s-1", old)
    before = log_of(store)
    with pytest.raises(ss.DuplicateEventId):
        store.append("s-1", [old[1], old[0]])
    assert log_of(store) == before


def test_the_same_id_twice_in_one_append_is_refused(store: Any) -> None:
    event_id = uuid.uuid4()
    with pytest.raises(ss.DuplicateEventId):
        store.append("s-1", [ss.NewEvent("A", 1, id=event_id), ss.NewEvent("B", 2, id=event_id)])
    assert log_of(store) == []


# -- hard delete --------------------------------------------------------------------------


def test_append_to_a_hard_deleted_stream_raises_stream_deleted(store: Any) -> None:
    store.append("s-1", events("A", "B"))
    store.delete_stream("s-1", 1, hard=True)
    before = log_of(store)
    for expected in (ss.ANY, ss.NO_STREAM, ss.STREAM_EXISTS, 1, 2):
        with pytest.raises(ss.StreamDeleted) as caught:
            store.append("s-1", events("C"), expected)
        assert caught.value.stream == "s-1"
    assert log_of(store) == before


def test_hard_delete_checks_the_expected_version(store: Any) -> None:
    store.append("s-1", events("A", "B"))
    with pytest.raises(ss.WrongExpectedVersion) as caught:
        store.delete_stream("s-1", 0, hard=True)
    assert caught.value.actual == 1
    assert store.append("s-1", events("C"), 1).version == 2


def test_hard_deleted_stream_reads_raise_but_the_log_keeps_its_events(store: Any) -> None:
    store.append("s-1", events("A", "B"))
    store.append("t-1", events("C"))
    store.delete_stream("s-1", hard=True)
    with pytest.raises(ss.StreamDeleted):
        list(store.read_stream("s-1"))
    with pytest.raises(ss.StreamDeleted):
        store.stream_version("s-1")
    with pytest.raises(ss.StreamDeleted):
        store.delete_stream("s-1", hard=True)
    with pytest.raises(ss.StreamDeleted):
        store.delete_stream("s-1")  # a soft delete neither
    with pytest.raises(ss.StreamDeleted):
        store.save_snapshot("s-1", 1, "State", {})
    assert [e.stream for e in store.read_all()] == ["s-1", "s-1", "t-1"]


def test_a_stream_that_never_existed_can_be_tombstoned(store: Any) -> None:
    store.delete_stream("ghost-1", ss.NO_STREAM, hard=True)
    with pytest.raises(ss.StreamDeleted):
        store.append("ghost-1", events("A"))
    assert log_of(store) == []
