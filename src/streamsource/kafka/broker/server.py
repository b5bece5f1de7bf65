"""The asyncio TCP server: frames in, handler, frames out, one task per connection.

Requests on one connection are processed one after another and answered in order, as Kafka
does (clients pipeline, and rely on the order). Bad bytes cost the sender its connection and
nothing else: a frame or decode error is logged and that one socket is closed. What a
connection may buffer is bounded by one socket read plus one frame (``max_frame_bytes``),
because the next read only happens once the frames already read have been answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from streamsource.kafka.broker.config import BrokerConfig
from streamsource.kafka.broker.responses import Deferred, ResponseQueue
from streamsource.kafka.protocol import (
    FrameDecoder,
    RequestHeader,
    decode_request,
)
from streamsource.kafka.protocol.api import encode_response_chunks
from streamsource.kafka.protocol.errors import FrameError, InvalidRequest, UnsupportedVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClientInfo:
    """Who sent a request: what DescribeGroups reports as a member's host."""

    host: str
    port: int


# (client, header, decoded request) -> response message, or None for "send nothing" (acks=0)
RequestHandler = Callable[[ClientInfo, RequestHeader, Any], Awaitable[Any | None]]
# header of a request whose version we do not support -> response message, or None to close
UnsupportedHandler = Callable[[RequestHeader], Any | None]


class _Connection:
    """A connection's task and whether it is between requests (safe to cancel)."""

    __slots__ = ("idle", "task")

    def __init__(self, task: asyncio.Task[None]) -> None:
        self.task = task
        self.idle = True


class KafkaServer:
    """Accepts connections and feeds each request to ``handle`` in order."""

    def __init__(
        self,
        config: BrokerConfig,
        handle: RequestHandler,
        unsupported: UnsupportedHandler,
    ) -> None:
        self._config = config
        self._handle = handle
        self._unsupported = unsupported
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._stopping = False
        self.host = config.host
        self.port = config.port

    async def start(self) -> tuple[str, int]:
        """Bind and start accepting; returns the bound (host, port)."""
        self._server = await asyncio.start_server(
            self._accept,
            self._config.host,
            self._config.port,
            reuse_address=True,
            limit=self._config.read_chunk_bytes,
        )
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = str(sockname[0]), int(sockname[1])
        return self.host, self.port

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting; let requests in progress finish; close every connection."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections.values()):
            if conn.idle:
                conn.task.cancel()
        tasks = list(self._connections)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._stopping:
            writer.close()
            return
        conn = _Connection(task)
        self._connections[task] = conn
        try:
            await self._serve(conn, reader, writer)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        finally:
            del self._connections[task]

    async def _serve(
        self, conn: _Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        client = ClientInfo(str(peer[0]), int(peer[1]))
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        decoder = FrameDecoder(self._config.max_frame_bytes)
        chunk = self._config.read_chunk_bytes
        responses = ResponseQueue(writer)
        try:
            while not self._stopping:
                data = await reader.read(chunk)
                if not data:
                    break
                conn.idle = False
                for frame in decoder.feed(data):
                    response = await self._answer(client, frame)
                    if response is None:
                        continue
                    if response is _CLOSE:
                        return
                    responses.put(response)
                    if responses.should_drain():
                        await responses.drain()
                await responses.drain()
                # between requests: stop() may cancel the read; deferred answers still go
                # out from the finally clause below
                conn.idle = True
        except (FrameError, InvalidRequest) as exc:
            log.warning("closing connection from %s:%d: %s", client.host, client.port, exc)
        except (ConnectionError, OSError):
            pass  # the client went away; nothing to answer
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        except Exception:
            # a bug in a handler must cost one connection, not the broker
            log.exception("error serving %s:%d; closing its connection", client.host, client.port)
        finally:
            if responses.pending and not writer.is_closing():
                await responses.finish()  # acknowledge what was done before closing
            writer.close()
            if not self._stopping:  # on stop, the transport closes with the loop's help
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    async def _answer(
        self, client: ClientInfo, frame: bytes
    ) -> list[Any] | asyncio.Future[list[Any]] | None:
        """The encoded response of one frame (chunks, or a future of them for a deferred
        answer), None for no response, or _CLOSE."""
        try:
            header, request = decode_request(frame)
        except UnsupportedVersion as exc:
            body = self._unsupported(exc.header)
            if body is None:
                log.warning("closing connection from %s: %s", client.host, exc)
                return _CLOSE
            return encode_response_chunks(exc.header, body)
        message = await self._handle(client, header, request)
        if message is None:
            return None
        if isinstance(message, Deferred):
            return asyncio.ensure_future(_encode_later(header, message))
        return encode_response_chunks(header, message)


async def _encode_later(header: RequestHeader, deferred: Deferred) -> list[Any]:
    return encode_response_chunks(header, await deferred.awaitable)


_CLOSE: list[Any] = []  # sentinel (compared by identity): close without answering
