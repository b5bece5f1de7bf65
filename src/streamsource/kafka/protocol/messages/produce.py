"""Produce (key 0). ``records`` arrive as a ``memoryview`` into the request frame.

Versions 0-2 carry magic 0/1 message sets (kafka-go 0.2.1 uses v2), 3+ carry v2 record
batches; the codec does not look inside either (``streamsource.kafka.records`` does).
"""

from __future__ import annotations

from streamsource.kafka.protocol.schema import (
    ARRAY,
    INT16,
    INT32,
    INT64,
    RECORDS,
    STRING,
    Message,
    Records,
    Struct,
    field,
)


class ProduceRequest(Message, api_key=0, versions="0-9", flexible="9+"):
    """Produce request, versions 0-9 (API key 0)."""

    class TopicProduceData(Struct):
        name: str = field(STRING)
        partition_data: list[ProduceRequest.PartitionProduceData] = field(ARRAY)

    class PartitionProduceData(Struct):
        index: int = field(INT32)
        records: Records | None = field(RECORDS, nullable="0+")

    transactional_id: str | None = field(STRING, "3+", nullable="3+", default=None)
    acks: int = field(INT16)
    timeout_ms: int = field(INT32)
    topic_data: list[ProduceRequest.TopicProduceData] = field(ARRAY)


class ProduceResponse(Message, api_key=0, versions="0-9", flexible="9+"):
    """Produce response, versions 0-9 (API key 0)."""

    class TopicProduceResponse(Struct):
        name: str = field(STRING)
        partition_responses: list[ProduceResponse.PartitionProduceResponse] = field(ARRAY)

    class PartitionProduceResponse(Struct):
        index: int = field(INT32)
        error_code: int = field(INT16)
        base_offset: int = field(INT64)
        log_append_time_ms: int = field(INT64, "2+", default=-1)
        log_start_offset: int = field(INT64, "5+", default=-1)
        record_errors: list[ProduceResponse.BatchIndexAndErrorMessage] = field(ARRAY, "8+")
        error_message: str | None = field(STRING, "8+", nullable="8+", default=None)

    class BatchIndexAndErrorMessage(Struct):
        batch_index: int = field(INT32, "8+")
        batch_index_error_message: str | None = field(STRING, "8+", nullable="8+", default=None)

    responses: list[ProduceResponse.TopicProduceResponse] = field(ARRAY)
    throttle_time_ms: int = field(INT32, "1+")
