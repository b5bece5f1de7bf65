"""WriteTxnMarkers (API 27): write commit or abort markers into partitions on request.

In a Kafka cluster the transaction coordinator sends it to partition leaders; here the
coordinator writes its own markers (``TransactionRuntime``), so what sends it is an admin
tool aborting a hanging transaction (Kafka's ``Admin.abortTransaction``, kafka-python's
``KafkaAdminClient.abort_transaction``, ``kafka-transactions.sh abort``): a producer's
transaction left open in a partition holds back its last stable offset, and read_committed
consumers, until a marker ends it.

Each partition is checked as Kafka's leader checks a marker: the partition must exist, and
the marker's producer epoch must not be older than the producer's epoch there
(INVALID_PRODUCER_EPOCH: a newer incarnation of the producer owns the partition). The
coordinator epoch is not checked (one broker, one coordinator; admin tools send -1).
"""

from __future__ import annotations

from functools import partial
from typing import Protocol

from streamsource.kafka.broker.handlers.base import HasProducers, HasTopics, HasTransactions
from streamsource.kafka.broker.partition import Partition
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.transactions import (
    WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
)

_MarkerResult = WriteTxnMarkersResponse.WritableTxnMarkerResult
_TopicResult = WriteTxnMarkersResponse.WritableTxnMarkerTopicResult
_PartitionResult = WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult


class MarkersContext(HasTopics, HasProducers, HasTransactions, Protocol):
    """The partitions, their producer state (epoch check) and the marker writer."""


async def handle_write_txn_markers(
    broker: MarkersContext,
    client: ClientInfo,
    header: RequestHeader,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse:
    results: list[_MarkerResult] = []
    for marker in request.markers:
        errors: dict[tuple[str, int], ErrorCode] = {}
        found: list[Partition] = []
        for topic in marker.topics:
            for index in topic.partition_indexes:
                partition = broker.topics.partition(topic.name, index)
                if partition is None:
                    errors[(topic.name, index)] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                else:
                    await broker.producers.ensure_loaded(partition)
                    found.append(partition)
        if found:
            errors.update(
                await broker.transactions.write_requested_markers(
                    marker.producer_id,
                    marker.producer_epoch,
                    marker.transaction_result,
                    found,
                    partial(_stale, broker, marker.producer_id, marker.producer_epoch),
                )
            )
        results.append(
            _MarkerResult(
                producer_id=marker.producer_id,
                topics=[
                    _TopicResult(
                        name=topic.name,
                        partitions=[
                            _PartitionResult(
                                partition_index=index, error_code=errors[(topic.name, index)]
                            )
                            for index in topic.partition_indexes
                        ],
                    )
                    for topic in marker.topics
                ],
            )
        )
    return WriteTxnMarkersResponse(markers=results)


def _stale(broker: MarkersContext, producer_id: int, epoch: int, partition: Partition) -> bool:
    """Whether a newer epoch of the producer wrote to ``partition`` (log writer thread)."""
    return any(
        e.producer_id == producer_id and e.epoch > epoch for e in broker.producers.active(partition)
    )
