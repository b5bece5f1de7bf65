"""Group membership recorded and restored (what a broker restart goes through), sans-I/O:
a coordinator's snapshot is encoded, kept in the offsets file, decoded and restored into a
fresh coordinator, whose members then carry on as if nothing happened."""

from __future__ import annotations

from test_consumer_group_coordinator import beat, join, orders
from test_consumer_group_coordinator import coordinator as consumer_coordinator
from test_group_coordinator import SESSION, coordinator, join_request, stable_single_member

from streamsource.kafka.coordinator.group_messages import GroupState
from streamsource.kafka.coordinator.group_snapshots import (
    ClassicGroupSnapshot,
    ConsumerGroupSnapshot,
    decode_snapshot,
    encode_snapshot,
)
from streamsource.kafka.coordinator.offsets import OffsetTable
from streamsource.kafka.protocol.errors import ErrorCode


def test_a_stable_classic_generation_is_restored_with_fresh_sessions() -> None:
    old = coordinator()
    member = stable_single_member(old)
    snapshot = old.snapshot("g")
    assert isinstance(snapshot, ClassicGroupSnapshot)
    restored_snapshot = decode_snapshot(encode_snapshot(snapshot))
    assert isinstance(restored_snapshot, ClassicGroupSnapshot)

    new = coordinator()
    new.restore(1_000_000, restored_snapshot)  # another process: another monotonic clock
    assert new.group_state("g") is GroupState.STABLE
    assert new.heartbeat(1_000_001, "g", 1, member) == ErrorCode.NONE
    assert new.validate_commit("g", 1, member) == ErrorCode.NONE
    assert new.describe("g").members[0].assignment == b"all"
    # its session runs from the last heartbeat in the new process's clock
    assert new.next_deadline_ms() == 1_000_001 + SESSION


def test_a_classic_group_is_recorded_only_when_stable_and_forgotten_when_empty() -> None:
    c = coordinator()
    stable_single_member(c)
    assert isinstance(c.snapshot("g"), ClassicGroupSnapshot)
    c.join(1, "other", join_request("", require_known=False))  # a rebalance starts
    assert c.snapshot("g") == "keep"  # the last stable generation stays recorded
    assert c.snapshot("nope") is None


def test_a_consumer_group_is_restored_with_epochs_and_assignments() -> None:
    old = consumer_coordinator()
    join(old, "a")
    join(old, "b")
    kept = beat(old, "a", 1, orders(0, 1, 2, 3)).assignment  # a is revoking two
    assert kept is not None
    snapshot = decode_snapshot(encode_snapshot(old.snapshot("g")))  # type: ignore[arg-type]
    assert isinstance(snapshot, ConsumerGroupSnapshot)

    new = consumer_coordinator()
    new.restore(500_000, snapshot)
    # a carries on with its epoch and confirms the revocation; b then gets the rest
    assert beat(new, "a", 1, kept, now=500_001).member_epoch == 2
    b = beat(new, "b", 2, frozenset(), now=500_002)
    assert b.error_code == ErrorCode.NONE
    assert b.assignment == orders(0, 1, 2, 3) - kept
    assert new.validate_commit("g", 2, "a") == ErrorCode.NONE


def test_recorded_membership_survives_a_replay_and_a_compaction() -> None:
    table = OffsetTable()
    payloads: list[bytes] = []
    for group, data in [("g", b"first"), ("g", b"second"), ("h", b"h"), ("h", None)]:
        change = table.put_group_metadata(group, data)
        payloads.append(change.payload)  # what the broker makes durable
        table.apply(change)
    assert table.group_metadata() == {"g": b"second"}
    replayed = OffsetTable.replay(payloads)
    assert replayed.group_metadata() == {"g": b"second"}
    assert OffsetTable.replay(replayed.live_records()).group_metadata() == {"g": b"second"}
