"""A consumer's Fetch of hot data, answered from its frame to the socket in one call.

Most Fetch requests a consuming client sends have one shape (``protocol.single_fetch``: v12,
one partition, no session) and find their bytes hot (``PartitionLog.read_hot_regions``):
the answer is then a header around file regions, sent by the event loop itself
(``handlers.fetch``). The generic way there decodes the request into objects, passes it
through the dispatch coroutines, builds a response of objects and encodes it through the
schema: per fetch, more Python than the rest of the answer, and it runs cache-cold after
each ~1 MB ``sendfile``. Here the server hands the frame over before decoding it
(``KafkaServer`` ``quick``): parsed in place, the log read, the header packed from the
layout, sent with ``send_direct``, all in this one call.

Only an answer the generic path would give at once, and identically, is given here:
anything else returns None having sent nothing, and the server goes the generic way, which
reads again and decides. That is: another shape or version; a request needing more than
the generic path's final-answer test grants now (a long poll with too little data waits
there); a partition that is missing, not hot, failing, or with aborted transactions to
list; and a broker or connection on which a request does more than read: an authorizer,
metrics or tracing (they observe every request), request logging, a SASL session with a
lifetime, a TLS listener, produce requests of this connection still being written
(``LogWriter.busy``), responses still to be written (the log writer's own included).
"""

from __future__ import annotations

from typing import Any, Protocol

from streamsource.kafka.broker.connection import send_direct
from streamsource.kafka.broker.handlers.base import HasConfig, HasTopics, HasWriter
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.log.errors import LogError
from streamsource.kafka.protocol import single_fetch
from streamsource.observability import metrics, tracing

_PLAINTEXT = ("PLAINTEXT", "SASL_PLAINTEXT")  # listeners whose sockets can take sendfile


class QuickFetchContext(HasConfig, HasTopics, HasWriter, Protocol):
    @property
    def running(self) -> bool: ...


def answer_quickly(
    broker: QuickFetchContext, client: ClientInfo, frame: bytes | bytearray
) -> list[Any] | None:
    """Answer ``frame`` if it is a hot one-partition Fetch (module docstring): what the
    transport is still to send (maybe nothing). None: not answered, nothing sent."""
    request = single_fetch.parse(frame)
    if request is None:
        return None
    responses = client.responses
    session = client.session
    if (
        responses is None
        or not responses.idle
        or client.listener not in _PLAINTEXT
        or not session.authenticated
        or session.expires_at_ms is not None
        or metrics.INSTRUMENTS is not None
        or tracing.TRACER is not None
        or broker.writer.busy(client)
    ):
        return None
    partition = broker.topics.partition(request.topic, request.partition)
    if partition is None:
        return None
    end = partition.high_watermark
    offset = request.fetch_offset
    if offset == end and request.min_bytes > 0 and request.max_wait_ms > 0 and broker.running:
        return None  # a long poll with nothing to read yet: the generic path waits
    stable = partition.txns.try_last_stable_offset(end)
    if stable is None:
        return None
    log_start = partition.log_start_offset
    committed = request.isolation_level == single_fetch.READ_COMMITTED
    budget = min(request.max_bytes, broker.config.fetch_max_bytes_cap)
    limit = min(max(0, request.partition_max_bytes), budget)
    try:
        read = partition.log.read_hot_regions(
            offset, max(limit, 1), max_offset=stable if committed else None
        )
    except LogError:
        return None  # the generic path reads again and answers with the error
    if read is None:
        return None
    regions, end_offset = read
    size = sum(map(len, regions))
    final = size >= request.min_bytes or request.max_wait_ms <= 0 or not broker.running
    if final and size and committed:
        final = partition.txns.try_aborted_between(offset, end_offset) == []
    sock_fd = responses.socket_fd() if final else None
    if sock_fd is None:
        for region in regions:
            region.close()
        return None
    head = single_fetch.head(request, end, stable, log_start, size)
    return send_direct(sock_fd, [head, *regions, single_fetch.TAIL])
