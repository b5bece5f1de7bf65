"""The consumer-group coordinator driven with explicit clocks, as a broker would drive it."""

from __future__ import annotations

from streamsource.kafka.coordinator.group_messages import (
    GroupConfig,
    GroupState,
    JoinRequest,
    JoinResult,
    LeavingMember,
    Protocol,
    Reply,
    SyncRequest,
    SyncResult,
)
from streamsource.kafka.coordinator.groups import GroupCoordinator
from streamsource.kafka.protocol.errors import ErrorCode

SESSION = 10_000
REBALANCE = 30_000


def coordinator(delay: int = 0) -> GroupCoordinator:
    return GroupCoordinator(GroupConfig(initial_rebalance_delay_ms=delay))


def join_request(
    member_id: str = "",
    *,
    group: str = "g",
    protocols: list[Protocol] | None = None,
    instance: str | None = None,
    require_known: bool = True,
    session: int = SESSION,
    client_id: str = "client",
) -> JoinRequest:
    return JoinRequest(
        group_id=group,
        member_id=member_id,
        group_instance_id=instance,
        client_id=client_id,
        client_host="/127.0.0.1",
        protocol_type="consumer",
        protocols=protocols
        if protocols is not None
        else [Protocol("range", b"meta-" + client_id.encode())],
        session_timeout_ms=session,
        rebalance_timeout_ms=REBALANCE,
        require_known_member_id=require_known,
    )


def by_token(replies: list[Reply]) -> dict[object, JoinResult | SyncResult]:
    answered = {r.token: r.result for r in replies}
    assert len(answered) == len(replies), "a token was answered twice"
    return answered


def join_result(replies: list[Reply], token: object) -> JoinResult:
    result = by_token(replies)[token]
    assert isinstance(result, JoinResult)
    return result


def sync_result(replies: list[Reply], token: object) -> SyncResult:
    result = by_token(replies)[token]
    assert isinstance(result, SyncResult)
    return result


def get_member_id(
    c: GroupCoordinator, now: int, client_id: str = "client", group: str = "g"
) -> str:
    """The KIP-394 first step: a join without member id is answered MEMBER_ID_REQUIRED."""
    first = join_result(
        c.join(now, "first", join_request(client_id=client_id, group=group)), "first"
    )
    assert first.error_code == ErrorCode.MEMBER_ID_REQUIRED
    assert first.member_id.startswith(client_id + "-")
    return first.member_id


def stable_single_member(c: GroupCoordinator, now: int = 0) -> str:
    mid = get_member_id(c, now)
    j = join_result(c.join(now, "j", join_request(mid)), "j")
    assert j.error_code == ErrorCode.NONE
    s = sync_result(
        c.sync(now, "s", SyncRequest("g", j.generation_id, mid, assignments={mid: b"all"})), "s"
    )
    assert s.assignment == b"all"
    return mid


def test_single_member_join_sync_heartbeat() -> None:
    c = coordinator()
    mid = get_member_id(c, 0)
    assert c.group_state("g") is GroupState.EMPTY  # a pending member is not yet a member

    j = join_result(c.join(1, "j", join_request(mid)), "j")
    assert j.error_code == ErrorCode.NONE
    assert (j.generation_id, j.leader_id, j.member_id) == (1, mid, mid)
    assert (j.protocol_type, j.protocol_name) == ("consumer", "range")
    assert [(m.member_id, m.metadata) for m in j.members] == [(mid, b"meta-client")]
    assert c.group_state("g") is GroupState.COMPLETING_REBALANCE

    s = sync_result(c.sync(2, "s", SyncRequest("g", 1, mid, assignments={mid: b"p0"})), "s")
    assert s == SyncResult(ErrorCode.NONE, "consumer", "range", b"p0")
    assert c.group_state("g") is GroupState.STABLE
    assert c.heartbeat(3, "g", 1, mid) == ErrorCode.NONE


def test_second_member_triggers_rebalance_learned_through_heartbeat() -> None:
    c = coordinator()
    a = stable_single_member(c)
    b = get_member_id(c, 10, client_id="b")
    assert c.join(10, "jb", join_request(b, client_id="b")) == []  # waits for a to re-join
    assert c.group_state("g") is GroupState.PREPARING_REBALANCE
    assert c.heartbeat(11, "g", 1, a) == ErrorCode.REBALANCE_IN_PROGRESS

    replies = c.join(12, "ja", join_request(a))
    ja, jb = join_result(replies, "ja"), join_result(replies, "jb")
    assert ja.generation_id == jb.generation_id == 2
    assert ja.leader_id == jb.leader_id == a  # the leader stays the leader
    assert {m.member_id for m in ja.members} == {a, b}
    assert jb.members == []  # only the leader sees the members

    # the follower's sync waits for the leader's
    assert c.sync(13, "sb", SyncRequest("g", 2, b)) == []
    replies = c.sync(14, "sa", SyncRequest("g", 2, a, assignments={a: b"A", b: b"B"}))
    assert sync_result(replies, "sa").assignment == b"A"
    assert sync_result(replies, "sb").assignment == b"B"
    assert c.group_state("g") is GroupState.STABLE


def test_leader_sync_before_follower_sync_answers_follower_at_once() -> None:
    c = coordinator()
    a = stable_single_member(c)
    b = get_member_id(c, 10, client_id="b")
    c.join(10, "jb", join_request(b, client_id="b"))
    c.join(11, "ja", join_request(a))
    assert (
        sync_result(
            c.sync(12, "sa", SyncRequest("g", 2, a, assignments={a: b"A", b: b"B"})), "sa"
        ).assignment
        == b"A"
    )
    assert sync_result(c.sync(13, "sb", SyncRequest("g", 2, b)), "sb").assignment == b"B"


def test_leave_triggers_rebalance_and_answers_waiting_joiners() -> None:
    c = coordinator()
    a = stable_single_member(c)
    b = get_member_id(c, 10, client_id="b")
    c.join(10, "jb", join_request(b, client_id="b"))
    # a leaves instead of re-joining: the join phase completes with b alone
    result = c.leave(11, "g", [LeavingMember(a)])
    assert [m.error_code for m in result.members] == [ErrorCode.NONE]
    jb = join_result(result.replies, "jb")
    assert (jb.error_code, jb.generation_id, jb.leader_id) == (ErrorCode.NONE, 2, b)
    assert c.heartbeat(12, "g", 2, a) == ErrorCode.UNKNOWN_MEMBER_ID


def test_leave_of_last_member_empties_the_group() -> None:
    c = coordinator()
    a = stable_single_member(c)
    result = c.leave(5, "g", [LeavingMember(a), LeavingMember("nobody")])
    assert [m.error_code for m in result.members] == [ErrorCode.NONE, ErrorCode.UNKNOWN_MEMBER_ID]
    assert c.group_state("g") is GroupState.EMPTY
    assert c.describe("g").members == []
    assert (
        c.leave(6, "missing", [LeavingMember(a)]).members[0].error_code
        == ErrorCode.UNKNOWN_MEMBER_ID
    )


def test_leave_during_sync_phase_sends_waiting_followers_back_to_join() -> None:
    c = coordinator()
    a = stable_single_member(c)
    b = get_member_id(c, 10, client_id="b")
    x = get_member_id(c, 10, client_id="x")
    c.join(10, "jb", join_request(b, client_id="b"))
    c.join(10, "jx", join_request(x, client_id="x"))
    c.join(10, "ja", join_request(a))
    assert c.sync(11, "sb", SyncRequest("g", 2, b)) == []
    result = c.leave(12, "g", [LeavingMember(x)])
    assert sync_result(result.replies, "sb").error_code == ErrorCode.REBALANCE_IN_PROGRESS
    assert c.group_state("g") is GroupState.PREPARING_REBALANCE


def test_session_timeout_expires_member_and_rebalances() -> None:
    c = coordinator()
    a = stable_single_member(c, now=0)
    b = get_member_id(c, 0, client_id="b")
    c.join(0, "jb", join_request(b, client_id="b"))
    replies = c.join(0, "ja", join_request(a))
    c.sync(0, "sa", SyncRequest("g", 2, a, assignments={a: b"A", b: b"B"}))
    c.sync(0, "sb", SyncRequest("g", 2, b))
    assert len(replies) == 2

    # a keeps heartbeating, b goes silent
    assert c.heartbeat(SESSION - 1, "g", 2, a) == ErrorCode.NONE
    assert c.next_deadline_ms() == SESSION  # b's session
    assert c.tick(SESSION - 1) == []
    assert c.tick(SESSION) == []  # b expired; a must re-join
    assert c.group_state("g") is GroupState.PREPARING_REBALANCE
    assert c.heartbeat(SESSION + 1, "g", 2, a) == ErrorCode.REBALANCE_IN_PROGRESS
    assert c.heartbeat(SESSION + 1, "g", 2, b) == ErrorCode.UNKNOWN_MEMBER_ID
    ja = join_result(c.join(SESSION + 2, "ja2", join_request(a)), "ja2")
    assert (ja.generation_id, [m.member_id for m in ja.members]) == (3, [a])


def test_rebalance_timeout_drops_member_that_did_not_rejoin() -> None:
    c = coordinator()
    a = stable_single_member(c)
    b = get_member_id(c, 100, client_id="b")
    c.join(100, "jb", join_request(b, client_id="b"))
    # a heartbeats (so its session never expires) but never re-joins
    for t in range(1_000, REBALANCE, 5_000):
        assert c.heartbeat(t, "g", 1, a) == ErrorCode.REBALANCE_IN_PROGRESS
        assert c.tick(t) == []
    assert c.next_deadline_ms() == 100 + REBALANCE
    jb = join_result(c.tick(100 + REBALANCE), "jb")
    assert (jb.error_code, jb.generation_id, jb.leader_id) == (ErrorCode.NONE, 2, b)
    assert [m.member_id for m in jb.members] == [b]
    assert c.heartbeat(100 + REBALANCE, "g", 1, a) == ErrorCode.UNKNOWN_MEMBER_ID


def test_member_id_required_flow_and_unknown_ids() -> None:
    c = coordinator()
    # a v0-v3 client joins in one step
    old = join_result(c.join(0, "old", join_request(require_known=False)), "old")
    assert old.error_code == ErrorCode.NONE and old.member_id
    assert (
        join_result(c.join(0, "x", join_request("made-up")), "x").error_code
        == ErrorCode.UNKNOWN_MEMBER_ID
    )
    assert (
        join_result(c.join(0, "y", join_request("made-up", group="other")), "y").error_code
        == ErrorCode.UNKNOWN_MEMBER_ID
    )
    # a pending member id that is never used expires after the session timeout
    pending = get_member_id(c, 0, group="h")
    c.tick(SESSION)
    assert (
        join_result(c.join(SESSION, "z", join_request(pending, group="h")), "z").error_code
        == ErrorCode.UNKNOWN_MEMBER_ID
    )


def test_errors_for_wrong_generation_unknown_member_and_bad_requests() -> None:
    c = coordinator()
    a = stable_single_member(c)
    assert (
        sync_result(c.sync(1, "s", SyncRequest("g", 7, a)), "s").error_code
        == ErrorCode.ILLEGAL_GENERATION
    )
    assert (
        sync_result(c.sync(1, "s", SyncRequest("g", 1, "bogus")), "s").error_code
        == ErrorCode.UNKNOWN_MEMBER_ID
    )
    assert (
        sync_result(c.sync(1, "s", SyncRequest("nope", 1, a)), "s").error_code
        == ErrorCode.UNKNOWN_MEMBER_ID
    )
    bad_proto = SyncRequest("g", 1, a, protocol_type="consumer", protocol_name="roundrobin")
    assert (
        sync_result(c.sync(1, "s", bad_proto), "s").error_code
        == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    )
    assert c.heartbeat(1, "g", 7, a) == ErrorCode.ILLEGAL_GENERATION
    assert c.heartbeat(1, "g", 1, "bogus") == ErrorCode.UNKNOWN_MEMBER_ID
    assert c.heartbeat(1, "nope", 1, a) == ErrorCode.UNKNOWN_MEMBER_ID
    assert (
        join_result(c.join(1, "t", join_request(session=10)), "t").error_code
        == ErrorCode.INVALID_SESSION_TIMEOUT
    )
    assert (
        join_result(c.join(1, "t", join_request(group="")), "t").error_code
        == ErrorCode.INVALID_GROUP_ID
    )
    wrong = join_request(protocols=[Protocol("sticky", b"")])
    assert (
        join_result(c.join(1, "t", wrong), "t").error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    )
    assert (
        join_result(c.join(1, "t", join_request(protocols=[])), "t").error_code
        == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    )


def test_sync_during_join_phase_is_rebalance_in_progress() -> None:
    c = coordinator()
    a = stable_single_member(c)
    b = get_member_id(c, 1, client_id="b")
    c.join(1, "jb", join_request(b, client_id="b"))
    assert (
        sync_result(c.sync(2, "s", SyncRequest("g", 1, a)), "s").error_code
        == ErrorCode.REBALANCE_IN_PROGRESS
    )


def test_protocol_selection_picks_one_all_members_support() -> None:
    c = coordinator()
    a = get_member_id(c, 0, client_id="a")
    b = get_member_id(c, 0, client_id="b")
    c.join(
        0,
        "ja",
        join_request(
            a,
            client_id="a",
            protocols=[Protocol("cooperative-sticky", b"ca"), Protocol("range", b"ra")],
        ),
    )
    replies = c.join(
        0,
        "jb",
        join_request(
            b, client_id="b", protocols=[Protocol("roundrobin", b"rb"), Protocol("range", b"rrb")]
        ),
    )
    ja = join_result(replies, "ja")
    assert ja.protocol_name == "range"
    assert {m.member_id: m.metadata for m in ja.members} == {a: b"ra", b: b"rrb"}


def test_protocol_selection_by_vote() -> None:
    c = coordinator()
    ids = [get_member_id(c, 0, client_id=n) for n in "abc"]
    prefs = [["range", "roundrobin"], ["roundrobin", "range"], ["roundrobin", "range"]]
    replies: list[Reply] = []
    for n, mid, names in zip("abc", ids, prefs, strict=True):
        replies += c.join(
            0, n, join_request(mid, client_id=n, protocols=[Protocol(p, b"") for p in names])
        )
    assert {join_result(replies, n).protocol_name for n in "abc"} == {"roundrobin"}


def test_initial_rebalance_delay_gathers_members_starting_together() -> None:
    c = coordinator(delay=3_000)
    a = get_member_id(c, 0, client_id="a")
    assert c.join(0, "ja", join_request(a, client_id="a")) == []
    assert c.next_deadline_ms() == 3_000
    b = get_member_id(c, 1_000, client_id="b")
    assert c.join(1_000, "jb", join_request(b, client_id="b")) == []
    assert c.tick(3_000) == []  # someone arrived during the delay: wait one more delay
    replies = c.tick(6_000)
    assert join_result(replies, "ja").generation_id == join_result(replies, "jb").generation_id == 1
    assert len(join_result(replies, "ja").members) == 2


def test_known_follower_rejoin_while_stable_returns_current_generation() -> None:
    c = coordinator()
    a = stable_single_member(c)
    b = get_member_id(c, 1, client_id="b")
    c.join(1, "jb", join_request(b, client_id="b"))
    c.join(1, "ja", join_request(a))
    c.sync(1, "sa", SyncRequest("g", 2, a, assignments={a: b"A", b: b"B"}))
    again = join_result(c.join(2, "jb2", join_request(b, client_id="b")), "jb2")
    assert (again.error_code, again.generation_id, again.members) == (ErrorCode.NONE, 2, [])
    assert c.group_state("g") is GroupState.STABLE
    # a changed subscription forces a rebalance
    changed = join_request(b, client_id="b", protocols=[Protocol("range", b"new-topics")])
    assert c.join(3, "jb3", changed) == []
    assert c.group_state("g") is GroupState.PREPARING_REBALANCE


def test_retried_join_answers_the_abandoned_request() -> None:
    c = coordinator()
    a = stable_single_member(c)
    b = get_member_id(c, 1, client_id="b")
    assert c.join(1, "jb", join_request(b, client_id="b")) == []
    replies = c.join(2, "jb-retry", join_request(b, client_id="b"))
    assert join_result(replies, "jb").error_code == ErrorCode.REBALANCE_IN_PROGRESS
    replies = c.join(3, "ja", join_request(a))
    assert join_result(replies, "jb-retry").generation_id == 2


def test_static_member_restart_keeps_assignment_without_rebalance() -> None:
    c = coordinator()
    j = join_result(
        c.join(0, "j", join_request(instance="pod-1")), "j"
    )  # static: no MEMBER_ID_REQUIRED
    assert j.error_code == ErrorCode.NONE
    old = j.member_id
    c.sync(0, "s", SyncRequest("g", 1, old, "pod-1", assignments={old: b"mine"}))
    # the process restarts and joins again without its member id
    again = join_result(c.join(5, "j2", join_request(instance="pod-1")), "j2")
    assert again.error_code == ErrorCode.NONE and again.generation_id == 1
    new = again.member_id
    assert new != old and c.group_state("g") is GroupState.STABLE
    assert (
        sync_result(c.sync(6, "s2", SyncRequest("g", 1, new, "pod-1")), "s2").assignment == b"mine"
    )
    # the old incarnation is fenced
    assert c.heartbeat(7, "g", 1, old, "pod-1") == ErrorCode.FENCED_INSTANCE_ID
    assert (
        c.leave(8, "g", [LeavingMember(old, "pod-1")]).members[0].error_code
        == ErrorCode.FENCED_INSTANCE_ID
    )
    assert c.leave(8, "g", [LeavingMember("", "pod-1")]).members[0].error_code == ErrorCode.NONE
    assert c.group_state("g") is GroupState.EMPTY


def test_validate_commit() -> None:
    c = coordinator()
    # standalone consumer (assign(), no group membership)
    assert c.validate_commit("solo", -1, "") == ErrorCode.NONE
    assert [g.group_id for g in c.list_groups()] == ["solo"]
    assert c.validate_commit("unknown", 3, "m") == ErrorCode.ILLEGAL_GENERATION
    a = get_member_id(c, 0)
    c.join(0, "j", join_request(a))
    assert c.validate_commit("g", 1, a) == ErrorCode.REBALANCE_IN_PROGRESS  # sync phase
    c.sync(0, "s", SyncRequest("g", 1, a, assignments={a: b""}))
    assert c.validate_commit("g", 1, a, now_ms=1) == ErrorCode.NONE
    assert c.validate_commit("g", 0, a) == ErrorCode.ILLEGAL_GENERATION
    assert c.validate_commit("g", 1, "bogus") == ErrorCode.UNKNOWN_MEMBER_ID
    assert c.validate_commit("g", -1, "") == ErrorCode.UNKNOWN_MEMBER_ID  # the group has members
    # commits are allowed while the member is being asked to re-join
    b = get_member_id(c, 2, client_id="b")
    c.join(2, "jb", join_request(b, client_id="b"))
    assert c.validate_commit("g", 1, a) == ErrorCode.NONE


def test_describe_list_and_delete() -> None:
    c = coordinator()
    dead = c.describe("nope")
    assert (dead.error_code, dead.state, dead.members) == (ErrorCode.NONE, GroupState.DEAD, [])
    a = stable_single_member(c)
    d = c.describe("g")
    assert (d.state, d.protocol_type, d.protocol_name) == (GroupState.STABLE, "consumer", "range")
    [m] = d.members
    assert (m.member_id, m.client_id, m.client_host, m.metadata, m.assignment) == (
        a,
        "client",
        "/127.0.0.1",
        b"meta-client",
        b"all",
    )
    c.note_group_with_offsets("restored")
    listed = {g.group_id: (g.protocol_type, g.state) for g in c.list_groups()}
    assert listed == {"g": ("consumer", GroupState.STABLE), "restored": ("", GroupState.EMPTY)}
    assert [g.group_id for g in c.list_groups({GroupState.EMPTY})] == ["restored"]
    assert c.delete_group("g") == ErrorCode.NON_EMPTY_GROUP
    assert c.delete_group("restored") == ErrorCode.NONE
    assert c.delete_group("restored") == ErrorCode.GROUP_ID_NOT_FOUND
    c.leave(1, "g", [LeavingMember(a)])
    assert c.delete_group("g") == ErrorCode.NONE
    assert c.list_groups() == []


def test_group_size_limit() -> None:
    c = GroupCoordinator(GroupConfig(initial_rebalance_delay_ms=0, max_group_size=2))
    get_member_id(c, 0, client_id="a")
    get_member_id(c, 0, client_id="b")
    third = join_result(c.join(0, "c", join_request(client_id="c")), "c")
    assert third.error_code == ErrorCode.GROUP_MAX_SIZE_REACHED


def test_static_leader_restart_is_not_told_it_leads() -> None:
    c = coordinator()
    first = join_result(c.join(0, "j", join_request(instance="pod-1")), "j")
    assert first.leader_id == first.member_id
    c.sync(
        0, "s", SyncRequest("g", 1, first.member_id, "pod-1", assignments={first.member_id: b"x"})
    )
    again = join_result(c.join(1, "j2", join_request(instance="pod-1")), "j2")
    # the stable group would ignore a new assignment, so the restarted leader must not make one
    assert again.leader_id == first.member_id != again.member_id
    assert again.members == []


def test_static_member_keeps_its_place_through_a_rebalance_until_its_session_ends() -> None:
    c = coordinator()
    # static members use long sessions, so that a restart does not cost a rebalance
    static = join_request(instance="pod-1", client_id="s", session=60_000)
    s = join_result(c.join(0, "js", static), "js").member_id
    c.sync(0, "ss", SyncRequest("g", 1, s, "pod-1", assignments={s: b"S"}))
    d = get_member_id(c, 100, client_id="d")
    c.join(100, "jd", join_request(d, client_id="d"))
    # the static member is restarting and does not re-join: the join phase ends without it...
    jd = join_result(c.tick(100 + REBALANCE), "jd")
    assert (jd.generation_id, jd.leader_id) == (2, d)
    assert {m.member_id for m in jd.members} == {s, d}  # ...but it is still a member
    c.sync(100 + REBALANCE, "sd", SyncRequest("g", 2, d, assignments={d: b"D", s: b"S2"}))
    assert c.group_state("g") is GroupState.STABLE
    # its session (started at its last activity) ends: now it is removed
    assert c.heartbeat(40_000, "g", 2, d) == ErrorCode.NONE
    assert c.heartbeat(55_000, "g", 2, d) == ErrorCode.NONE
    assert c.tick(59_999) == []
    assert {m.member_id for m in c.describe("g").members} == {s, d}
    c.tick(60_000)
    assert {m.member_id for m in c.describe("g").members} == {d}
    assert c.heartbeat(60_001, "g", 2, d) == ErrorCode.REBALANCE_IN_PROGRESS


def test_member_that_never_syncs_is_dropped_after_rebalance_timeout() -> None:
    c = coordinator()
    a = stable_single_member(c)
    b = get_member_id(c, 1, client_id="b")
    c.join(1, "jb", join_request(b, client_id="b"))
    c.join(1, "ja", join_request(a))
    assert c.sync(2, "sb", SyncRequest("g", 2, b)) == []
    # the leader heartbeats but never sends its assignments
    for t in range(1_000, REBALANCE, 4_000):
        assert c.heartbeat(t, "g", 2, a) == ErrorCode.NONE
        c.heartbeat(t, "g", 2, b)
        assert c.tick(t) == []
    replies = c.tick(1 + REBALANCE)
    assert sync_result(replies, "sb").error_code == ErrorCode.REBALANCE_IN_PROGRESS
    assert c.heartbeat(2 + REBALANCE, "g", 2, a) == ErrorCode.UNKNOWN_MEMBER_ID
    jb = join_result(c.join(3 + REBALANCE, "jb2", join_request(b, client_id="b")), "jb2")
    assert (jb.error_code, jb.generation_id, jb.leader_id) == (ErrorCode.NONE, 3, b)


def test_describe_during_rebalance_hides_metadata_and_idle_coordinator_has_no_deadline() -> None:
    c = coordinator()
    assert c.next_deadline_ms() is None and c.tick(10**9) == []
    a = stable_single_member(c)
    b = get_member_id(c, 1, client_id="b")
    c.join(1, "jb", join_request(b, client_id="b"))
    d = c.describe("g")
    assert (d.state, d.protocol_name) == (GroupState.PREPARING_REBALANCE, "")
    assert {m.member_id for m in d.members} == {a, b}
    assert all(m.metadata == b"" and m.assignment == b"" for m in d.members)
    c.leave(2, "g", [LeavingMember(a), LeavingMember(b)])
    assert c.group_state("g") is GroupState.EMPTY
    assert c.next_deadline_ms() is None
