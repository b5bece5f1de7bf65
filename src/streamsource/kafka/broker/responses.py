"""A connection's responses, written in request order even when some are ready later.

Most responses are ready when their handler returns and go straight to the socket. An
acks=all Produce under ``--fsync always`` is ready only after an fsync; rather than stall
the connection, its handler returns a ``Deferred`` and the server goes on decoding and
handling the next requests (a producer with 5 requests in flight then shares one fsync
between them). From the first pending response on, every response queues behind it, and a
writer task sends them in order as they become ready: clients match responses to requests
by order as well as by correlation id.

The queue is pumped by callbacks: when the response at its head becomes ready, it and every
ready one behind it are written there and then. Only a response with file regions (sent
asynchronously) or a failed one hands the queue to a task, which then sends in order until
the queue is empty: a task per connection for every Produce answered later would cost more
than the answer itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from streamsource.kafka.broker.connection import FrameConnection
from streamsource.kafka.broker.writer_lane import WriterLane

log = logging.getLogger(__name__)

Chunks = list[Any]  # encoded response pieces, written one after the other
MAX_PENDING = 64  # responses queued behind a pending one before the reader waits
MAX_QUEUED_BYTES = 16 * 1024 * 1024  # ready bytes queued behind a pending one, likewise


class Deferred:
    """A handler's answer that will be ready later (the awaitable yields the message)."""

    __slots__ = ("awaitable",)

    def __init__(self, awaitable: Awaitable[Any]) -> None:
        self.awaitable = awaitable


class Unencoded:
    """A deferred answer as the handler's future of the message, with what encodes it
    once ready: the queue encodes and writes it in the future's one callback (Produce:
    no second future and loop round per request just to encode)."""

    __slots__ = ("encode", "future")

    def __init__(self, future: asyncio.Future[Any], encode: Callable[[Any], Chunks]) -> None:
        self.future = future
        self.encode = encode


class Sent:
    """A handler's answer already written to the socket (``FrameConnection.send_direct``)
    but for ``rest``: the encoded chunks the transport is to send next."""

    __slots__ = ("rest",)

    def __init__(self, rest: Chunks) -> None:
        self.rest = rest


class ResponseQueue:
    """In-order response writer of one connection."""

    def __init__(self, writer: FrameConnection) -> None:
        self._writer = writer
        # (response, bytes counted against MAX_QUEUED_BYTES: ready responses only, its
        # encoder if the response is an Unencoded message)
        self._queue: deque[_Entry] = deque()
        self._queued_bytes = 0
        self._task: asyncio.Task[None] | None = None
        self._room = asyncio.Event()
        self._room.set()
        self.failed: BaseException | None = None
        self._lane: WriterLane | None = None  # Produce answered by the log writer

    @property
    def pending(self) -> int:
        lane = self._lane
        return len(self._queue) + (lane.backlog if lane is not None else 0)

    def lane(self) -> WriterLane | None:
        """The connection's ``WriterLane`` if the next answer may be written by the log
        writer: nothing queued here, and a plaintext socket."""
        if self._queue or self.failed is not None:
            return None
        lane = self._lane
        if lane is None and self._writer.plaintext:
            lane = self._lane = WriterLane(self._writer)
        return lane

    @property
    def lane_busy(self) -> bool:
        """Whether answers of the log writer are still to be written on this connection."""
        return self._lane is not None and self._lane.backlog > 0

    async def settle_lane(self) -> None:
        """Return once the log writer's answers on this connection so far are written."""
        if self._lane is not None:
            await self._lane.settled()

    def close_lane(self) -> None:
        """At the connection's end (the lane's socket duplicate is closed once idle)."""
        if self._lane is not None:
            self._lane.close()

    def put(self, response: Chunks | asyncio.Future[Chunks] | Unencoded) -> None:
        """Send ``response`` now if nothing is queued, else after those queued before it."""
        if self.failed is not None:
            raise self.failed
        if not self._queue and self._lane is not None and self._lane.backlog:
            # after the log writer's answers (none are added while anything is queued)
            barrier = self._lane.barrier()
            self._queue.append((barrier, 0, None))
            if self._task is None:
                barrier.add_done_callback(self._on_ready)
        size = 0
        encode = None
        future: asyncio.Future[Any]
        if isinstance(response, Unencoded):
            future, encode = response.future, response.encode
        elif isinstance(response, list):
            if not self._queue and _all_bytes(response):
                _write(self._writer, response)
                return
            future = asyncio.get_running_loop().create_future()
            future.set_result(response)
            size = sum(len(c) for c in response)
        else:
            future = response
        self._queue.append((future, size, encode))
        self._queued_bytes += size
        self._update_room()
        if self._task is None:
            if len(self._queue) == 1 and future.done():
                self._pump()
            else:
                future.add_done_callback(self._on_ready)

    @property
    def idle(self) -> bool:
        """Nothing queued: the next response is the next one written."""
        return not self._queue and not self.lane_busy

    def socket_fd(self) -> int | None:
        """``FrameConnection.socket_fd`` if no response is queued, else None."""
        return self._writer.socket_fd() if self.idle else None

    def idle_socket(self) -> int | None:
        """``FrameConnection.idle_socket`` if no response is queued, else None."""
        return self._writer.idle_socket() if self.idle else None

    @property
    def must_wait(self) -> bool:
        """Whether ``drain`` would wait (or raise) before the next request is handled."""
        writer = self._writer
        return (
            not self._room.is_set()
            or (self._lane is not None and self._lane.backlog >= MAX_PENDING)
            or self.failed is not None
            or writer.writing_paused
            or writer.is_closing()
        )

    async def drain(self) -> None:
        """Apply backpressure: wait for room in the queue, then for the socket buffer."""
        if self._lane is not None and self._lane.backlog >= MAX_PENDING:
            await self._lane.settled()
        await self._room.wait()
        if self.failed is not None:
            raise self.failed
        await self._writer.drain()

    async def finish(self) -> None:
        """Wait until every queued response is written (or has failed)."""
        if self._lane is not None:
            await self._lane.settled()
        if self._queue and self._task is None:
            self._start_task()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task

    def _update_room(self) -> None:
        if len(self._queue) >= MAX_PENDING or self._queued_bytes >= MAX_QUEUED_BYTES:
            self._room.clear()
        else:
            self._room.set()

    def _on_ready(self, _: asyncio.Future[Any]) -> None:
        if self._task is None and self.failed is None:
            self._pump()

    def _pump(self) -> None:
        """Write the ready responses at the head of the queue; a task takes over at the
        first one with file regions or that failed."""
        queue = self._queue
        while queue:
            future, size, encode = queue[0]
            if not future.done():
                return  # its callback pumps again
            if self._writer.writing_paused or self._writer.is_closing():
                self._start_task()  # it waits for the socket (or fails) between responses
                return
            if future.cancelled() or future.exception() is not None:
                self._start_task()  # it fails the connection, as it does on its own
                return
            chunks = future.result()
            if encode is not None:
                try:
                    chunks = encode(chunks)
                except Exception:
                    self._start_task()  # encodes again, and fails the connection
                    return
            if not _all_bytes(chunks):
                self._start_task()
                return
            _write(self._writer, chunks)
            queue.popleft()
            self._queued_bytes -= size
            self._update_room()

    def _start_task(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._send_in_order())

    async def _send_in_order(self) -> None:
        try:
            while self._queue:
                future, size, encode = self._queue[0]
                chunks = await future
                if encode is not None:
                    chunks = encode(chunks)
                if not _all_bytes(chunks):
                    # file regions: sent asynchronously, while this response still heads
                    # the queue so that nothing overtakes it
                    await self._writer.send_chunks(chunks)
                else:
                    _write(self._writer, chunks)
                self._queue.popleft()
                self._queued_bytes -= size
                self._update_room()
                await self._writer.drain()
        except Exception as exc:
            # the request's effect is unknown to its client: the connection must go
            if isinstance(exc, ConnectionError):  # the client went away mid-response
                log.debug("closing a connection: %s", exc)
            else:
                log.warning("closing a connection: a deferred response failed: %s", exc)
            self.failed = exc
            for future, _, encode in self._queue:
                if encode is None:  # an Unencoded answer's future is its handler's: its
                    future.cancel()  # work was done or goes on, whatever became of us
            self._queue.clear()
            self._queued_bytes = 0
            self._room.set()
            self._writer.close()
        finally:
            self._task = None


_Entry = tuple[asyncio.Future[Any], int, Callable[[Any], Chunks] | None]


def _write(writer: FrameConnection, chunks: Chunks) -> None:
    # chunk by chunk rather than writelines, which (Python 3.11) first joins them into one
    # more copy of a response that may be tens of megabytes of record data
    for chunk in chunks:
        writer.write(chunk)


def _all_bytes(chunks: Chunks) -> bool:
    """Whether every chunk is bytes-like (no file region to send with ``sendfile``)."""
    return all(isinstance(chunk, _BYTES_LIKE) for chunk in chunks)


_BYTES_LIKE = (bytes, bytearray, memoryview)
