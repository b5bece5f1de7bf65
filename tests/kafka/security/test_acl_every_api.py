"""Every API, every version, from an authenticated principal no ACL mentions: each request
is answered (the authorization table has a rule that fits the schema), each that names a
resource is refused with Kafka's code, and nothing it asked for happened."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from security_support import WireClient

from streamsource.cli.broker import command as broker_command
from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.broker.handlers import HANDLERS
from streamsource.kafka.protocol import (
    SUPPORTED_VERSIONS,
    ApiKey,
    ErrorCode,
    RequestHeader,
    encode_request,
    request_class,
)
from streamsource.kafka.protocol.messages import (
    acls,
    configs,
    consumer_groups,
    delete_groups,
    fetch,
    find_coordinator,
    groups,
    list_offsets,
    metadata,
    offsets,
    partitions,
    produce,
    producer_id,
    sasl,
    topics,
    transactions,
)
from streamsource.kafka.protocol.schema import Struct
from streamsource.kafka.records import Record, build_batch
from streamsource.kafka.security.listeners import Listener

DENIED = {
    ErrorCode.TOPIC_AUTHORIZATION_FAILED,
    ErrorCode.GROUP_AUTHORIZATION_FAILED,
    ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
    ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
}
T, G, TX = "secret", "their-group", "their-txn"


def rich_requests() -> dict[int, Any]:
    """A request naming someone else's resources, per API."""
    batch = build_batch([Record(0, 1_700_000_000_000, b"k", b"v")])
    return {
        ApiKey.PRODUCE: produce.ProduceRequest(acks=1, timeout_ms=1000, topic_data=[
            produce.ProduceRequest.TopicProduceData(name=T, partition_data=[
                produce.ProduceRequest.PartitionProduceData(index=0, records=batch)])]),
        ApiKey.FETCH: fetch.FetchRequest(max_wait_ms=0, min_bytes=1, topics=[
            fetch.FetchRequest.FetchTopic(topic=T, partitions=[
                fetch.FetchRequest.FetchPartition(partition=0, partition_max_bytes=65536)])]),
        ApiKey.LIST_OFFSETS: list_offsets.ListOffsetsRequest(topics=[
            list_offsets.ListOffsetsRequest.ListOffsetsTopic(name=T, partitions=[
                list_offsets.ListOffsetsRequest.ListOffsetsPartition(partition_index=0)])]),
        ApiKey.METADATA: metadata.MetadataRequest(
            topics=[metadata.MetadataRequest.MetadataRequestTopic(name=T)]),
        ApiKey.OFFSET_COMMIT: offsets.OffsetCommitRequest(group_id=G, topics=[
            offsets.OffsetCommitRequest.OffsetCommitRequestTopic(name=T, partitions=[
                offsets.OffsetCommitRequest.OffsetCommitRequestPartition(
                    partition_index=0, committed_offset=1)])]),
        ApiKey.OFFSET_FETCH: offsets.OffsetFetchRequest(group_id=G, topics=[
            offsets.OffsetFetchRequest.OffsetFetchRequestTopic(name=T, partition_indexes=[0])],
            groups=[
            offsets.OffsetFetchRequest.OffsetFetchRequestGroup(group_id=G)]),
        ApiKey.FIND_COORDINATOR: find_coordinator.FindCoordinatorRequest(
            key=G, coordinator_keys=[G]),
        ApiKey.JOIN_GROUP: groups.JoinGroupRequest(group_id=G, session_timeout_ms=10_000,
                                                   protocol_type="consumer"),
        ApiKey.HEARTBEAT: groups.HeartbeatRequest(group_id=G),
        ApiKey.LEAVE_GROUP: groups.LeaveGroupRequest(group_id=G),
        ApiKey.SYNC_GROUP: groups.SyncGroupRequest(group_id=G),
        ApiKey.DESCRIBE_GROUPS: groups.DescribeGroupsRequest(groups=[G]),
        ApiKey.CREATE_TOPICS: topics.CreateTopicsRequest(topics=[
            topics.CreateTopicsRequest.CreatableTopic(name="new-topic", num_partitions=1,
                                                      replication_factor=1)]),
        ApiKey.DELETE_TOPICS: topics.DeleteTopicsRequest(topic_names=[T], topics=[
            topics.DeleteTopicsRequest.DeleteTopicState(name=T)]),
        ApiKey.DELETE_RECORDS: partitions.DeleteRecordsRequest(topics=[
            partitions.DeleteRecordsRequest.DeleteRecordsTopic(name=T, partitions=[
                partitions.DeleteRecordsRequest.DeleteRecordsPartition(
                    partition_index=0, offset=1)])]),
        ApiKey.CREATE_PARTITIONS: partitions.CreatePartitionsRequest(topics=[
            partitions.CreatePartitionsRequest.CreatePartitionsTopic(name=T, count=3)]),
        ApiKey.INIT_PRODUCER_ID: producer_id.InitProducerIdRequest(
            transactional_id=TX, transaction_timeout_ms=10_000),
        ApiKey.ADD_PARTITIONS_TO_TXN: transactions.AddPartitionsToTxnRequest(
            transactional_id=TX, topics=[
                transactions.AddPartitionsToTxnRequest.AddPartitionsToTxnTopic(
                    name=T, partitions=[0])]),
        ApiKey.ADD_OFFSETS_TO_TXN: transactions.AddOffsetsToTxnRequest(
            transactional_id=TX, group_id=G),
        ApiKey.END_TXN: transactions.EndTxnRequest(transactional_id=TX, committed=True),
        ApiKey.TXN_OFFSET_COMMIT: transactions.TxnOffsetCommitRequest(
            transactional_id=TX, group_id=G, topics=[
                transactions.TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic(name=T, partitions=[
                    transactions.TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition(
                        partition_index=0, committed_offset=1)])]),
        ApiKey.DESCRIBE_CONFIGS: configs.DescribeConfigsRequest(resources=[
            configs.DescribeConfigsRequest.DescribeConfigsResource(
                resource_type=2, resource_name=T, configuration_keys=None)]),
        ApiKey.ALTER_CONFIGS: configs.AlterConfigsRequest(resources=[
            configs.AlterConfigsRequest.AlterConfigsResource(resource_type=2, resource_name=T)]),
        ApiKey.INCREMENTAL_ALTER_CONFIGS: configs.IncrementalAlterConfigsRequest(resources=[
            configs.IncrementalAlterConfigsRequest.AlterConfigsResource(
                resource_type=2, resource_name=T)]),
        ApiKey.DELETE_GROUPS: delete_groups.DeleteGroupsRequest(groups_names=[G]),
        ApiKey.DESCRIBE_PRODUCERS: transactions.DescribeProducersRequest(topics=[
            transactions.DescribeProducersRequest.TopicRequest(name=T, partition_indexes=[0])]),
        ApiKey.DESCRIBE_TRANSACTIONS: transactions.DescribeTransactionsRequest(
            transactional_ids=[TX]),
        ApiKey.CONSUMER_GROUP_HEARTBEAT: consumer_groups.ConsumerGroupHeartbeatRequest(
            group_id=G, member_epoch=0, subscribed_topic_names=[T]),
        ApiKey.CONSUMER_GROUP_DESCRIBE: consumer_groups.ConsumerGroupDescribeRequest(
            group_ids=[G]),
        ApiKey.CREATE_ACLS: acls.CreateAclsRequest(creations=[
            acls.CreateAclsRequest.AclCreation(resource_type=2, resource_name=T,
                                               resource_pattern_type=3, principal="User:mallory",
                                               host="*", operation=2, permission_type=3)]),
        ApiKey.DELETE_ACLS: acls.DeleteAclsRequest(filters=[
            acls.DeleteAclsRequest.DeleteAclsFilter(resource_type_filter=1,
                                                    pattern_type_filter=1, operation=1,
                                                    permission_type=1)]),
        ApiKey.DESCRIBE_ACLS: acls.DescribeAclsRequest(resource_type_filter=1,
                                                      pattern_type_filter=1, operation=1,
                                                      permission_type=1),
        ApiKey.ALTER_USER_SCRAM_CREDENTIALS: sasl.AlterUserScramCredentialsRequest(deletions=[
            sasl.AlterUserScramCredentialsRequest.ScramCredentialDeletion(name="admin",
                                                                          mechanism=1)]),
        ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS: sasl.DescribeUserScramCredentialsRequest(),
        ApiKey.DESCRIBE_CLUSTER: request_class(ApiKey.DESCRIBE_CLUSTER)(),
        ApiKey.WRITE_TXN_MARKERS: transactions.WriteTxnMarkersRequest(markers=[
            transactions.WriteTxnMarkersRequest.WritableTxnMarker(
                producer_id=1, producer_epoch=0, transaction_result=False, topics=[
                    transactions.WriteTxnMarkersRequest.WritableTxnMarkerTopic(
                        name=T, partition_indexes=[0])])]),
    }  # fmt: skip


UNCHECKED = {ApiKey.API_VERSIONS, ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE}
# listings answer with less rather than an error; the rest must carry a refusal
FILTERED = {ApiKey.LIST_GROUPS, ApiKey.LIST_TRANSACTIONS}


def error_codes(value: Any) -> Iterator[int]:
    """Every error code anywhere in a response."""
    if isinstance(value, list):
        for item in value:
            yield from error_codes(item)
    elif isinstance(value, Struct):
        for spec in type(value).FIELDS:
            field_value = getattr(value, spec.name)
            if spec.name == "error_code":
                yield field_value
            else:
                yield from error_codes(field_value)


def cases() -> Iterator[tuple[int, int]]:
    for api_key in sorted(HANDLERS):
        if api_key in UNCHECKED:
            continue
        low, high = SUPPORTED_VERSIONS[ApiKey(api_key)]
        for version in range(low, high + 1):
            yield api_key, version


@pytest.fixture(scope="module")
def locked_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    data_dir = tmp_path_factory.mktemp("locked") / "data"
    for user in ("mallory", "admin"):
        result = CliRunner().invoke(
            broker_command,
            ["users", "set", user, "--data-dir", str(data_dir)],
            input=f"{user}-pw\n",
        )
        assert result.exit_code == 0, result.output
    with EmbeddedBroker(
        data_dir=data_dir,
        port=0,
        listeners=(Listener.parse("SASL_PLAINTEXT://127.0.0.1:0"),),
        authorizer=True,
        super_users=("User:admin",),
        group_initial_rebalance_delay_ms=0,
    ) as broker:
        with login(broker, "admin") as admin:
            admin.request(rich_requests()[ApiKey.PRODUCE], 9)  # creates "secret", 1 record
        yield broker


def login(broker: EmbeddedBroker, user: str) -> WireClient:
    client = WireClient(broker.broker.bootstrap_for("SASL_PLAINTEXT"))
    assert client.request(sasl.SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == 0
    token = f"\0{user}\0{user}-pw".encode()
    answer = client.request(sasl.SaslAuthenticateRequest(auth_bytes=token), 2)
    assert answer.error_code == ErrorCode.NONE
    return client


@pytest.mark.parametrize(("api_key", "version"), list(cases()))
def test_every_api_refuses_a_principal_without_acls(
    locked_broker: EmbeddedBroker, api_key: int, version: int
) -> None:
    message = rich_requests().get(api_key)
    try:
        encode_request(RequestHeader(api_key, version, 1, "t"), message)  # type: ignore[arg-type]
    except Exception:  # none, or a field this old version lacks: the empty request
        message = None
    named = message is not None and api_key not in FILTERED
    with login(locked_broker, "mallory") as client:  # answered, not closed
        response = client.request(message or request_class(api_key)(), version)
    codes = set(error_codes(response))
    if named:
        assert codes & DENIED, f"{ApiKey(api_key).name} v{version} answered {codes}"


def test_nothing_refused_happened(locked_broker: EmbeddedBroker) -> None:
    with login(locked_broker, "admin") as admin:
        listed = admin.request(metadata.MetadataRequest(topics=None), 9)
        names = {t.name for t in listed.topics}
        assert T in names and "new-topic" not in names
        (secret,) = [t for t in listed.topics if t.name == T]
        assert len(secret.partitions) == 1  # CreatePartitions was refused
        offsets_now = admin.request(rich_requests()[ApiKey.LIST_OFFSETS], 7)
        assert offsets_now.topics[0].partitions[0].offset in (0, -1)  # earliest: nothing deleted
        users = admin.request(sasl.DescribeUserScramCredentialsRequest(users=None), 0)
        assert {r.user for r in users.results} == {"admin", "mallory"}
        described = admin.request(
            acls.DescribeAclsRequest(resource_type_filter=1, pattern_type_filter=1,
                                     operation=1, permission_type=1), 3,
        )  # fmt: skip
        assert described.resources == []
