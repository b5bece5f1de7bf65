"""AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn, Describe/ListTransactions
and DescribeProducers (what admin tools use to find hanging transactions).

Thin translations between wire messages and the transaction coordinator; the state machine
is ``kafka.coordinator.transactions`` and its effects are carried out by the broker's
``TransactionRuntime``. KIP-588's PRODUCER_FENCED goes only to request versions that know
it; older ones get INVALID_PRODUCER_EPOCH, as Kafka answers.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Protocol

from streamsource.kafka.broker.handlers.base import (
    HasClock,
    HasGroups,
    HasProducers,
    HasTopics,
    HasTransactions,
    HasWriter,
)
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.coordinator.transactions import PendingOffset, TxnState, fenced_error
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.transactions import (
    AddOffsetsToTxnRequest,
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
    DescribeProducersRequest,
    DescribeProducersResponse,
    DescribeTransactionsRequest,
    DescribeTransactionsResponse,
    EndTxnRequest,
    EndTxnResponse,
    ListTransactionsRequest,
    ListTransactionsResponse,
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
)

#: the first version of each API that may answer PRODUCER_FENCED (KIP-588)
FENCED_SINCE = {"init": 4, "add_partitions": 2, "add_offsets": 2, "end": 2, "offsets": 3}
MAX_TRANSACTIONAL_ID_BYTES = 32767  # what a non-compact string can carry


class TxnContext(HasTopics, HasGroups, HasTransactions, HasClock, Protocol):
    """The topics (partition checks), groups (KIP-447 member checks) and the coordinator."""


_PartitionResult = AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult
_TopicResult = AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult


async def handle_add_partitions_to_txn(
    broker: TxnContext,
    client: ClientInfo,
    header: RequestHeader,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse:
    wanted = [(t.name, p) for t in request.topics for p in t.partitions]
    missing = {tp for tp in wanted if broker.topics.partition(*tp) is None}
    if missing:
        # all or nothing, as Kafka: the unknown ones say why, the rest were not attempted
        error = {tp: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION for tp in missing}
        return _partition_results(
            request, lambda tp: error.get(tp, ErrorCode.OPERATION_NOT_ATTEMPTED)
        )
    decision = await broker.transactions.run(
        lambda: broker.transactions.coordinator.add_partitions(
            request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            wanted,
            broker.now_ms(),
        )
    )
    code = fenced_error(decision.error, header.api_version, FENCED_SINCE["add_partitions"])
    return _partition_results(request, lambda tp: code)


def _partition_results(
    request: AddPartitionsToTxnRequest, code_of: Callable[[tuple[str, int]], ErrorCode]
) -> AddPartitionsToTxnResponse:
    return AddPartitionsToTxnResponse(
        results=[
            _TopicResult(
                name=t.name,
                results=[
                    _PartitionResult(partition_index=p, error_code=code_of((t.name, p)))
                    for p in t.partitions
                ],
            )
            for t in request.topics
        ]
    )


async def handle_add_offsets_to_txn(
    broker: TxnContext, client: ClientInfo, header: RequestHeader, request: AddOffsetsToTxnRequest
) -> AddOffsetsToTxnResponse:
    if not request.group_id:
        return AddOffsetsToTxnResponse(error_code=ErrorCode.INVALID_GROUP_ID)
    decision = await broker.transactions.run(
        lambda: broker.transactions.coordinator.add_offsets(
            request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            request.group_id,
            broker.now_ms(),
        )
    )
    return AddOffsetsToTxnResponse(
        error_code=fenced_error(decision.error, header.api_version, FENCED_SINCE["add_offsets"])
    )


async def handle_txn_offset_commit(
    broker: TxnContext, client: ClientInfo, header: RequestHeader, request: TxnOffsetCommitRequest
) -> TxnOffsetCommitResponse:
    error = ErrorCode.NONE
    if header.api_version >= 3 and request.member_id:
        # KIP-447: a consumer's generation fences commits of a zombie group member
        error = broker.groups.validate_commit(
            request.group_id, request.generation_id, request.member_id, request.group_instance_id
        )
    now = broker.now_ms()
    offsets = [
        PendingOffset(
            request.group_id,
            t.name,
            p.partition_index,
            p.committed_offset,
            p.committed_leader_epoch,
            p.committed_metadata,
            now,
        )
        for t in request.topics
        for p in t.partitions
        if broker.topics.partition(t.name, p.partition_index) is not None
    ]
    if error is ErrorCode.NONE:
        decision = await broker.transactions.run(
            lambda: broker.transactions.coordinator.txn_offset_commit(
                request.transactional_id,
                request.producer_id,
                request.producer_epoch,
                request.group_id,
                offsets,
                now,
            )
        )
        error = fenced_error(decision.error, header.api_version, FENCED_SINCE["offsets"])
    kept = {(p.topic, p.partition) for p in offsets}
    return TxnOffsetCommitResponse(
        topics=[
            TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic(
                name=t.name,
                partitions=[
                    TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition(
                        partition_index=p.partition_index,
                        error_code=(
                            error
                            if (t.name, p.partition_index) in kept
                            else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                        ),
                    )
                    for p in t.partitions
                ],
            )
            for t in request.topics
        ]
    )


async def handle_end_txn(
    broker: TxnContext, client: ClientInfo, header: RequestHeader, request: EndTxnRequest
) -> EndTxnResponse:
    decision = await broker.transactions.run(
        lambda: broker.transactions.coordinator.end_txn(
            request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            request.committed,
            broker.now_ms(),
        )
    )
    return EndTxnResponse(
        error_code=fenced_error(decision.error, header.api_version, FENCED_SINCE["end"])
    )


async def handle_describe_transactions(
    broker: TxnContext,
    client: ClientInfo,
    header: RequestHeader,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse:
    states: list[DescribeTransactionsResponse.TransactionState] = []
    for txn_id in request.transactional_ids:
        metadata = broker.transactions.coordinator.get(txn_id)
        if metadata is None:
            states.append(
                DescribeTransactionsResponse.TransactionState(
                    error_code=ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, transactional_id=txn_id
                )
            )
            continue
        by_topic: dict[str, list[int]] = {}
        for topic, index in metadata.partitions:
            by_topic.setdefault(topic, []).append(index)
        states.append(
            DescribeTransactionsResponse.TransactionState(
                transactional_id=txn_id,
                transaction_state=metadata.state,
                transaction_timeout_ms=metadata.timeout_ms,
                transaction_start_time_ms=(
                    metadata.start_ms if metadata.txn_state is TxnState.ONGOING else -1
                ),
                producer_id=metadata.producer_id,
                producer_epoch=metadata.producer_epoch,
                topics=[
                    DescribeTransactionsResponse.TopicData(topic=t, partitions=sorted(ps))
                    for t, ps in sorted(by_topic.items())
                ],
            )
        )
    return DescribeTransactionsResponse(transaction_states=states)


async def handle_list_transactions(
    broker: TxnContext, client: ClientInfo, header: RequestHeader, request: ListTransactionsRequest
) -> ListTransactionsResponse:
    known = {s.value for s in TxnState}
    states = set(request.state_filters)
    pids = set(request.producer_id_filters)
    now = broker.now_ms()
    listed = [
        ListTransactionsResponse.TransactionState(
            transactional_id=m.transactional_id,
            producer_id=m.producer_id,
            transaction_state=m.state,
        )
        for m in broker.transactions.coordinator.all()
        if (not states or m.state in states)
        and (not pids or m.producer_id in pids)
        and (
            request.duration_filter < 0
            or (m.txn_state is TxnState.ONGOING and now - m.start_ms >= request.duration_filter)
        )
    ]
    return ListTransactionsResponse(
        unknown_state_filters=sorted(states - known), transaction_states=listed
    )


class ProducersContext(HasTopics, HasProducers, HasWriter, Protocol):
    """The partitions, their producer state, and the thread that owns that state."""


async def handle_describe_producers(
    broker: ProducersContext,
    client: ClientInfo,
    header: RequestHeader,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse:
    topics: list[DescribeProducersResponse.TopicResponse] = []
    for topic in request.topics:
        results: list[DescribeProducersResponse.PartitionResponse] = []
        for index in topic.partition_indexes:
            result = DescribeProducersResponse.PartitionResponse(partition_index=index)
            results.append(result)
            partition = broker.topics.partition(topic.name, index)
            if partition is None:
                result.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            await broker.producers.ensure_loaded(partition)
            entries = await broker.writer.run(partial(broker.producers.active, partition))
            open_txns = partition.txns.open_transactions()
            result.active_producers = [
                DescribeProducersResponse.ProducerState(
                    producer_id=e.producer_id,
                    producer_epoch=e.epoch,
                    last_sequence=e.last_seq,
                    last_timestamp=e.last_timestamp,
                    coordinator_epoch=0,
                    current_txn_start_offset=open_txns.get(e.producer_id, -1),
                )
                for e in entries
            ]
        topics.append(DescribeProducersResponse.TopicResponse(name=topic.name, partitions=results))
    return DescribeProducersResponse(topics=topics)
