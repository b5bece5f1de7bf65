"""Consumer-group requests over the raw protocol, where real clients would hide the details."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from broker_wire import WireClient

from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.protocol import ErrorCode
from streamsource.kafka.protocol.messages.find_coordinator import FindCoordinatorRequest
from streamsource.kafka.protocol.messages.groups import (
    DescribeGroupsRequest,
    JoinGroupRequest,
    JoinGroupResponse,
    ListGroupsRequest,
)


def join_request(group: str, member_id: str = "") -> JoinGroupRequest:
    return JoinGroupRequest(
        group_id=group,
        session_timeout_ms=10_000,
        rebalance_timeout_ms=60_000,
        member_id=member_id,
        protocol_type="consumer",
        protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range", metadata=b"m")],
    )


def test_find_coordinator_names_this_broker(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        old = client.request(FindCoordinatorRequest(key="g"), 2)
        new = client.request(FindCoordinatorRequest(coordinator_keys=["g", "h"]), 4)
    assert (old.error_code, old.node_id, old.host, old.port) == (0, 0, broker.host, broker.port)
    assert [(c.key, c.node_id, c.port) for c in new.coordinators] == [
        ("g", 0, broker.port),
        ("h", 0, broker.port),
    ]


def test_join_v4_requires_a_member_id_then_leads_a_group_of_one(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        first = client.request(join_request("solo"), 5)
        assert first.error_code == ErrorCode.MEMBER_ID_REQUIRED
        assert first.member_id
        joined = client.request(join_request("solo", first.member_id), 5)
        assert joined.error_code == ErrorCode.NONE
        assert (joined.leader, joined.member_id, joined.generation_id) == (
            first.member_id,
            first.member_id,
            1,
        )
        assert [m.member_id for m in joined.members] == [first.member_id]
        listed = client.request(ListGroupsRequest(), 4)
        described = client.request(DescribeGroupsRequest(groups=["solo"]), 5)
    assert [(g.group_id, g.group_state) for g in listed.groups] == [("solo", "CompletingRebalance")]
    (group,) = described.groups
    assert (group.group_state, group.protocol_type) == ("CompletingRebalance", "consumer")
    assert [(m.member_id, m.client_id) for m in group.members] == [(first.member_id, "wire-test")]
    assert group.members[0].client_host.endswith("127.0.0.1")


def test_stop_answers_a_parked_join_with_not_coordinator(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    # the initial rebalance delay parks the first join for a minute: only stop() ends it
    broker = broker_factory(group_initial_rebalance_delay_ms=60_000)
    answers: list[object] = []

    def join() -> None:
        with WireClient(broker.bootstrap, timeout=120) as client:
            answers.append(client.request(join_request("parked"), 3))

    joiner = threading.Thread(target=join)
    joiner.start()
    coordinator = broker.broker.groups.coordinator
    deadline = time.monotonic() + 30
    while coordinator.group_state("parked").value != "PreparingRebalance":
        assert time.monotonic() < deadline, "the join never parked the group"
        time.sleep(0.01)
    broker.stop()
    joiner.join(timeout=60)
    (answer,) = answers
    assert answer.error_code == ErrorCode.NOT_COORDINATOR  # type: ignore[attr-defined]


def test_initial_rebalance_delay_puts_members_starting_together_in_one_generation(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = broker_factory(group_initial_rebalance_delay_ms=1000)
    answers: dict[str, JoinGroupResponse] = {}

    def join(name: str) -> None:
        with WireClient(broker.bootstrap, timeout=30) as client:
            answers[name] = client.request(join_request("g"), 3)  # v3: no member id round

    first = threading.Thread(target=join, args=("a",))
    first.start()
    coordinator = broker.broker.groups.coordinator
    deadline = time.monotonic() + 10
    while coordinator.group_state("g").value == "Dead" and time.monotonic() < deadline:
        time.sleep(0.01)
    second = threading.Thread(target=join, args=("b",))
    second.start()
    first.join(timeout=30)
    second.join(timeout=30)
    assert [answers[m].generation_id for m in "ab"] == [1, 1]
    (leader,) = [a for a in answers.values() if a.leader == a.member_id]
    assert sorted(m.member_id for m in leader.members) == sorted(
        a.member_id for a in answers.values()
    )
    # without the delay a member forms generation 1 alone at once: one arriving a moment
    # later needs a second rebalance (where a kafka-python leader can lose its assignment)
    with WireClient(broker_factory(group_initial_rebalance_delay_ms=0).bootstrap) as client:
        alone = client.request(join_request("g"), 3)
    assert (alone.generation_id, len(alone.members)) == (1, 1)
