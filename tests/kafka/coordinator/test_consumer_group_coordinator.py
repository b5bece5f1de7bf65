"""The KIP-848 consumer-group coordinator, sans-I/O: heartbeats in, epochs and assignments out.

Time is an argument, so session and rebalance timeouts are tested by passing a later
``now``; no socket, no sleep.
"""

from __future__ import annotations

from streamsource.kafka.coordinator.assignors import range_assignor, uniform_assignor
from streamsource.kafka.coordinator.consumer_group import (
    ConsumerGroupState,
    ConsumerHeartbeat,
    ConsumerHeartbeatResult,
)
from streamsource.kafka.coordinator.consumer_groups import (
    ConsumerGroupConfig,
    ConsumerGroupCoordinator,
)
from streamsource.kafka.protocol.errors import ErrorCode

TOPICS = {"orders": 4, "payments": 2}
SESSION_MS = 10_000


def coordinator() -> ConsumerGroupCoordinator:
    return ConsumerGroupCoordinator(
        ConsumerGroupConfig(session_timeout_ms=SESSION_MS, heartbeat_interval_ms=1_000)
    )


def join(
    c: ConsumerGroupCoordinator,
    member: str,
    now: int = 0,
    topics: tuple[str, ...] = ("orders",),
    **kw: object,
) -> ConsumerHeartbeatResult:
    req = ConsumerHeartbeat(
        group_id="g",
        member_id=member,
        member_epoch=0,
        rebalance_timeout_ms=kw.pop("rebalance_timeout_ms", 5_000),  # type: ignore[arg-type]
        subscribed_topics=topics,
        owned=frozenset(),
        **kw,  # type: ignore[arg-type]
    )
    return c.heartbeat(now, req, TOPICS)


def beat(
    c: ConsumerGroupCoordinator,
    member: str,
    epoch: int,
    owned: set[tuple[str, int]] | frozenset[tuple[str, int]] | None,
    now: int = 0,
    **kw: object,
) -> ConsumerHeartbeatResult:
    req = ConsumerHeartbeat(
        group_id="g",
        member_id=member,
        member_epoch=epoch,
        owned=frozenset(owned) if owned is not None else None,
        **kw,  # type: ignore[arg-type]
    )
    return c.heartbeat(now, req, TOPICS)


def orders(*partitions: int) -> frozenset[tuple[str, int]]:
    return frozenset(("orders", p) for p in partitions)


def test_first_member_gets_every_partition_at_epoch_one() -> None:
    c = coordinator()
    result = join(c, "a")
    assert (result.error_code, result.member_id, result.member_epoch) == (ErrorCode.NONE, "a", 1)
    assert result.assignment == orders(0, 1, 2, 3)
    assert result.heartbeat_interval_ms == 1_000
    # nothing changed: the next answer carries no assignment
    again = beat(c, "a", 1, orders(0, 1, 2, 3))
    assert (again.member_epoch, again.assignment) == (1, None)
    assert c.state("g") is ConsumerGroupState.STABLE


def test_a_partition_moves_only_after_its_owner_confirms_the_revocation() -> None:
    c = coordinator()
    join(c, "a")
    b = join(c, "b")
    # b is in the new epoch's target, but a still holds everything: b gets nothing yet
    assert (b.member_epoch, b.assignment) == (2, frozenset())
    a = beat(c, "a", 1, orders(0, 1, 2, 3))
    # a is told to keep two partitions (revoke the others) and stays at epoch 1 meanwhile
    assert a.member_epoch == 1
    assert a.assignment is not None and len(a.assignment) == 2
    moving = orders(0, 1, 2, 3) - a.assignment
    assert beat(c, "b", 2, frozenset()).assignment is None  # still held by a
    assert c.state("g") is ConsumerGroupState.RECONCILING
    # a heartbeats without the revoked partitions: it reaches epoch 2 and b gets them
    confirmed = beat(c, "a", 1, a.assignment)
    assert (confirmed.member_epoch, confirmed.assignment) == (2, None)
    b_next = beat(c, "b", 2, frozenset())
    assert b_next.assignment == moving
    beat(c, "b", 2, moving)
    assert c.state("g") is ConsumerGroupState.STABLE


def test_a_member_that_leaves_frees_its_partitions_for_the_others() -> None:
    c = coordinator()
    join(c, "a")
    join(c, "b")
    kept = beat(c, "a", 1, orders(0, 1, 2, 3)).assignment
    assert kept is not None
    beat(c, "a", 1, kept)
    b = beat(c, "b", 2, frozenset()).assignment
    assert b is not None
    left = beat(c, "b", -1, None)
    assert (left.error_code, left.member_epoch) == (ErrorCode.NONE, -1)
    a = beat(c, "a", 2, kept)
    assert (a.member_epoch, a.assignment) == (3, orders(0, 1, 2, 3))


def test_an_expired_session_removes_the_member_and_its_partitions_move() -> None:
    c = coordinator()
    join(c, "a", now=0)
    join(c, "b", now=0)
    kept = beat(c, "a", 1, orders(0, 1, 2, 3), now=1_000).assignment
    assert kept is not None
    beat(c, "b", 2, frozenset(), now=2_000)  # b's last heartbeat
    beat(c, "a", 1, kept, now=5_000)
    assert c.next_deadline_ms() == 2_000 + SESSION_MS  # b's session (a's ends at 15 000)
    assert c.tick(2_000 + SESSION_MS - 1) == []
    assert c.tick(2_000 + SESSION_MS) == [("g", "b")]
    assert beat(c, "b", 2, None, now=12_001).error_code == ErrorCode.UNKNOWN_MEMBER_ID
    a = beat(c, "a", 2, kept, now=12_001)
    assert a.assignment == orders(0, 1, 2, 3)


def test_a_member_that_does_not_revoke_within_its_rebalance_timeout_is_fenced() -> None:
    c = coordinator()
    join(c, "a", rebalance_timeout_ms=3_000)
    join(c, "b")
    beat(c, "a", 1, orders(0, 1, 2, 3), now=100)  # told to revoke two
    assert c.next_deadline_ms() == 3_100
    assert c.tick(3_100) == [("g", "a")]
    b = beat(c, "b", 2, frozenset(), now=3_200)
    assert b.assignment == orders(0, 1, 2, 3)
    again = beat(c, "a", 1, orders(0, 1, 2, 3), now=3_300)
    assert again.error_code == ErrorCode.UNKNOWN_MEMBER_ID


def test_a_wrong_epoch_is_fenced_but_a_lost_answer_is_forgiven() -> None:
    c = coordinator()
    join(c, "a")
    join(c, "b")
    kept = beat(c, "a", 1, orders(0, 1, 2, 3)).assignment
    assert kept is not None
    assert beat(c, "a", 1, kept).member_epoch == 2
    # the answer with epoch 2 was lost: a heartbeats with epoch 1 and owns nothing extra
    assert beat(c, "a", 1, kept).error_code == ErrorCode.NONE
    assert beat(c, "a", 7, kept).error_code == ErrorCode.FENCED_MEMBER_EPOCH
    # the previous epoch claiming partitions it no longer has is fenced too
    assert beat(c, "a", 1, orders(0, 1, 2, 3)).error_code == ErrorCode.FENCED_MEMBER_EPOCH


def test_a_static_member_restarting_keeps_its_partitions_without_a_rebalance() -> None:
    c = coordinator()
    join(c, "a1", instance_id="pod-a")
    join(c, "b", instance_id="pod-b")
    kept = beat(c, "a1", 1, orders(0, 1, 2, 3)).assignment
    assert kept is not None
    beat(c, "a1", 1, kept)
    b_parts = beat(c, "b", 2, frozenset()).assignment
    epoch = c.groups["g"].group_epoch
    # a second live member under the same instance id is refused
    clash = join(c, "a2", instance_id="pod-a")
    assert clash.error_code == ErrorCode.UNRELEASED_INSTANCE_ID
    assert beat(c, "a1", 2, kept, instance_id="pod-a").member_epoch == 2
    # a1 leaves for now (-2); a2 comes back under pod-a with a1's place and partitions
    assert beat(c, "a1", -2, kept).member_epoch == -2
    back = join(c, "a2", instance_id="pod-a")
    assert (back.error_code, back.member_epoch, back.assignment) == (ErrorCode.NONE, 2, kept)
    assert c.groups["g"].group_epoch == epoch  # no rebalance
    assert beat(c, "b", 2, b_parts).assignment is None


def test_unknown_assignor_bad_regex_and_missing_fields_are_refused_by_name() -> None:
    c = coordinator()
    bad = join(c, "a", server_assignor="sticky")
    assert bad.error_code == ErrorCode.UNSUPPORTED_ASSIGNOR
    assert bad.error_message is not None and "sticky" in bad.error_message
    regex = c.heartbeat(
        0,
        ConsumerHeartbeat("g", "a", 0, rebalance_timeout_ms=1, subscribed_regex="orders("),
        TOPICS,
    )
    assert regex.error_code == ErrorCode.INVALID_REGULAR_EXPRESSION
    no_topics = c.heartbeat(0, ConsumerHeartbeat("g", "a", 0, rebalance_timeout_ms=1), TOPICS)
    assert no_topics.error_code == ErrorCode.INVALID_REQUEST
    no_id = c.heartbeat(0, ConsumerHeartbeat("g", "", 0, subscribed_topics=("orders",)), TOPICS)
    assert no_id.error_code == ErrorCode.INVALID_REQUEST
    assert beat(c, "ghost", 3, None).error_code == ErrorCode.UNKNOWN_MEMBER_ID


def test_v0_members_get_an_id_from_the_coordinator() -> None:
    c = ConsumerGroupCoordinator(new_member_id=lambda: "chosen")
    req = ConsumerHeartbeat(
        "g", "", 0, rebalance_timeout_ms=1, subscribed_topics=("orders",),
        client_chooses_member_id=False,
    )  # fmt: skip
    assert c.heartbeat(0, req, TOPICS).member_id == "chosen"


def test_a_regex_subscription_follows_new_topics_and_partition_counts() -> None:
    c = coordinator()
    req = ConsumerHeartbeat("g", "a", 0, rebalance_timeout_ms=1, subscribed_regex="pay.*")
    first = c.heartbeat(0, req, TOPICS)
    assert first.assignment == frozenset({("payments", 0), ("payments", 1)})
    grown = {**TOPICS, "payments": 3, "payouts": 1}
    later = c.heartbeat(0, ConsumerHeartbeat("g", "a", first.member_epoch), grown)
    assert later.assignment == frozenset(
        {("payments", 0), ("payments", 1), ("payments", 2), ("payouts", 0)}
    )
    assert later.member_epoch > first.member_epoch


def test_the_group_uses_the_assignor_its_members_ask_for() -> None:
    c = coordinator()
    join(c, "a", topics=("orders", "payments"), server_assignor="range")
    join(c, "b", topics=("orders", "payments"), server_assignor="range")
    group = c.groups["g"]
    assert group.assignor == "range"
    assert group.target == {
        "a": {("orders", 0), ("orders", 1), ("payments", 0)},
        "b": {("orders", 2), ("orders", 3), ("payments", 1)},
    }


def test_uniform_is_balanced_and_sticky() -> None:
    subs = {m: frozenset({"orders"}) for m in "abc"}
    first = uniform_assignor(subs, {"orders": 6}, {})
    assert sorted(len(p) for p in first.values()) == [2, 2, 2]
    # d joins: each old member keeps what it had except what d needs
    subs["d"] = frozenset({"orders"})
    second = uniform_assignor(subs, {"orders": 6}, first)
    assert sorted(len(p) for p in second.values()) == [1, 1, 2, 2]
    moved = sum(len(second[m] - first[m]) for m in "abc")
    assert moved == 0
    assert set().union(*second.values()) == {("orders", p) for p in range(6)}
    # mixed subscriptions: each topic's partitions go only to its subscribers
    mixed = uniform_assignor(
        {"x": frozenset({"orders"}), "y": frozenset({"orders", "payments"})},
        {"orders": 4, "payments": 2},
        {},
    )
    assert all(t == "orders" for t, _ in mixed["x"])
    assert (len(mixed["x"]), len(mixed["y"])) == (3, 3)


def test_range_gives_co_partitioned_topics_the_same_numbers() -> None:
    subs = {m: frozenset({"orders", "payments"}) for m in "ab"}
    target = range_assignor(subs, {"orders": 3, "payments": 3}, {})
    assert target == {
        "a": {("orders", 0), ("orders", 1), ("payments", 0), ("payments", 1)},
        "b": {("orders", 2), ("payments", 2)},
    }


def test_commits_need_the_current_member_epoch() -> None:
    c = coordinator()
    join(c, "a")
    assert c.validate_commit("g", 1, "a") == ErrorCode.NONE
    assert c.validate_commit("g", 0, "a") == ErrorCode.STALE_MEMBER_EPOCH
    assert c.validate_commit("g", 1, "nobody") == ErrorCode.UNKNOWN_MEMBER_ID
    assert c.validate_commit("g", -1, "") == ErrorCode.NONE  # an admin tool's commit
    assert c.delete_group("g") == ErrorCode.NON_EMPTY_GROUP
    beat(c, "a", -1, None)
    assert c.delete_group("g") == ErrorCode.NONE
