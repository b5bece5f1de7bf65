"""InitProducerId: ids for idempotent producers (transactions are not supported)."""

from __future__ import annotations

from typing import Protocol

from streamsource.kafka.broker.handlers.base import HasProducers
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.producer_id import (
    InitProducerIdRequest,
    InitProducerIdResponse,
)


class ProducerIdContext(HasProducers, Protocol):
    """The producer id allocator."""


async def handle_init_producer_id(
    broker: ProducerIdContext,
    client: ClientInfo,
    header: RequestHeader,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse:
    if request.transactional_id is not None:
        # a transactional producer would need transaction markers and a real LSO
        return InitProducerIdResponse(
            error_code=ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, producer_epoch=-1
        )
    result = broker.producers.init_producer_id(None, request.producer_id, request.producer_epoch)
    return InitProducerIdResponse(
        error_code=result.error_code,
        producer_id=result.producer_id,
        producer_epoch=result.producer_epoch,
    )
