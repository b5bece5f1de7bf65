"""Default event ids are time-ordered UUIDs (version 7), which keeps the id indexes of the
store and of the bridge's inboxes growing at their right edge."""

from __future__ import annotations

import uuid

import streamsource as ss
from streamsource.eventstore.domain.aggregate import PendingEvent
from streamsource.eventstore.event_ids import new_event_id


def test_default_ids_are_version_7_uuids_ordered_by_their_millisecond() -> None:
    ids = [ss.NewEvent("T", {}).id for _ in range(2000)]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert len(set(ids)) == len(ids)
    millis = [i.int >> 80 for i in ids]
    assert millis == sorted(millis)  # made one after the other: never an earlier millisecond
    assert PendingEvent(object()).id.version == 7


def test_ids_read_back_unchanged_and_any_uuid_is_still_accepted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    given = uuid.uuid4()
    with ss.open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        events = [ss.NewEvent("T", {}), ss.NewEvent("T", {}, id=given), ss.NewEvent("T", {})]
        store.append("s-1", events)
        assert [e.id for e in store.read_stream("s-1")] == [e.id for e in events]
    assert new_event_id() != new_event_id()
