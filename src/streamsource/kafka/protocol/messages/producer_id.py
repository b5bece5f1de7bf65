"""InitProducerId (key 22): assigns an idempotent producer its id and epoch."""

from __future__ import annotations

from streamsource.kafka.protocol.schema import (
    INT16,
    INT32,
    INT64,
    STRING,
    Message,
    field,
)


class InitProducerIdRequest(Message, api_key=22, versions="0-4", flexible="2+"):
    """InitProducerId request, versions 0-4 (API key 22)."""

    transactional_id: str | None = field(STRING, nullable="0+")
    transaction_timeout_ms: int = field(INT32)
    producer_id: int = field(INT64, "3+", default=-1)
    producer_epoch: int = field(INT16, "3+", default=-1)


class InitProducerIdResponse(Message, api_key=22, versions="0-4", flexible="2+"):
    """InitProducerId response, versions 0-4 (API key 22)."""

    throttle_time_ms: int = field(INT32)
    error_code: int = field(INT16)
    producer_id: int = field(INT64, default=-1)
    producer_epoch: int = field(INT16)
