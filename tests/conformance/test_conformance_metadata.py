"""Stream metadata (max_count, max_age, truncate_before), soft and hard deletes."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

import streamsource as ss
from conformance.helpers import events, versions


def test_metadata_round_trips_and_defaults_to_empty(store: Any) -> None:
    assert store.get_stream_metadata("s-1") == ss.StreamMetadata()
    metadata = ss.StreamMetadata(
        max_count=5,
        max_age=timedelta(days=3, microseconds=7),
        truncate_before=2,
        custom={"owner": "billing", "tags": ["a", "b"]},
    )
    store.set_stream_metadata("s-1", metadata)
    assert store.get_stream_metadata("s-1") == metadata
    store.set_stream_metadata("s-1", ss.StreamMetadata(max_count=1))
    assert store.get_stream_metadata("s-1") == ss.StreamMetadata(max_count=1)


def test_max_count_keeps_the_newest_events(store: Any) -> None:
    store.append("s-1", events(*"ABCDE"))
    store.set_stream_metadata("s-1", ss.StreamMetadata(max_count=2))
    assert versions(store, "s-1") == [3, 4]
    assert versions(store, "s-1", backwards=True) == [4, 3]
    assert versions(store, "s-1", from_version=0) == [3, 4]
    store.append("s-1", events("F"))
    assert versions(store, "s-1") == [4, 5]
    # as-of reads never bring back what max_count hides
    assert versions(store, "s-1", as_of_version=4) == [4]
    assert versions(store, "s-1", as_of_version=2) == []
    # the log itself is not filtered
    assert len(list(store.read_all())) == 6
    store.set_stream_metadata("s-1", ss.StreamMetadata(max_count=0))
    assert versions(store, "s-1") == []


def test_truncate_before_hides_older_versions(store: Any) -> None:
    store.append("s-1", events(*"ABCDE"))
    store.set_stream_metadata("s-1", ss.StreamMetadata(truncate_before=3))
    assert versions(store, "s-1") == [3, 4]
    assert versions(store, "s-1", backwards=True, from_version=3) == [3]
    assert versions(store, "s-1", backwards=True, from_version=2) == []
    store.set_stream_metadata("s-1", ss.StreamMetadata(truncate_before=3, max_count=1))
    assert versions(store, "s-1") == [4]


def test_max_age_hides_old_events(store: Any) -> None:
    store.append("s-1", events("A", "B"))
    store.set_stream_metadata("s-1", ss.StreamMetadata(max_age=timedelta(days=1)))
    assert versions(store, "s-1") == [0, 1]
    store.set_stream_metadata("s-1", ss.StreamMetadata(max_age=timedelta(microseconds=1)))
    time.sleep(0.01)  # not a timing assertion: lets the events age past one microsecond
    assert versions(store, "s-1") == []
    assert versions(store, "s-1", backwards=True) == []
    store.append("s-1", events("C"))
    assert versions(store, "s-1", backwards=True, limit=5) in ([2], [])


def test_soft_delete_hides_the_stream_and_versions_continue(store: Any) -> None:
    store.append("s-1", events("A", "B"))
    store.set_stream_metadata("s-1", ss.StreamMetadata(custom={"owner": "x"}))
    store.delete_stream("s-1", 1)
    assert versions(store, "s-1") == []
    assert store.stream_version("s-1") == 1
    assert store.get_stream_metadata("s-1").custom == {"owner": "x"}  # other settings kept
    assert store.append("s-1", events("C"), 1).version == 2
    assert versions(store, "s-1") == [2]
    assert [e.version for e in store.read_all() if e.stream == "s-1"] == [0, 1, 2]


def test_the_first_append_after_a_soft_delete_may_expect_no_stream(store: Any) -> None:
    # As in KurrentDB: a soft-deleted stream reads as absent, so re-creating it with
    # NO_STREAM works (versions continue); once re-created, NO_STREAM fails again.
    store.append("s-1", events("A", "B"))
    store.delete_stream("s-1")
    assert store.append("s-1", events("C", "D"), ss.NO_STREAM).version == 3
    assert versions(store, "s-1") == [2, 3]
    with pytest.raises(ss.WrongExpectedVersion) as caught:
        store.append("s-1", events("E"), ss.NO_STREAM)
    assert caught.value.expected is ss.NO_STREAM and caught.value.actual == 3
    assert versions(store, "s-1") == [2, 3]


def test_a_re_creation_after_a_soft_delete_is_idempotent(store: Any) -> None:
    store.append("s-1", events("A"))
    store.delete_stream("s-1")
    again = events("B")
    first = store.append("s-1", again, ss.NO_STREAM)
    assert store.append("s-1", again, ss.NO_STREAM) == first  # a retry after a lost reply
    assert versions(store, "s-1") == [1]


def test_soft_delete_checks_the_expected_version(store: Any) -> None:
    store.append("s-1", events("A", "B"))
    with pytest.raises(ss.WrongExpectedVersion) as caught:
        store.delete_stream("s-1", 0)
    assert caught.value.actual == 1
    assert versions(store, "s-1") == [0, 1]
    with pytest.raises(ss.WrongExpectedVersion):
        store.delete_stream("s-1", ss.NO_STREAM)
    store.delete_stream("s-1", ss.STREAM_EXISTS)
    assert versions(store, "s-1") == []


def test_soft_delete_of_a_missing_stream_does_nothing(store: Any) -> None:
    store.delete_stream("nobody-1")
    store.delete_stream("nobody-1", ss.NO_STREAM)
    with pytest.raises(ss.WrongExpectedVersion):
        store.delete_stream("nobody-1", ss.STREAM_EXISTS)
    assert store.append("nobody-1", events("A"), ss.NO_STREAM).version == 0


def test_hard_delete_after_soft_delete(store: Any) -> None:
    store.append("s-1", events("A"))
    store.delete_stream("s-1")
    store.delete_stream("s-1", 0, hard=True)
    with pytest.raises(ss.StreamDeleted):
        store.append("s-1", events("B"))
    with pytest.raises(ss.StreamDeleted):
        store.set_stream_metadata("s-1", ss.StreamMetadata())
    with pytest.raises(ss.StreamDeleted):
        store.get_stream_metadata("s-1")


def test_metadata_of_one_stream_does_not_touch_another(store: Any) -> None:
    store.append("s-1", events("A", "B"))
    store.append("s-2", events("A", "B"))
    store.set_stream_metadata("s-1", ss.StreamMetadata(max_count=1))
    store.delete_stream("s-2", hard=True)
    assert versions(store, "s-1") == [1]
    store.append("s-3", events("A"))
    assert versions(store, "s-3") == [0]


@pytest.mark.parametrize(
    "metadata",
    [
        ss.StreamMetadata(max_count=-1),
        ss.StreamMetadata(max_count=True),
        ss.StreamMetadata(truncate_before=-2),
        ss.StreamMetadata(truncate_before=1.5),  # type: ignore[arg-type]
        ss.StreamMetadata(max_age=timedelta(0)),
        ss.StreamMetadata(max_age=5),  # type: ignore[arg-type]
        ss.StreamMetadata(custom={1: "x"}),  # type: ignore[dict-item]
        ss.StreamMetadata(custom={"x": object()}),
        {"max_count": 1},
    ],
)
def test_invalid_metadata_is_refused(store: Any, metadata: Any) -> None:
    store.append("s-1", events("A", "B"))
    with pytest.raises((ss.ProgrammingError, ss.DataError)):
        store.set_stream_metadata("s-1", metadata)
    assert store.get_stream_metadata("s-1") == ss.StreamMetadata()
    assert versions(store, "s-1") == [0, 1]
