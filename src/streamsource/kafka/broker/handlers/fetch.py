"""Fetch: stored batches as they are on disk, long-polled, down-converted for old clients.

Fetch v4+ clients read magic-2 batches, which is what the log stores, so their bytes go out
untouched: on a plaintext connection as file regions the kernel sends straight from the
page cache (``sendfile``, see ``log.region``), over TLS read into memory. Fetch v0-1 (magic
0) and v2-3 (magic 1) clients get a down-converted message set.
When less than ``min_bytes`` is available the request waits, up to ``max_wait_ms``, for an
append to any partition it reads (each read partition holds a future that appends resolve).

Where a pass over the partitions runs: a consumer keeping up with its producers reads what
was appended moments ago, and one catching up reads data still in the page cache; either
read is hot (``PartitionLog.read_hot_regions`` says how it knows it cannot wait for the
disk). When every partition of a plaintext fetch reads only hot bytes, and no other thread
holds its log or transaction index, the event loop reads the regions and, when that is the
answer and nothing else is queued on the connection, sends it itself: header written and
``sendfile`` on the non-blocking socket, whatever the socket does not take now read and
left to the transport. No thread hop at all: a hop costs a futex wake-up each way and the
GIL changing hands, more CPU than a hot fetch's own work. Any other pass (bytes not in the
page cache, a segment whose file is closed, down-conversion, TLS) runs in a worker thread,
so that a read from the disk holds up this fetch only, never the event loop; when that pass
is the answer and the connection has nothing else queued, the same thread also sends it
(one hop per fetch, not two). The commonest fetch of all, a consumer's one-partition
Fetch v12 answered at once from hot bytes, never gets here: ``quick_fetch`` sends it
straight from its frame, and leaves everything else to this handler.

With one replica the high watermark is the log end offset; a read_committed fetch (v4+)
gets data only below the last stable offset (the first offset of the oldest open
transaction) plus the aborted transactions in that range, whose records the client drops
using the abort markers. Fetch sessions are not kept: session id 0 tells v7+ clients to
keep sending full fetch requests.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from typing import Any, Protocol

from streamsource.kafka.broker.connection import send_direct
from streamsource.kafka.broker.handlers.base import HasConfig, HasTopics
from streamsource.kafka.broker.partition import Partition
from streamsource.kafka.broker.responses import ResponseQueue, Sent
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.log.errors import LogClosed, LogError
from streamsource.kafka.log.region import FileRegion
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.api import encode_response_chunks
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.fetch import FetchRequest, FetchResponse
from streamsource.kafka.protocol.schema import OpaqueChunk, Records
from streamsource.kafka.records import RecordError, downconvert
from streamsource.kafka.records.header import HEADER_SIZE, parse_header
from streamsource.observability import metrics


class FetchContext(HasConfig, HasTopics, Protocol):
    """The partitions read, and whether the broker still runs (long polls end on stop)."""

    @property
    def running(self) -> bool: ...


_TopicData = FetchResponse.FetchableTopicResponse
_PartitionData = FetchResponse.PartitionData
_AbortedTxn = FetchResponse.AbortedTransaction
_LEGACY_ENTRY = struct.Struct(">qi")  # offset, message size of a magic 0/1 entry
READ_COMMITTED = 1
_PLAINTEXT = ("PLAINTEXT", "SASL_PLAINTEXT")  # listeners whose sockets can take sendfile


async def handle_fetch(
    broker: FetchContext, client: ClientInfo, header: RequestHeader, request: FetchRequest
) -> FetchResponse | Sent:
    version = header.api_version
    if version >= 7 and request.session_id != 0:
        # we never hand out a session id, so any is unknown: the client starts over
        return FetchResponse(error_code=ErrorCode.FETCH_SESSION_ID_NOT_FOUND, session_id=0)
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + max(0, request.max_wait_ms) / 1000
    zero_copy = client.listener in _PLAINTEXT and version >= 4
    # the authorizer edits answers after the handler: then nothing is sent from here
    responses = None if broker.config.authorizer else client.responses
    while True:
        found = [
            [broker.topics.partition(t.topic, p.partition) for p in t.partitions]
            for t in request.topics
        ]
        # listening before the read: an append while the worker reads wakes the wait below
        # (with None; the wait's own timer with True)
        waiter: asyncio.Future[bool | None] = loop.create_future()
        listened = [p for ps in found for p in ps if p is not None]
        for partition in listened:
            partition.add_waiter(waiter)
        try:
            hot = None
            if zero_copy and responses is not None and responses.idle:
                hot = _read(broker, request, version, found, zero_copy=True, hot=True)
            if hot is not None:
                response, size, failed = hot
                final = failed or size >= request.min_bytes or time.monotonic() >= deadline
                if final or not broker.running:
                    assert responses is not None  # (hot reads need it)
                    sock_fd = responses.socket_fd()
                    if sock_fd is None:
                        return response
                    return Sent(send_direct(sock_fd, encode_response_chunks(header, response)))
            else:
                sock = None
                if zero_copy and responses is not None:
                    sock = _Socket.of(responses)
                response, size, failed, rest = await asyncio.to_thread(
                    _read_and_send, broker, request, header, found, zero_copy, deadline, sock
                )
                if rest is not None:
                    return Sent(rest)
            remaining = deadline - time.monotonic()
            if failed or size >= request.min_bytes or remaining <= 0 or not broker.running:
                return response
            # a timer on the waiter itself, not wait_for: no second future, no callback to
            # remove, and no cancellation to wait for on a timeout (an idle consumer
            # long-polls all day)
            timer = loop.call_later(remaining, _time_out, waiter)
            try:
                timed_out = await waiter
            finally:
                timer.cancel()
            if timed_out and not size and not any(p.closed for p in listened):
                # nothing was appended (an append would have ended the wait): the empty
                # answer stands, without a second pass in a worker thread
                return response
            _close_regions(response)  # too little yet: read again
        finally:
            for partition in listened:
                partition.discard_waiter(waiter)


def _time_out(waiter: asyncio.Future[bool | None]) -> None:
    if not waiter.done():
        waiter.set_result(True)


class _Socket:
    """A duplicate of an idle connection's socket descriptor, closed by whoever is done
    with it (or when dropped: a worker job cancelled before it ran)."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def of(cls, responses: ResponseQueue) -> _Socket | None:
        fd = responses.idle_socket()
        return None if fd is None else cls(fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        self.close()


def _read_and_send(
    broker: FetchContext,
    request: FetchRequest,
    header: RequestHeader,
    found: list[list[Partition | None]],
    zero_copy: bool,
    deadline: float,
    sock: _Socket | None,
) -> tuple[FetchResponse, int, bool, list[Any] | None]:
    """In a worker thread: ``_read``, and if that is the answer and ``sock`` is given,
    send it too (one thread hop for the read and the ``sendfile``, not one each).
    Returns ``_read``'s figures and, once sent, what the transport is still to send."""
    try:
        read = _read(broker, request, header.api_version, found, zero_copy)
        assert read is not None  # (only a hot pass gives up)
        response, size, failed = read
        final = failed or size >= request.min_bytes or time.monotonic() >= deadline
        if sock is None or not (final or not broker.running):
            return response, size, failed, None
        rest = send_direct(sock.fd, encode_response_chunks(header, response))
        return response, size, failed, rest
    finally:
        if sock is not None:
            sock.close()


def _read(
    broker: FetchContext,
    request: FetchRequest,
    version: int,
    found: list[list[Partition | None]],
    zero_copy: bool = False,
    hot: bool = False,
) -> tuple[FetchResponse, int, bool] | None:
    """One pass over the requested partitions, in a worker thread (reads, down-conversion):
    (response, record bytes, error?). With ``zero_copy`` the records are file regions.
    With ``hot`` (and ``zero_copy``), on the event loop: None, having read nothing, if any
    partition's read is not in its hot tail or would wait for a lock (see the docstring)."""
    cap = broker.config.fetch_max_bytes_cap
    budget = min(request.max_bytes, cap) if version >= 3 else cap
    magic = 0 if version <= 1 else 1 if version <= 3 else 2
    committed = version >= 4 and request.isolation_level == READ_COMMITTED
    total = 0
    failed = False
    topics: list[_TopicData] = []
    try:
        for fetch_topic, partitions in zip(request.topics, found, strict=True):
            results: list[_PartitionData] = []
            topics.append(_TopicData(topic=fetch_topic.topic, partitions=results))
            for wanted, partition in zip(fetch_topic.partitions, partitions, strict=True):
                result = _PartitionData(
                    partition_index=wanted.partition,
                    high_watermark=-1,
                    last_stable_offset=-1,
                    log_start_offset=-1,
                    aborted_transactions=[] if committed else None,
                    records=b"",
                )
                results.append(result)
                if partition is None:
                    result.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                    failed = True
                    continue
                limit = min(max(0, wanted.partition_max_bytes), budget)
                size, end_offset = _read_partition(
                    partition, wanted, result, limit, total, magic, committed, zero_copy, hot
                )
                if result.error_code != ErrorCode.NONE:
                    failed = True
                elif size and metrics.INSTRUMENTS is not None:
                    _count_fetch(
                        metrics.INSTRUMENTS, fetch_topic.topic, size, end_offset, wanted, magic
                    )
                total += size
                budget -= size
    except _Cold:
        _close_regions(FetchResponse(responses=topics))
        return None
    return FetchResponse(session_id=0, responses=topics), total, failed


class _Cold(Exception):
    """A hot pass met a partition it cannot read on the event loop."""


def _read_partition(
    partition: Partition,
    wanted: FetchRequest.FetchPartition,
    result: _PartitionData,
    limit: int,
    total: int,
    magic: int,
    committed: bool,
    zero_copy: bool,
    hot: bool,
) -> tuple[int, int]:
    """Fill in ``result`` for one partition; returns the record bytes it holds and the
    offset after them. Raises ``_Cold`` in a hot pass that must go to a worker thread."""
    end = partition.high_watermark
    stable = partition.txns.try_last_stable_offset(end) if hot else partition.last_stable_offset
    if stable is None:
        raise _Cold
    result.high_watermark = end
    result.last_stable_offset = stable
    result.log_start_offset = partition.log_start_offset
    if limit <= 0 and total > 0:
        return 0, -1  # response is full; the client fetches the rest next time
    max_offset = stable if committed else None
    try:
        data: Records
        if zero_copy:
            if hot:
                read = partition.log.read_hot_regions(
                    wanted.fetch_offset, max(limit, 1), max_offset=max_offset
                )
                if read is None:
                    raise _Cold
                regions, end_offset = read
            else:
                regions, end_offset = partition.log.read_regions(
                    wanted.fetch_offset, max(limit, 1), max_offset=max_offset
                )
            chunks: list[bytes | bytearray | memoryview | OpaqueChunk] = [*regions]
            data = chunks  # (a list display: ``list[A | B](...)`` builds the union per call)
            result.records = data  # from here on, _close_regions finds the regions
            size = sum(map(len, regions))
        else:
            data = partition.log.read(wanted.fetch_offset, max(limit, 1), max_offset=max_offset)
            size = len(data)
            end_offset = _end_offset(data) if data else -1
        if size and committed:
            txns = partition.txns
            if hot:
                aborted = txns.try_aborted_between(wanted.fetch_offset, end_offset)
                if aborted is None:
                    raise _Cold
            else:
                aborted = txns.aborted_between(wanted.fetch_offset, end_offset)
            result.aborted_transactions = [
                _AbortedTxn(producer_id=a.producer_id, first_offset=a.first_offset) for a in aborted
            ]
        if isinstance(data, bytes) and data and magic < 2:
            data = _skip_below(
                downconvert(data, magic, max_bytes=max(limit, 1)), wanted.fetch_offset
            )
            size = len(data)
    except LogClosed:  # the topic was deleted meanwhile
        result.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        return 0, -1
    except (LogError, RecordError) as exc:
        result.error_code = exc.error_code
        return 0, -1
    result.records = data if size else b""
    return size, end_offset


def _count_fetch(
    instruments: metrics.Instruments,
    topic: str,
    size: int,
    end_offset: int,
    wanted: FetchRequest.FetchPartition,
    magic: int,
) -> None:
    child = instruments.child
    child(instruments.broker_fetched_bytes, topic).inc(size)
    if magic == 2:  # legacy message sets are counted in bytes only
        fetched = max(0, end_offset - wanted.fetch_offset)
        child(instruments.broker_fetched_records, topic).inc(fetched)


def _close_regions(response: FetchResponse) -> None:
    for topic in response.responses:
        for partition in topic.partitions:
            if isinstance(partition.records, list):
                for region in partition.records:
                    if isinstance(region, FileRegion):
                        region.close()


def _skip_below(message_set: bytes, offset: int) -> bytes:
    """Drop the legacy messages before ``offset`` (a batch is read from its start)."""
    pos = 0
    end = len(message_set)
    while pos + _LEGACY_ENTRY.size <= end:
        entry_offset, size = _LEGACY_ENTRY.unpack_from(message_set, pos)
        if entry_offset >= offset:
            break
        pos += _LEGACY_ENTRY.size + size
    return message_set[pos:] if pos else message_set


def _end_offset(data: bytes) -> int:
    """The offset after the last batch in ``data`` (v2 batches, read whole from the log):
    aborted transactions are listed only for the range actually returned."""
    pos = end = 0
    while pos + HEADER_SIZE <= len(data):
        header = parse_header(data, pos)
        end = header.next_offset
        pos += header.size
    return end
