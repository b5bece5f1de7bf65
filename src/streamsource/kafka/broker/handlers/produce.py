"""Produce: validate, de-duplicate (idempotent producers), append, then maybe wait for fsync.

Every partition of a request is handled on its own: a bad CRC, an unknown partition or a
full disk costs that partition (an error code in its response) and nothing else. The work
runs on the log writer thread (``log_writer``), never on the event loop, and unless its
answer must wait for an fsync (or be edited, timed or traced on the loop) that thread also
writes the answer to the socket and wakes the fetches waiting for the data
(``writer_lane``): no hop back to the event loop per request. With ``--fsync always`` an
acks=all request is answered only after the group flusher has synced every partition it
wrote; with acks=0 nothing is answered at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from functools import partial
from typing import Any, Protocol

from streamsource.kafka.broker.handlers.base import (
    HasClock,
    HasConfig,
    HasFlusher,
    HasProducers,
    HasTopics,
    HasTransactions,
    HasWriter,
)
from streamsource.kafka.broker.partition import Partition
from streamsource.kafka.broker.producers import Duplicate
from streamsource.kafka.broker.responses import Deferred
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.broker.topics import TopicError
from streamsource.kafka.broker.writer_lane import WriterLane
from streamsource.kafka.log.errors import LogError
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.api import encode_response_chunks
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.produce import ProduceRequest, ProduceResponse
from streamsource.kafka.records import (
    RecordError,
    ValidatedBatch,
    iter_batch_records,
    validate_produce_records,
)
from streamsource.kafka.records.header import HEADER_SIZE
from streamsource.observability import metrics, tracing


class ProduceContext(
    HasConfig, HasTopics, HasProducers, HasFlusher, HasWriter, HasClock, HasTransactions, Protocol
):
    """What a produce touches: topics (auto-create), producer state, the flusher, the clock."""


_TopicResponse = ProduceResponse.TopicProduceResponse
_PartitionResponse = ProduceResponse.PartitionProduceResponse


async def handle_produce(
    broker: ProduceContext, client: ClientInfo, header: RequestHeader, request: ProduceRequest
) -> ProduceResponse | Deferred | None:
    acks = request.acks
    refuse: ErrorCode | None = None
    if acks not in (-1, 0, 1):
        refuse = ErrorCode.INVALID_REQUIRED_ACKS
    if refuse is None and _any_idempotent(request):
        await _load_producer_states(broker, request)
    lane = _lane(broker, client, acks)
    if lane is not None:
        # the writer answers on the socket itself: no hop back to the loop per request
        lane.submit(
            broker.writer,
            partial(
                _produce_and_answer,
                broker,
                request,
                header,
                refuse,
                broker.now_ms(),
                lane.loop,
            ),
        )
        return None
    written: _Written = {}  # filled in by the writer, read on the loop once it is done
    # queued now, so the writer appends this connection's requests in the order they came
    done = broker.writer.submit(
        partial(
            _produce_all, broker, request, header.api_version, refuse, broker.now_ms(), written
        ),
        owner=client,
        then=partial(_appended, broker, written),
    )
    if acks == 0:
        return None
    # answered once written (and with --fsync always, on disk); the connection's next
    # requests are read and queued meanwhile, and answered in order after this one
    if acks == -1 and broker.config.fsync == "always":
        return Deferred(_synced(broker, done, written))
    # the writer's future itself: no task or coroutine between it and the response
    return Deferred(done)


_Written = dict[Partition, list[_PartitionResponse]]


def _lane(broker: ProduceContext, client: ClientInfo, acks: int) -> WriterLane | None:
    """The connection's ``WriterLane`` if the log writer may answer this request itself:
    answered once written (not after an fsync), not edited by the authorizer's rules, not
    timed by metrics or traced (they end with the answer on the loop)."""
    responses = client.responses
    if responses is None or broker.config.authorizer:
        return None
    if acks == -1 and broker.config.fsync == "always":
        return None
    if metrics.INSTRUMENTS is not None or tracing.TRACER is not None:
        return None
    return responses.lane()


def _produce_and_answer(
    broker: ProduceContext,
    request: ProduceRequest,
    header: RequestHeader,
    refuse: ErrorCode | None,
    now_ms: int,
    loop: asyncio.AbstractEventLoop,
) -> list[Any] | None:
    """On the log writer thread: the produce, what follows it, and its encoded answer
    (None for acks=0)."""
    written: _Written = {}
    try:
        response = _produce_all(broker, request, header.api_version, refuse, now_ms, written)
    finally:
        if written:
            _appended_from_writer(broker, written, loop)
    if request.acks == 0:
        return None
    return encode_response_chunks(header, response)


def _appended_from_writer(
    broker: ProduceContext, written: _Written, loop: asyncio.AbstractEventLoop
) -> None:
    """``_appended`` from the log writer thread: the loop is woken only for partitions
    with waiting fetches. Race-free with them: a fetch adds its waiter before it reads
    the log, and this runs after the append, so either it sees the waiter or the fetch
    sees the data."""
    waiting = [partition for partition in written if partition.waiting_fetches]
    if waiting:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_wake_all, waiting)
    broker.flusher.appended_from_thread(written, loop)


def _wake_all(partitions: list[Partition]) -> None:
    for partition in partitions:
        partition.wake_waiters()


def _any_idempotent(request: ProduceRequest) -> bool:
    # loops, not any() over a generator: this runs on the event loop for every produce
    for topic_data in request.topic_data:
        for data in topic_data.partition_data:
            if _is_idempotent(data.records):
                return True
    return False


async def _load_producer_states(broker: ProduceContext, request: ProduceRequest) -> None:
    """Load (in a worker thread) the producer state of every partition an idempotent batch
    goes to, before the writer judges the batch against it."""
    for topic_data in request.topic_data:
        for data in topic_data.partition_data:
            if _is_idempotent(data.records):
                partition = broker.topics.partition(topic_data.name, data.index)
                if partition is not None:
                    await broker.producers.ensure_loaded(partition)


def _appended(broker: ProduceContext, written: _Written, error: BaseException | None) -> None:
    """Once the writer ran the produce, even if its answer was cancelled (its connection
    failed): what it wrote is in the log, so readers wake and the flush covers it."""
    if error is None:
        for partition in written:
            partition.wake_waiters()  # on the loop: the fetches' futures live there
        broker.flusher.appended(written)  # on disk within the flush interval


async def _synced(
    broker: ProduceContext, done: asyncio.Future[ProduceResponse], written: _Written
) -> ProduceResponse:
    """The answer once written and every partition written is synced (``--fsync always``)."""
    answer = await done
    if written:
        try:
            await broker.flusher.flush(written)
        except LogError as exc:
            for partition_responses in written.values():
                for result in partition_responses:
                    result.error_code = exc.error_code
                    result.error_message = str(exc)
    return answer


def _produce_all(
    broker: ProduceContext,
    request: ProduceRequest,
    version: int,
    refuse: ErrorCode | None,
    now_ms: int,
    written: _Written,
) -> ProduceResponse:
    """On the log writer thread: every partition of the request, each on its own; notes
    in ``written`` the partitions appended to."""
    responses: list[_TopicResponse] = []
    for topic_data in request.topic_data:
        name = topic_data.name
        topic_error = refuse if refuse is not None else _ensure_topic(broker, name)
        partition_responses: list[_PartitionResponse] = []
        for data in topic_data.partition_data:
            response = _PartitionResponse(index=data.index, base_offset=-1)
            partition_responses.append(response)
            if topic_error is not None:
                response.error_code = topic_error
                continue
            partition = broker.topics.partition(name, data.index)
            if partition is None:
                response.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            _produce_one(
                broker,
                partition,
                data.records,
                now_ms,
                response,
                request.transactional_id,
                version,
            )
            if response.error_code == ErrorCode.NONE:
                written.setdefault(partition, []).append(response)
        responses.append(_TopicResponse(name=name, partition_responses=partition_responses))
    return ProduceResponse(responses=responses)


def _ensure_topic(broker: ProduceContext, name: str) -> ErrorCode | None:
    """None if the topic exists (auto-creating it if allowed), else the error to answer."""
    if broker.topics.get(name) is not None:
        return None
    if not broker.config.auto_create_topics:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    try:
        broker.topics.create(name)
    except TopicError as exc:
        return exc.error_code
    return None


def _produce_one(
    broker: ProduceContext,
    partition: Partition,
    records: object,
    now_ms: int,
    response: _PartitionResponse,
    transactional_id: str | None,
    api_version: int,
) -> None:
    """Validate and append one partition's data, filling in ``response``."""
    try:
        if not isinstance(records, bytes | bytearray | memoryview):
            raise _Refused(ErrorCode.CORRUPT_MESSAGE, "no record data")
        batches = validate_produce_records(
            records,
            max_batch_bytes=partition.log.config.max_message_bytes,
            now_ms=now_ms,
            copy=False,  # views of the request frame, which nothing else writes to
        )
        first = batches[0].header
        if partition.log.config.compacted:
            _check_keys(batches, partition, api_version)
        transactional = first.is_transactional
        if any(b.header.is_transactional != transactional for b in batches):
            raise _Refused(ErrorCode.INVALID_RECORD, "transactional and plain batches mixed")
        if transactional and transactional_id is None:
            # as Kafka: transactional records need the request's transactional id
            raise _Refused(
                ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                "transactional batches need a Produce request with a transactional id",
            )
        if transactional:
            # only inside a transaction the coordinator knows covers this partition: else
            # no marker would ever end it and read_committed consumers would stall
            verdict = broker.transactions.coordinator.ongoing_for(
                first.producer_id, first.producer_epoch, (partition.topic, partition.index)
            )
            if verdict is not ErrorCode.NONE:
                raise _Refused(verdict, f"transactional batch refused: {verdict.message}")
        if first.producer_id >= 0:
            if len(batches) != 1:
                raise _Refused(
                    ErrorCode.INVALID_RECORD,
                    "an idempotent produce must carry exactly one batch per partition",
                )
            outcome = broker.producers.check(partition, first)
            if isinstance(outcome, Duplicate):
                response.base_offset = outcome.base_offset
                response.log_start_offset = partition.log_start_offset
                return
            if outcome is not ErrorCode.NONE:
                raise _Refused(outcome, outcome.message)
        info = partition.append(
            [b.data for b in batches],
            now_ms,
            transactional_producer=first.producer_id if transactional else -1,
        )
        if first.producer_id >= 0:
            broker.producers.record(partition, first, info.base_offset, now_ms)
    except (RecordError, LogError) as exc:
        response.error_code = exc.error_code
        response.error_message = str(exc)
        return
    except _Refused as exc:
        response.error_code = exc.error_code
        response.error_message = str(exc)
        return
    response.base_offset = info.base_offset
    response.log_append_time_ms = info.log_append_time_ms
    response.log_start_offset = partition.log_start_offset


def _check_keys(batches: list[ValidatedBatch], partition: Partition, api_version: int) -> None:
    """A compacted topic keeps the latest record per key: a record without one is refused,
    with INVALID_RECORD (CORRUPT_MESSAGE before Produce v8, which has no record errors)."""
    for batch in batches:
        if batch.header.is_control:
            continue
        for record in iter_batch_records(batch.data):
            if record.key is None:
                raise _Refused(
                    ErrorCode.INVALID_RECORD if api_version >= 8 else ErrorCode.CORRUPT_MESSAGE,
                    "compacted topic cannot accept a record without a key "
                    f"({partition.topic}-{partition.index}, offset delta {record.offset_delta})",
                )


class _Refused(Exception):
    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


def _is_idempotent(records: object) -> bool:
    """Whether the data starts with a v2 batch from an idempotent producer (a cheap peek)."""
    if not isinstance(records, bytes | bytearray | memoryview) or len(records) < HEADER_SIZE:
        return False
    # only the two fields asked about, not the whole header: this runs for every produce
    return records[_MAGIC] == 2 and _PRODUCER_ID.unpack_from(records, _PRODUCER_ID_AT)[0] >= 0


_MAGIC = 16  # byte offsets in a v2 batch header
_PRODUCER_ID_AT = 43
_PRODUCER_ID = struct.Struct(">q")
