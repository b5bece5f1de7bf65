"""InitProducerId: ids for idempotent producers, ids and epochs for transactional ones."""

from __future__ import annotations

from typing import Protocol

from streamsource.kafka.broker.handlers.base import HasClock, HasProducers, HasTransactions
from streamsource.kafka.broker.handlers.transactions import (
    FENCED_SINCE,
    MAX_TRANSACTIONAL_ID_BYTES,
)
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.coordinator.transactions import fenced_error
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.producer_id import (
    InitProducerIdRequest,
    InitProducerIdResponse,
)
from streamsource.kafka.storage import StorageError


class ProducerIdContext(HasProducers, HasTransactions, HasClock, Protocol):
    """The producer id allocator and the transaction coordinator."""


async def handle_init_producer_id(
    broker: ProducerIdContext,
    client: ClientInfo,
    header: RequestHeader,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse:
    txn_id = request.transactional_id
    if not txn_id:  # Kafka treats an empty transactional id as none
        try:
            result = await broker.producers.init_producer_id(
                None, request.producer_id, request.producer_epoch
            )
        except StorageError:
            return _NO_ID_BLOCK
        return InitProducerIdResponse(
            error_code=result.error_code,
            producer_id=result.producer_id,
            producer_epoch=result.producer_epoch,
        )
    if len(txn_id.encode()) > MAX_TRANSACTIONAL_ID_BYTES:
        return InitProducerIdResponse(error_code=ErrorCode.INVALID_REQUEST, producer_epoch=-1)
    # the coordinator's decision is synchronous: an id it may need is taken (durably)
    # beforehand; unused, it is simply skipped, as ids of an unfinished block are
    try:
        spare = await broker.producers.init_producer_id(None, -1, -1)
    except StorageError:
        return _NO_ID_BLOCK
    decision = await broker.transactions.run(
        lambda: broker.transactions.coordinator.init_producer_id(
            txn_id,
            request.transaction_timeout_ms,
            broker.now_ms(),
            lambda: spare.producer_id,
            expected_id=request.producer_id,
            expected_epoch=request.producer_epoch,
        )
    )
    if not decision.ok:
        error = fenced_error(decision.error, header.api_version, FENCED_SINCE["init"])
        return InitProducerIdResponse(error_code=error, producer_epoch=-1)
    return InitProducerIdResponse(
        producer_id=decision.producer_id, producer_epoch=decision.producer_epoch
    )


# as Kafka when no id block can be had: the client retries after a backoff
_NO_ID_BLOCK = InitProducerIdResponse(
    error_code=ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, producer_epoch=-1
)
