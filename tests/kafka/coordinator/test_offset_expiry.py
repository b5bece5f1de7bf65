"""Committed offsets expire only in empty groups, ``retention`` after the later of their
commit and the group becoming empty (Kafka's offsets.retention.minutes, KIP-211); ``now`` is
an argument, so no test waits for a clock."""

from __future__ import annotations

from streamsource.kafka.coordinator.offset_expiry import expired_offsets
from streamsource.kafka.coordinator.offsets import (
    Change,
    CommittedOffset,
    OffsetCommit,
    OffsetTable,
)

RETENTION = 1_000


def committed_at(*stamps: int) -> dict[tuple[str, int], CommittedOffset]:
    return {("t", p): CommittedOffset(10, -1, None, ts) for p, ts in enumerate(stamps)}


def test_offsets_of_a_group_with_members_never_expire() -> None:
    old = committed_at(0, 0)
    assert expired_offsets(old, 10**12, RETENTION, has_members=True) == []


def test_an_empty_group_loses_each_offset_retention_after_its_commit() -> None:
    offsets = committed_at(0, 500)
    assert expired_offsets(offsets, 999, RETENTION, has_members=False) == []
    assert expired_offsets(offsets, 1_000, RETENTION, has_members=False) == [("t", 0)]
    assert expired_offsets(offsets, 1_500, RETENTION, has_members=False) == [("t", 0), ("t", 1)]


def test_retention_counts_from_when_the_group_became_empty() -> None:
    # committed long ago by members that stayed; the group emptied at 5 000
    offsets = committed_at(0)
    kept = expired_offsets(offsets, 5_999, RETENTION, has_members=False, empty_since_ms=5_000)
    gone = expired_offsets(offsets, 6_000, RETENTION, has_members=False, empty_since_ms=5_000)
    assert (kept, gone) == ([], [("t", 0)])


def test_expired_offsets_stay_gone_after_a_replay_and_a_compaction() -> None:
    table = OffsetTable()
    payloads: list[bytes] = []

    def store(change: Change | None) -> None:
        assert change is not None
        payloads.append(change.payload)  # what the broker makes durable
        table.apply(change)

    store(table.commit("g", [OffsetCommit("t", 0, 5), OffsetCommit("t", 1, 7)])[1])
    store(table.commit("h", [OffsetCommit("t", 0, 9)])[1])
    store(table.delete_offsets("g", [("t", 0), ("t", 9)]))
    assert list(table.fetch("g")) == [("t", 1)]
    store(table.delete_offsets("g", [("t", 1)]))
    assert table.delete_offsets("g", [("t", 1)]) is None  # nothing left to forget
    assert table.groups() == ["h"]
    replayed = OffsetTable.replay(payloads)
    assert replayed.groups() == ["h"]
    assert replayed.get("h", "t", 0) is not None
    assert OffsetTable.replay(replayed.live_records()).groups() == ["h"]
