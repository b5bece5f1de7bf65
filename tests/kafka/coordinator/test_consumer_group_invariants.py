"""Hypothesis drives consumer-protocol (KIP-848) clients through joins, heartbeats, lost
answers, leaves, static restarts, expiring sessions and growing topics, and checks the
coordinator's central promise whatever the interleaving: no partition is owned by two
members at once, neither in the coordinator's books nor in what the clients consume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

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

SESSION = 10_000
REBALANCE = 4_000

Partition = tuple[str, int]


@dataclass
class Client:
    """A consumer as a well-behaved client runs it: it consumes exactly what it was told."""

    member_id: str
    topics: tuple[str, ...]
    instance: str | None = None
    epoch: int = 0
    owned: set[Partition] = field(default_factory=set)
    in_group: bool = False


class ConsumerGroupMachine(RuleBasedStateMachine):
    @initialize(assignor=st.sampled_from(["uniform", "range"]))
    def setup(self, assignor: str) -> None:
        self.c = ConsumerGroupCoordinator(
            ConsumerGroupConfig(session_timeout_ms=SESSION, heartbeat_interval_ms=1_000)
        )
        self.assignor = assignor
        self.now = 0
        self.topics = {"a": 3, "b": 2}
        self.clients: list[Client] = []
        self.ids = count()

    # -- helpers ---------------------------------------------------------------------------

    def send(self, client: Client, epoch: int, owned: bool = True) -> ConsumerHeartbeatResult:
        joining = epoch == 0
        req = ConsumerHeartbeat(
            group_id="g",
            member_id=client.member_id,
            member_epoch=epoch,
            instance_id=client.instance,
            rebalance_timeout_ms=REBALANCE if joining else -1,
            subscribed_topics=client.topics if joining else None,
            server_assignor=self.assignor if joining else None,
            owned=frozenset(client.owned) if owned or joining else None,
        )
        return self.c.heartbeat(self.now, req, self.topics)

    def apply(self, client: Client, result: ConsumerHeartbeatResult) -> None:
        if result.error_code in (ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.FENCED_MEMBER_EPOCH):
            # fenced: it gives everything up and re-joins under its member id, as
            # librdkafka does
            client.owned.clear()
            result = self.send(client, 0)
        assert result.error_code == ErrorCode.NONE, result
        client.epoch = result.member_epoch
        if result.assignment is not None:
            client.owned = set(result.assignment)

    def members(self) -> list[Client]:
        return [c for c in self.clients if c.in_group]

    # -- rules -----------------------------------------------------------------------------

    @rule(topics=st.sampled_from([("a",), ("b",), ("a", "b")]), static=st.booleans())
    def join_new_client(self, topics: tuple[str, ...], static: bool) -> None:
        if len(self.clients) >= 6:
            return
        n = next(self.ids)
        client = Client(f"m{n}", topics, instance=f"i{n}" if static else None)
        self.clients.append(client)
        result = self.send(client, 0)
        assert result.error_code == ErrorCode.NONE
        client.in_group = True
        self.apply(client, result)

    @precondition(lambda self: any(c.in_group for c in self.clients))
    @rule(data=st.data(), full=st.booleans())
    def heartbeat(self, data: st.DataObject, full: bool) -> None:
        client = data.draw(st.sampled_from(self.members()))
        self.apply(client, self.send(client, client.epoch, owned=full))

    @precondition(lambda self: any(c.in_group for c in self.clients))
    @rule(data=st.data())
    def heartbeat_whose_answer_is_lost(self, data: st.DataObject) -> None:
        client = data.draw(st.sampled_from(self.members()))
        self.send(client, client.epoch)

    @precondition(lambda self: any(c.in_group for c in self.clients))
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        client = data.draw(st.sampled_from(self.members()))
        client.owned.clear()  # a closing consumer stops consuming, then says so
        result = self.send(client, -1)
        assert result.error_code in (ErrorCode.NONE, ErrorCode.UNKNOWN_MEMBER_ID)
        client.in_group = False

    @precondition(lambda self: any(c.in_group and c.instance for c in self.clients))
    @rule(data=st.data())
    def static_member_restarts(self, data: st.DataObject) -> None:
        old = data.draw(st.sampled_from([c for c in self.members() if c.instance]))
        old.owned.clear()
        if self.send(old, -2).error_code != ErrorCode.NONE:
            old.in_group = False
            return
        old.in_group = False
        new = Client(f"m{next(self.ids)}", old.topics, instance=old.instance)
        self.clients.append(new)
        result = self.send(new, 0)
        assert result.error_code == ErrorCode.NONE, result
        new.in_group = True
        self.apply(new, result)

    @rule(ms=st.sampled_from([500, 3_000, 6_000, 11_000]))
    def time_passes(self, ms: int) -> None:
        self.now += ms
        removed = {member for _, member in self.c.tick(self.now)}
        for client in self.clients:
            if client.member_id in removed:
                # the client's own timers tell it the same: it stops consuming
                client.owned.clear()
                client.in_group = False

    @rule(topic=st.sampled_from(["a", "b"]))
    def topic_grows(self, topic: str) -> None:
        if self.topics[topic] < 6:
            self.topics = {**self.topics, topic: self.topics[topic] + 1}

    @precondition(lambda self: any(c.in_group for c in self.clients))
    @rule()
    def everyone_heartbeats_until_settled(self) -> None:
        for _ in range(6):
            for client in self.members():
                self.apply(client, self.send(client, client.epoch))
        group = self.c.groups["g"]
        members = self.members()
        if not members:
            return
        assert group.state is ConsumerGroupState.STABLE
        wanted = {(t, p) for c in members for t in c.topics for p in range(self.topics[t])}
        owned = [tp for c in members for tp in c.owned]
        assert sorted(owned) == sorted(wanted), "every subscribed partition owned once"

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def no_partition_is_held_by_two_members(self) -> None:
        if not hasattr(self, "c") or "g" not in self.c.groups:
            return
        seen: set[Partition] = set()
        for member in self.c.groups["g"].members.values():
            holds = member.holds()
            assert not holds & seen
            seen |= holds

    @invariant()
    def no_partition_is_consumed_by_two_clients(self) -> None:
        if not hasattr(self, "c"):
            return
        seen: set[Partition] = set()
        for client in self.clients:
            assert not client.owned & seen, f"{client.member_id} shares {client.owned & seen}"
            seen |= client.owned

    @invariant()
    def clients_consume_only_what_the_coordinator_has_them_hold(self) -> None:
        if not hasattr(self, "c") or "g" not in self.c.groups:
            return
        group = self.c.groups["g"]
        for client in self.members():
            member = group.members.get(client.member_id)
            if member is not None:
                assert client.owned <= member.holds()

    @invariant()
    def epochs_never_run_ahead(self) -> None:
        if not hasattr(self, "c") or "g" not in self.c.groups:
            return
        group = self.c.groups["g"]
        assert group.assignment_epoch <= group.group_epoch
        for member in group.members.values():
            assert member.member_epoch <= group.assignment_epoch


ConsumerGroupMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
test_consumer_group_state_machine = ConsumerGroupMachine.TestCase
