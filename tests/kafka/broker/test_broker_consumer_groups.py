"""The KIP-848 APIs over the raw protocol: advertised versions, errors a client library
would hide, and how a classic group and a consumer-protocol group of one name keep apart."""

from __future__ import annotations

from collections.abc import Callable

from broker_wire import WireClient
from confluent_kafka.admin import AdminClient, NewTopic
from test_broker_groups import join_request

from deadline import wait_until
from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.protocol import ErrorCode
from streamsource.kafka.protocol.messages.api_versions import ApiVersionsRequest
from streamsource.kafka.protocol.messages.consumer_groups import (
    ConsumerGroupDescribeRequest,
    ConsumerGroupHeartbeatRequest,
)
from streamsource.kafka.protocol.messages.groups import DescribeGroupsRequest, ListGroupsRequest
from streamsource.kafka.protocol.messages.offsets import OffsetCommitRequest, OffsetFetchRequest


def create_topic(broker: EmbeddedBroker, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)


def heartbeat(
    group: str, member: str, epoch: int = 0, **kw: object
) -> ConsumerGroupHeartbeatRequest:
    if epoch == 0:
        kw.setdefault("rebalance_timeout_ms", 30_000)
        kw.setdefault("subscribed_topic_names", ["t"])
        kw.setdefault("topic_partitions", [])
    return ConsumerGroupHeartbeatRequest(
        group_id=group,
        member_id=member,
        member_epoch=epoch,
        **kw,  # type: ignore[arg-type]
    )


def test_api_versions_advertises_the_consumer_group_apis(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        response = client.request(ApiVersionsRequest(), 3)
    versions = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert versions[68] == (0, 1)
    assert versions[69] == (0, 1)


def test_a_heartbeat_joins_and_the_group_is_described_and_listed(broker: EmbeddedBroker) -> None:
    create_topic(broker, "t", 3)
    with WireClient(broker.bootstrap) as client:
        joined = client.request(heartbeat("g", "member-1", server_assignor="range"), 1)
        assert (joined.error_code, joined.member_id, joined.member_epoch) == (0, "member-1", 1)
        topic_id = broker.broker.topics.topics["t"].topic_id
        (assigned,) = joined.assignment.topic_partitions
        assert (assigned.topic_id, assigned.partitions) == (topic_id, [0, 1, 2])
        quiet = client.request(heartbeat("g", "member-1", 1), 1)
        assert (quiet.error_code, quiet.assignment) == (0, None)
        described = client.request(ConsumerGroupDescribeRequest(group_ids=["g", "nope"]), 1)
        listed = client.request(ListGroupsRequest(), 4)
    group, unknown = described.groups
    assert (group.error_code, group.group_state, group.group_epoch, group.assignor_name) == (
        0,
        "Stable",
        1,
        "range",
    )
    (member,) = group.members
    assert (member.member_id, member.member_epoch, member.client_id) == ("member-1", 1, "wire-test")
    assert member.assignment.topic_partitions[0].topic_name == "t"
    assert member.assignment == member.target_assignment
    assert unknown.error_code == ErrorCode.GROUP_ID_NOT_FOUND
    assert [(g.group_id, g.protocol_type, g.group_state) for g in listed.groups] == [
        ("g", "consumer", "Stable")
    ]


def test_errors_name_what_was_wrong(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        assignor = client.request(heartbeat("g", "m", server_assignor="sticky"), 1)
        no_id = client.request(heartbeat("g", ""), 1)
        unknown = client.request(heartbeat("g", "ghost", 4), 1)
    assert assignor.error_code == ErrorCode.UNSUPPORTED_ASSIGNOR
    assert "sticky" in assignor.error_message
    assert no_id.error_code == ErrorCode.INVALID_REQUEST
    assert "member id" in no_id.error_message
    assert unknown.error_code == ErrorCode.UNKNOWN_MEMBER_ID


def test_classic_and_consumer_groups_of_one_name_refuse_each_other(
    broker: EmbeddedBroker,
) -> None:
    with WireClient(broker.bootstrap) as client:
        classic = client.request(join_request("classic"), 3)
        assert classic.error_code == ErrorCode.NONE
        refused = client.request(heartbeat("classic", "m"), 1)
        assert refused.error_code == ErrorCode.GROUP_ID_NOT_FOUND
        assert "classic" in refused.error_message

        assert client.request(heartbeat("modern", "m"), 1).error_code == ErrorCode.NONE
        join = client.request(join_request("modern"), 3)
        assert join.error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        described = client.request(DescribeGroupsRequest(groups=["modern"]), 5)
        assert described.groups[0].error_code == ErrorCode.GROUP_ID_NOT_FOUND


def test_offset_commits_need_the_member_epoch(broker: EmbeddedBroker) -> None:
    create_topic(broker, "t", 1)

    def commit(epoch: int, member: str = "m", version: int = 8) -> int:
        request = OffsetCommitRequest(
            group_id="g",
            generation_id=epoch,
            member_id=member,
            topics=[
                OffsetCommitRequest.OffsetCommitRequestTopic(
                    name="t",
                    partitions=[
                        OffsetCommitRequest.OffsetCommitRequestPartition(
                            partition_index=0, committed_offset=5
                        )
                    ],
                )
            ],
        )
        with WireClient(broker.bootstrap) as client:
            response = client.request(request, version)
        return int(response.topics[0].partitions[0].error_code)

    with WireClient(broker.bootstrap) as client:
        assert client.request(heartbeat("g", "m"), 1).member_epoch == 1
    assert commit(1) == ErrorCode.NONE
    assert commit(0) == ErrorCode.ILLEGAL_GENERATION  # STALE_MEMBER_EPOCH before v9
    assert commit(1, "stranger") == ErrorCode.UNKNOWN_MEMBER_ID
    # v9 (KIP-848 clients): the member epoch's own error
    assert commit(1, version=9) == ErrorCode.NONE
    assert commit(0, version=9) == ErrorCode.STALE_MEMBER_EPOCH
    assert commit(1, "stranger", version=9) == ErrorCode.UNKNOWN_MEMBER_ID


def fetch_offset(client: WireClient, group: str) -> int:
    request = OffsetFetchRequest(
        group_id=group,
        topics=[OffsetFetchRequest.OffsetFetchRequestTopic(name="t", partition_indexes=[0])],
    )
    return int(client.request(request, 7).topics[0].partitions[0].committed_offset)


def commit_offset(client: WireClient, group: str, member: str = "", epoch: int = -1) -> int:
    request = OffsetCommitRequest(
        group_id=group,
        generation_id=epoch,
        member_id=member,
        topics=[
            OffsetCommitRequest.OffsetCommitRequestTopic(
                name="t",
                partitions=[
                    OffsetCommitRequest.OffsetCommitRequestPartition(
                        partition_index=0, committed_offset=5
                    )
                ],
            )
        ],
    )
    return int(client.request(request, 8).topics[0].partitions[0].error_code)


def test_offsets_of_empty_groups_expire_and_those_of_live_groups_stay(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = broker_factory(offsets_retention_ms=1_500, retention_check_interval_ms=100)
    create_topic(broker, "t", 1)
    with WireClient(broker.bootstrap) as client:
        assert client.request(heartbeat("live", "m"), 1).member_epoch == 1
        assert commit_offset(client, "live", "m", 1) == ErrorCode.NONE
        assert commit_offset(client, "standalone") == ErrorCode.NONE  # no members
        wait_until(lambda: fetch_offset(client, "standalone") == -1, what="expiry")
        # the live group committed at the same moment and keeps its offset while it has a
        # member (its session is 45 s; this test is over well before)
        assert fetch_offset(client, "live") == 5
        listed = client.request(ListGroupsRequest(), 4)
        assert [g.group_id for g in listed.groups] == ["live"]
        assert client.request(heartbeat("live", "m", -1), 1).error_code == ErrorCode.NONE
        wait_until(lambda: fetch_offset(client, "live") == -1, what="expiry after leaving")
        assert client.request(ListGroupsRequest(), 4).groups == []
