"""The transaction APIs (KIP-98, KIP-664): what a transactional producer and admin tools send.

AddPartitionsToTxn (24), AddOffsetsToTxn (25), EndTxn (26), WriteTxnMarkers (27),
TxnOffsetCommit (28), DescribeProducers (61), DescribeTransactions (65) and
ListTransactions (66). InitProducerId (22), which opens a transactional producer, lives in
``producer_id``. AddPartitionsToTxn v4+ (KIP-890's
broker-to-broker batching) is not declared: clients use v0-3.
"""

from __future__ import annotations

from streamsource.kafka.protocol.schema import (
    ARRAY,
    BOOL,
    INT8,
    INT16,
    INT32,
    INT64,
    STRING,
    Array,
    Message,
    Struct,
    field,
)


class AddPartitionsToTxnRequest(Message, api_key=24, versions="0-3", flexible="3+"):
    """AddPartitionsToTxn request, versions 0-3 (API key 24)."""

    class AddPartitionsToTxnTopic(Struct):
        name: str = field(STRING)
        partitions: list[int] = field(Array(INT32))

    transactional_id: str = field(STRING)
    producer_id: int = field(INT64)
    producer_epoch: int = field(INT16)
    topics: list[AddPartitionsToTxnRequest.AddPartitionsToTxnTopic] = field(ARRAY)


class AddPartitionsToTxnResponse(Message, api_key=24, versions="0-3", flexible="3+"):
    """AddPartitionsToTxn response, versions 0-3 (API key 24)."""

    class AddPartitionsToTxnTopicResult(Struct):
        name: str = field(STRING)
        results: list[AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult] = field(ARRAY)

    class AddPartitionsToTxnPartitionResult(Struct):
        partition_index: int = field(INT32)
        error_code: int = field(INT16)

    throttle_time_ms: int = field(INT32)
    results: list[AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult] = field(ARRAY)


class AddOffsetsToTxnRequest(Message, api_key=25, versions="0-3", flexible="3+"):
    """AddOffsetsToTxn request, versions 0-3 (API key 25)."""

    transactional_id: str = field(STRING)
    producer_id: int = field(INT64)
    producer_epoch: int = field(INT16)
    group_id: str = field(STRING)


class AddOffsetsToTxnResponse(Message, api_key=25, versions="0-3", flexible="3+"):
    """AddOffsetsToTxn response, versions 0-3 (API key 25)."""

    throttle_time_ms: int = field(INT32)
    error_code: int = field(INT16)


class EndTxnRequest(Message, api_key=26, versions="0-3", flexible="3+"):
    """EndTxn request, versions 0-3 (API key 26)."""

    transactional_id: str = field(STRING)
    producer_id: int = field(INT64)
    producer_epoch: int = field(INT16)
    committed: bool = field(BOOL)


class EndTxnResponse(Message, api_key=26, versions="0-3", flexible="3+"):
    """EndTxn response, versions 0-3 (API key 26)."""

    throttle_time_ms: int = field(INT32)
    error_code: int = field(INT16)


class WriteTxnMarkersRequest(Message, api_key=27, versions="1-2", flexible="1+"):
    """WriteTxnMarkers request, versions 1-2 (API key 27): what a transaction coordinator
    sends partition leaders, and what admin tools send to abort a hanging transaction
    (Kafka's ``Admin.abortTransaction``). v0 is not served (Kafka 4.0 removed it; every
    tool of the last years sends v1); v2 adds the marker's transaction version (KIP-1228;
    ignorable, 0 for the classic protocol)."""

    class WritableTxnMarker(Struct):
        producer_id: int = field(INT64)
        producer_epoch: int = field(INT16)
        transaction_result: bool = field(BOOL)  # true: commit, false: abort
        topics: list[WriteTxnMarkersRequest.WritableTxnMarkerTopic] = field(ARRAY)
        coordinator_epoch: int = field(INT32)
        transaction_version: int = field(INT8, "2+", default=0)

    class WritableTxnMarkerTopic(Struct):
        name: str = field(STRING)
        partition_indexes: list[int] = field(Array(INT32))

    markers: list[WriteTxnMarkersRequest.WritableTxnMarker] = field(ARRAY)


class WriteTxnMarkersResponse(Message, api_key=27, versions="1-2", flexible="1+"):
    """WriteTxnMarkers response, versions 1-2 (API key 27)."""

    class WritableTxnMarkerResult(Struct):
        producer_id: int = field(INT64)
        topics: list[WriteTxnMarkersResponse.WritableTxnMarkerTopicResult] = field(ARRAY)

    class WritableTxnMarkerTopicResult(Struct):
        name: str = field(STRING)
        partitions: list[WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult] = field(ARRAY)

    class WritableTxnMarkerPartitionResult(Struct):
        partition_index: int = field(INT32)
        error_code: int = field(INT16)

    markers: list[WriteTxnMarkersResponse.WritableTxnMarkerResult] = field(ARRAY)


class TxnOffsetCommitRequest(Message, api_key=28, versions="0-3", flexible="3+"):
    """TxnOffsetCommit request, versions 0-3 (API key 28)."""

    class TxnOffsetCommitRequestTopic(Struct):
        name: str = field(STRING)
        partitions: list[TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition] = field(ARRAY)

    class TxnOffsetCommitRequestPartition(Struct):
        partition_index: int = field(INT32)
        committed_offset: int = field(INT64)
        committed_leader_epoch: int = field(INT32, "2+", default=-1)
        committed_metadata: str | None = field(STRING, nullable="0+")

    transactional_id: str = field(STRING)
    group_id: str = field(STRING)
    producer_id: int = field(INT64)
    producer_epoch: int = field(INT16)
    generation_id: int = field(INT32, "3+", default=-1)
    member_id: str = field(STRING, "3+")
    group_instance_id: str | None = field(STRING, "3+", nullable="3+", default=None)
    topics: list[TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic] = field(ARRAY)


class TxnOffsetCommitResponse(Message, api_key=28, versions="0-3", flexible="3+"):
    """TxnOffsetCommit response, versions 0-3 (API key 28)."""

    class TxnOffsetCommitResponseTopic(Struct):
        name: str = field(STRING)
        partitions: list[TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition] = field(ARRAY)

    class TxnOffsetCommitResponsePartition(Struct):
        partition_index: int = field(INT32)
        error_code: int = field(INT16)

    throttle_time_ms: int = field(INT32)
    topics: list[TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic] = field(ARRAY)


class DescribeTransactionsRequest(Message, api_key=65, versions="0", flexible="0+"):
    """DescribeTransactions request, version 0 (API key 65)."""

    transactional_ids: list[str] = field(Array(STRING))


class DescribeTransactionsResponse(Message, api_key=65, versions="0", flexible="0+"):
    """DescribeTransactions response, version 0 (API key 65)."""

    class TransactionState(Struct):
        error_code: int = field(INT16)
        transactional_id: str = field(STRING)
        transaction_state: str = field(STRING)
        transaction_timeout_ms: int = field(INT32)
        transaction_start_time_ms: int = field(INT64, default=-1)
        producer_id: int = field(INT64, default=-1)
        producer_epoch: int = field(INT16, default=-1)
        topics: list[DescribeTransactionsResponse.TopicData] = field(ARRAY)

    class TopicData(Struct):
        topic: str = field(STRING)
        partitions: list[int] = field(Array(INT32))

    throttle_time_ms: int = field(INT32)
    transaction_states: list[DescribeTransactionsResponse.TransactionState] = field(ARRAY)


class ListTransactionsRequest(Message, api_key=66, versions="0-1", flexible="0+"):
    """ListTransactions request, versions 0-1 (API key 66)."""

    state_filters: list[str] = field(Array(STRING))
    producer_id_filters: list[int] = field(Array(INT64))
    duration_filter: int = field(INT64, "1+", default=-1)


class ListTransactionsResponse(Message, api_key=66, versions="0-1", flexible="0+"):
    """ListTransactions response, versions 0-1 (API key 66)."""

    class TransactionState(Struct):
        transactional_id: str = field(STRING)
        producer_id: int = field(INT64)
        transaction_state: str = field(STRING)

    throttle_time_ms: int = field(INT32)
    error_code: int = field(INT16)
    unknown_state_filters: list[str] = field(Array(STRING))
    transaction_states: list[ListTransactionsResponse.TransactionState] = field(ARRAY)


class DescribeProducersRequest(Message, api_key=61, versions="0", flexible="0+"):
    """DescribeProducers request, version 0 (API key 61)."""

    class TopicRequest(Struct):
        name: str = field(STRING)
        partition_indexes: list[int] = field(Array(INT32))

    topics: list[DescribeProducersRequest.TopicRequest] = field(ARRAY)


class DescribeProducersResponse(Message, api_key=61, versions="0", flexible="0+"):
    """DescribeProducers response, version 0 (API key 61)."""

    class TopicResponse(Struct):
        name: str = field(STRING)
        partitions: list[DescribeProducersResponse.PartitionResponse] = field(ARRAY)

    class PartitionResponse(Struct):
        partition_index: int = field(INT32)
        error_code: int = field(INT16)
        error_message: str | None = field(STRING, nullable="0+", default=None)
        active_producers: list[DescribeProducersResponse.ProducerState] = field(ARRAY)

    class ProducerState(Struct):
        producer_id: int = field(INT64)
        producer_epoch: int = field(INT32)
        last_sequence: int = field(INT32, default=-1)
        last_timestamp: int = field(INT64, default=-1)
        coordinator_epoch: int = field(INT32)
        current_txn_start_offset: int = field(INT64, default=-1)

    throttle_time_ms: int = field(INT32)
    topics: list[DescribeProducersResponse.TopicResponse] = field(ARRAY)
