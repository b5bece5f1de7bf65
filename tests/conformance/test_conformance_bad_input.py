"""Bad input: each mistake raises its specific error, says what and where, writes nothing."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

import streamsource as ss
from conformance.helpers import events, log_of
from streamsource.eventstore.validation import (
    MAX_EVENT_BYTES,
    MAX_EVENT_TYPE_LENGTH,
    MAX_STREAM_NAME_LENGTH,
)


@pytest.fixture
def seeded(store: Any) -> Any:
    store.append("s-1", events("A"))
    return store


BAD_STREAM_NAMES = [
    "",
    "x" * (MAX_STREAM_NAME_LENGTH + 1),
    "tab\there",
    "new\nline",
    "nul\x00byte",
    "del\x7f",
    "c1\x85control",
    "lone\ud800surrogate",
    None,
    42,
    b"bytes-1",
]


@pytest.mark.parametrize("name", BAD_STREAM_NAMES, ids=repr)
def test_bad_stream_names_are_refused_everywhere(seeded: Any, name: Any) -> None:
    before = log_of(seeded)
    with pytest.raises(ss.InvalidStreamName):
        seeded.append(name, events("A"))
    with pytest.raises(ss.InvalidStreamName):
        list(seeded.read_stream(name))
    with pytest.raises(ss.InvalidStreamName):
        seeded.stream_version(name)
    with pytest.raises(ss.InvalidStreamName):
        seeded.set_stream_metadata(name, ss.StreamMetadata())
    with pytest.raises(ss.InvalidStreamName):
        seeded.delete_stream(name, hard=True)
    with pytest.raises(ss.InvalidStreamName):
        list(seeded.read_category(name))
    assert log_of(seeded) == before


def test_longest_stream_name_and_unicode_are_fine(store: Any) -> None:
    longest = "x" * MAX_STREAM_NAME_LENGTH
    store.append(longest, events("A"))
    store.append("konto-Ünïcødé-✓ with spaces", events("A"))
    assert [e.stream for e in store.read_all()] == [longest, "konto-Ünïcødé-✓ with spaces"]


def test_stream_name_error_says_what_is_wrong(store: Any) -> None:
    with pytest.raises(ss.InvalidStreamName, match="control character"):
        store.append("a\nb", events("A"))
    with pytest.raises(ss.InvalidStreamName, match="empty"):
        store.append("", events("A"))
    with pytest.raises(ss.InvalidStreamName, match=str(MAX_STREAM_NAME_LENGTH)):
        store.append("x" * 500, events("A"))


@pytest.mark.parametrize("expected", [-1, -2, True, False, "x", "1", 1.0, None, [0]], ids=repr)
def test_invalid_expected_versions_are_refused(seeded: Any, expected: Any) -> None:
    before = log_of(seeded)
    with pytest.raises(ss.InvalidExpectedVersion, match="for 's-1'"):
        seeded.append("s-1", events("B"), expected)
    with pytest.raises(ss.InvalidExpectedVersion):
        seeded.delete_stream("s-1", expected, hard=True)
    with pytest.raises(ss.InvalidExpectedVersion):
        seeded.delete_stream("s-1", expected)
    assert log_of(seeded) == before
    assert seeded.stream_version("s-1") == 0


@pytest.mark.parametrize(
    "data",
    [object(), {"when": object()}, [1, 2, {3}, lambda: 0], {"x": {"y": [object()]}}],
    ids=["object", "nested-object", "lambda", "deep"],
)
def test_data_that_is_not_json_is_refused_naming_stream_index_and_type(
    seeded: Any, data: Any
) -> None:
    before = log_of(seeded)
    batch = [ss.NewEvent("Fine", {}), ss.NewEvent("Broken", data)]
    with pytest.raises(ss.EventNotSerializable) as caught:
        seeded.append("s-1", batch)
    message = str(caught.value)
    assert "'s-1'" in message and "event 1" in message and "'Broken'" in message
    assert log_of(seeded) == before


def _recursive() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    "data",
    [float("nan"), {"price": float("inf")}, [1.0, float("-inf")], _recursive()],
    ids=["nan", "inf", "-inf", "recursive"],
)
def test_data_json_cannot_hold_is_refused_not_changed(seeded: Any, data: Any) -> None:
    # JSON has no NaN or infinity: storing them as null would silently change the data.
    before = log_of(seeded)
    with pytest.raises(ss.EventNotSerializable) as caught:
        seeded.append("s-1", [ss.NewEvent("Priced", data)])
    assert "'s-1'" in str(caught.value) and "'Priced'" in str(caught.value)
    with pytest.raises(ss.EventNotSerializable, match="metadata"):
        seeded.append("s-1", [ss.NewEvent("Priced", {}, metadata={"score": data})])
    assert log_of(seeded) == before


def test_null_and_finite_floats_are_fine(store: Any) -> None:
    data = {"none": None, "list": [None, 1.5, -0.0, 1e308], "nested": {"x": None}}
    store.append("s-1", [ss.NewEvent("A", data, metadata={"m": None})])
    [event] = store.read_stream("s-1")
    assert event.data == data and event.metadata == {"m": None}


@pytest.mark.parametrize("huge", [2**63, 2**70])
def test_versions_and_positions_beyond_64_bits_read_as_past_the_end(seeded: Any, huge: int) -> None:
    assert [e.version for e in seeded.read_stream("s-1", from_version=huge)] == []
    assert [e.version for e in seeded.read_stream("s-1", as_of_version=huge)] == [0]
    assert [e.version for e in seeded.read_stream("s-1", limit=huge)] == [0]
    assert list(seeded.read_all(after=huge)) == []
    assert [e.stream for e in seeded.read_all(before=huge, backwards=True)] == ["s-1"]
    assert [e.stream for e in seeded.read_all(limit=huge)] == ["s-1"]
    assert seeded.load_snapshot("s-1", max_version=huge) is None
    with pytest.raises(ss.WrongExpectedVersion):
        seeded.append("s-1", events("B"), huge)


@pytest.mark.parametrize(
    "metadata",
    [{"x": object()}, ["not", "an", "object"], "text", {1: "int key"}],
    ids=["object", "list", "str", "int-key"],
)
def test_metadata_that_is_not_a_json_object_is_refused(seeded: Any, metadata: Any) -> None:
    before = log_of(seeded)
    with pytest.raises(ss.EventNotSerializable):
        seeded.append("s-1", [ss.NewEvent("A", {}, metadata=metadata)])
    assert log_of(seeded) == before


def test_empty_batch_is_refused(seeded: Any) -> None:
    before = log_of(seeded)
    with pytest.raises(ss.ProgrammingError, match="no events"):
        seeded.append("s-1", [])
    with pytest.raises(ss.ProgrammingError):
        seeded.append("s-1", iter(()))
    assert log_of(seeded) == before


@pytest.mark.parametrize(
    "batch",
    [["not an event"], [{"type": "A", "data": {}}], "AB", {"type": "A"}, 42],
    ids=["str-item", "dict-item", "str", "dict", "int"],
)
def test_things_that_are_not_new_events_are_refused(seeded: Any, batch: Any) -> None:
    before = log_of(seeded)
    with pytest.raises(ss.ProgrammingError):
        seeded.append("s-1", batch)
    assert log_of(seeded) == before


@pytest.mark.parametrize("event_type", ["", "a\tb", "x" * (MAX_EVENT_TYPE_LENGTH + 1), None, 3])
def test_bad_event_types_are_refused(seeded: Any, event_type: Any) -> None:
    before = log_of(seeded)
    with pytest.raises(ss.InvalidEventType):
        seeded.append("s-1", [ss.NewEvent("Fine", {}), ss.NewEvent(event_type, {})])
    assert log_of(seeded) == before


def test_event_ids_must_be_uuids(seeded: Any) -> None:
    with pytest.raises(ss.ProgrammingError):
        seeded.append("s-1", [ss.NewEvent("A", {}, id=str(uuid.uuid4()))])  # type: ignore[arg-type]


def test_oversized_event_is_refused(seeded: Any) -> None:
    before = log_of(seeded)
    huge = "x" * MAX_EVENT_BYTES
    with pytest.raises(ss.EventTooLarge, match="'s-1'"):
        seeded.append("s-1", [ss.NewEvent("Small", {}), ss.NewEvent("Huge", huge)])
    assert log_of(seeded) == before


@pytest.mark.parametrize(
    "options",
    [
        {"from_version": -1},
        {"from_version": True},
        {"limit": -1},
        {"limit": "3"},
        {"as_of_version": -1},
        {"as_of_time": datetime(2024, 1, 1)},  # naive: ambiguous
        {"as_of_time": "2024-01-01T00:00:00Z"},
        {"types": [1, 2]},
        {"types": 5},
    ],
    ids=repr,
)
def test_bad_read_stream_options_are_refused(seeded: Any, options: dict[str, Any]) -> None:
    with pytest.raises(ss.ProgrammingError):
        list(seeded.read_stream("s-1", **options))


@pytest.mark.parametrize(
    "options",
    [
        {"after": -1},
        {"before": -1, "backwards": True},
        {"after": "3"},
        {"limit": -5},
        {"category": ""},
        {"category": "a\x00"},
    ],
    ids=repr,
)
def test_bad_read_all_options_are_refused(seeded: Any, options: dict[str, Any]) -> None:
    with pytest.raises(ss.ProgrammingError):
        list(seeded.read_all(**options))


def test_bad_snapshot_max_version_is_refused(seeded: Any) -> None:
    with pytest.raises(ss.ProgrammingError):
        seeded.load_snapshot("s-1", max_version=-1)
