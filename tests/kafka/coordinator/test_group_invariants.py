"""Hypothesis drives many clients through join/sync/heartbeat/leave/time and checks that
the coordinator's promises hold whatever the interleaving."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

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
REBALANCE = 20_000
PROTOCOL_SETS = [["range"], ["range", "roundrobin"], ["roundrobin", "range"]]


@dataclass
class Client:
    name: str
    protocols: list[str]
    instance: str | None = None  # static members (KIP-345) survive restarts
    member_id: str = ""
    generation: int = -1
    is_leader: bool = False
    leader_members: list[tuple[str, str]] = field(default_factory=list)  # (member id, identity)
    synced: bool = False
    must_rejoin: bool = True
    pending: object | None = None  # token of the outstanding join/sync

    @property
    def identity(self) -> str:
        """Who the client is across restarts: its static instance id, else its member id."""
        return self.instance or self.member_id


class GroupMachine(RuleBasedStateMachine):
    @initialize(delay=st.sampled_from([0, 3_000]))
    def setup(self, delay: int) -> None:
        self.c = GroupCoordinator(GroupConfig(initial_rebalance_delay_ms=delay))
        self.now = 0
        self.clients: list[Client] = []
        self.tokens = count()
        self.outstanding: dict[object, Client] = {}
        self.answered: set[object] = set()
        self.max_generation = 0
        # generation -> identities of that generation's members (from the leader's JoinResult)
        self.generation_members: dict[int, set[str]] = {}
        self.generation_joined: dict[int, set[str]] = {}
        self.assignments: dict[int, dict[str, bytes]] = {}
        self.generation_leader: dict[int, str] = {}
        self.identity_of: dict[str, str] = {}  # member id -> identity

    # -- helpers ----------------------------------------------------------------------------

    def token(self, client: Client) -> object:
        t = next(self.tokens)
        self.outstanding[t] = client
        client.pending = t
        return t

    def deliver(self, replies: list[Reply]) -> None:
        for reply in replies:  # learn who every newly issued member id is, first
            if isinstance(reply.result, JoinResult) and reply.result.error_code == ErrorCode.NONE:
                joiner = self.outstanding[reply.token]
                self.identity_of[reply.result.member_id] = joiner.instance or reply.result.member_id
        for reply in replies:
            assert reply.token not in self.answered, "a request was answered twice"
            self.answered.add(reply.token)
            client = self.outstanding.pop(reply.token)
            if client.pending == reply.token:
                client.pending = None
            if isinstance(reply.result, JoinResult):
                self.on_join(client, reply.result)
            else:
                self.on_sync(client, reply.result)

    def on_join(self, client: Client, r: JoinResult) -> None:
        if r.error_code == ErrorCode.MEMBER_ID_REQUIRED:
            client.member_id = r.member_id
            return
        if r.error_code != ErrorCode.NONE:
            if r.error_code == ErrorCode.UNKNOWN_MEMBER_ID:
                client.member_id, client.generation = "", -1
            return
        assert r.generation_id >= client.generation
        client.member_id, client.generation = r.member_id, r.generation_id
        self.identity_of[r.member_id] = client.identity
        client.synced, client.must_rejoin = False, False
        client.is_leader = r.leader_id == r.member_id
        leader = self.identity_of.get(r.leader_id, r.leader_id)
        known_leader = self.generation_leader.setdefault(r.generation_id, leader)
        assert known_leader == leader, "two leaders in one generation"
        assert r.protocol_name is not None and r.protocol_name in client.protocols
        self.generation_joined.setdefault(r.generation_id, set()).add(client.identity)
        if client.is_leader:
            listed = [(m.member_id, m.group_instance_id or m.member_id) for m in r.members]
            members = {identity for _, identity in listed}
            known = self.generation_members.setdefault(r.generation_id, members)
            assert known == members, "two leaders saw different members in one generation"
            client.leader_members = sorted(listed)
            assert client.identity in members
        else:
            assert r.members == []

    def on_sync(self, client: Client, r: SyncResult) -> None:
        if r.error_code != ErrorCode.NONE:
            client.must_rejoin = True
            if r.error_code == ErrorCode.UNKNOWN_MEMBER_ID:
                client.member_id, client.generation = "", -1
            return
        client.synced = True
        given = self.assignments.get(client.generation, {})
        assert r.assignment == given.get(client.identity, b""), "wrong assignment delivered"

    def idle(self) -> list[Client]:
        return [cl for cl in self.clients if cl.pending is None]

    # -- rules ------------------------------------------------------------------------------

    @precondition(lambda self: len(self.clients) < 5)
    @rule(protocols=st.sampled_from(PROTOCOL_SETS), static=st.booleans())
    def new_client(self, protocols: list[str], static: bool) -> None:
        name = f"c{len(self.clients)}"
        self.clients.append(Client(name, protocols, instance=f"pod-{name}" if static else None))

    @rule(data=st.data())
    def restart_static_client(self, data: st.DataObject) -> None:
        """A static member's process restarts: it forgets its member id, not its identity."""
        static = [cl for cl in self.idle() if cl.instance is not None and cl.member_id]
        if not static:
            return
        client = data.draw(st.sampled_from(static))
        client.member_id, client.generation, client.must_rejoin = "", -1, True

    @rule(data=st.data())
    def client_step(self, data: st.DataObject) -> None:
        """What a real client does next: join, sync, or heartbeat."""
        idle = self.idle()
        if not idle:
            return
        self.step(data.draw(st.sampled_from(idle)))

    def step(self, client: Client) -> None:
        if client.must_rejoin or not client.member_id or client.generation < 0:
            self.join_as(client)
        elif not client.synced:
            self.sync_as(client)
        else:
            code = self.c.heartbeat(
                self.now, "g", client.generation, client.member_id, client.instance
            )
            if code != ErrorCode.NONE:
                client.must_rejoin = True
                if code == ErrorCode.UNKNOWN_MEMBER_ID:
                    client.member_id, client.generation = "", -1

    @rule(data=st.data())
    def join(self, data: st.DataObject) -> None:
        idle = self.idle()
        if not idle:
            return
        self.join_as(data.draw(st.sampled_from(idle)))

    def join_as(self, client: Client) -> None:
        req = JoinRequest(
            "g", client.member_id, client.instance, client.name, "/host", "consumer",
            [Protocol(p, client.name.encode()) for p in client.protocols],
            SESSION, REBALANCE, True,
        )  # fmt: skip
        self.deliver(self.c.join(self.now, self.token(client), req))

    @rule(data=st.data())
    def sync(self, data: st.DataObject) -> None:
        ready = [cl for cl in self.idle() if cl.member_id and cl.generation >= 0]
        if not ready:
            return
        self.sync_as(data.draw(st.sampled_from(ready)))

    def sync_as(self, client: Client) -> None:
        assignments: dict[str, bytes] = {}
        if client.is_leader:
            assignments = {
                m: f"{client.generation}:{who}".encode() for m, who in client.leader_members
            }
            if self.c.group_state("g") is GroupState.COMPLETING_REBALANCE and (
                self.c.generation("g") == client.generation
            ):
                by_identity = {who: assignments[m] for m, who in client.leader_members}
                self.assignments.setdefault(client.generation, by_identity)
        req = SyncRequest(
            "g", client.generation, client.member_id, client.instance, assignments=assignments
        )
        self.deliver(self.c.sync(self.now, self.token(client), req))

    @rule(data=st.data())
    def heartbeat(self, data: st.DataObject) -> None:
        members = [cl for cl in self.clients if cl.member_id]
        if not members:
            return
        client = data.draw(st.sampled_from(members))
        code = self.c.heartbeat(self.now, "g", client.generation, client.member_id, client.instance)
        if code == ErrorCode.UNKNOWN_MEMBER_ID:
            client.member_id, client.generation = "", -1

    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        members = [cl for cl in self.idle() if cl.member_id]
        if not members:
            return
        client = data.draw(st.sampled_from(members))
        result = self.c.leave(self.now, "g", [LeavingMember(client.member_id, client.instance)])
        client.member_id, client.generation = "", -1
        self.deliver(result.replies)

    @rule(ms=st.sampled_from([1, 500, 1_000, 1_000, 3_000, 6_000, 11_000, 25_000]))
    def advance(self, ms: int) -> None:
        self.now += ms
        deadline = self.c.next_deadline_ms()
        self.deliver(self.c.tick(self.now))
        if deadline is not None and deadline <= self.now:
            nxt = self.c.next_deadline_ms()
            assert nxt is None or nxt > self.now, "tick left an expired deadline behind"

    def teardown(self) -> None:
        """Liveness: clients that keep going (and keep heartbeating) always settle the group."""
        if not hasattr(self, "c") or not self.clients:
            return
        for _ in range(300):
            for client in self.clients:
                if client.pending is None:
                    self.step(client)
            self.now += 500
            self.deliver(self.c.tick(self.now))
            d = self.c.describe("g")
            members = {m.group_instance_id or m.member_id for m in d.members}
            if (
                d.state is GroupState.STABLE
                and all(cl.synced and not cl.must_rejoin for cl in self.clients)
                and members == {cl.identity for cl in self.clients}
            ):
                return
        raise AssertionError(f"the group did not settle: {self.c.describe('g')}")

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def generation_is_monotonic(self) -> None:
        if not hasattr(self, "c"):
            return
        gen = self.c.generation("g")
        assert gen >= self.max_generation or gen == -1
        self.max_generation = max(self.max_generation, gen)

    @invariant()
    def one_leader_among_members(self) -> None:
        if not hasattr(self, "c"):
            return
        d = self.c.describe("g")
        ids = [m.member_id for m in d.members]
        assert len(set(ids)) == len(ids)
        identities = {m.group_instance_id or m.member_id for m in d.members}
        assert len(identities) == len(ids), "one static instance holds two member ids"
        if d.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            gen = self.c.generation("g")
            assert identities == self.generation_members[gen], "members differ from the leader's"
        if d.state is GroupState.EMPTY:
            assert ids == []

    @invariant()
    def joined_members_belong_to_their_generation(self) -> None:
        if not hasattr(self, "c"):
            return
        for gen, joined in self.generation_joined.items():
            if gen in self.generation_members:
                assert joined <= self.generation_members[gen]


GroupMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=50, deadline=None)
test_group_state_machine = GroupMachine.TestCase
