"""The asyncio TCP server: frames in, handler, frames out, one task per connection.

Requests on one connection are processed one after another and answered in order, as Kafka
does (clients pipeline, and rely on the order). Bad bytes cost the sender its connection and
nothing else: a frame or decode error is logged and that one socket is closed. What a
connection may buffer is bounded by its read buffer (``read_chunk_bytes``) plus one frame
(``max_frame_bytes``): ``connection.FrameConnection`` stops reading while that is full.

There is one asyncio server per listener (``BrokerConfig.effective_listeners``); TLS
listeners get an ``ssl.SSLContext`` and asyncio does the handshake before ``_serve`` sees the
connection. Until a connection has authenticated, its frames are bounded by
``max_unauthenticated_frame_bytes``: an anonymous peer can make the broker buffer little.
A ``quick`` handler sees each frame first and may answer it there and then, undecoded (a
consumer's common Fetch: ``handlers.quick_fetch``); the rest are decoded and handled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from streamsource.kafka.broker.config import BrokerConfig
from streamsource.kafka.broker.connection import FrameConnection
from streamsource.kafka.broker.responses import Deferred, ResponseQueue, Sent, Unencoded
from streamsource.kafka.protocol import RequestHeader, decode_request
from streamsource.kafka.protocol.api import encode_response_chunks
from streamsource.kafka.protocol.errors import FrameError, InvalidRequest, UnsupportedVersion
from streamsource.kafka.security.listeners import ANONYMOUS, Listener, certificate_principal

log = logging.getLogger(__name__)

SSL_HANDSHAKE_TIMEOUT_S = 10.0  # a peer that never finishes the TLS handshake is dropped


class Session:
    """What a connection has proven about itself: its principal, and for a SASL listener
    whether (and until when) it is authenticated. Mutable: SASL requests change it."""

    __slots__ = ("authenticated", "close_after_response", "expires_at_ms", "principal", "sasl")

    def __init__(self, principal: str = ANONYMOUS, authenticated: bool = True) -> None:
        self.principal = principal
        self.authenticated = authenticated
        self.expires_at_ms: int | None = None  # KIP-368 session lifetime, None: no limit
        self.sasl: Any = None  # the SASL exchange in progress (``security.sasl``)
        self.close_after_response = False  # a failed authentication ends the connection


@dataclass(frozen=True)
class ClientInfo:
    """Who sent a request: what DescribeGroups reports as a member's host, the listener it
    came in on, its ``Session`` (principal, authentication), and its connection's
    ``ResponseQueue`` (None outside a server), which Fetch may write to directly."""

    host: str
    port: int
    listener: str = "PLAINTEXT"
    session: Session = field(default_factory=Session, compare=False, repr=False)
    responses: ResponseQueue | None = field(default=None, compare=False, repr=False)

    @property
    def principal(self) -> str:
        return self.session.principal


@dataclass(frozen=True)
class BoundListener:
    """A listener as opened: its settings, TLS context, and the address actually bound."""

    listener: Listener
    ssl_context: ssl.SSLContext | None
    host: str = ""
    port: int = 0


# (client, header, decoded request) -> response message, or None for "send nothing" (acks=0)
RequestHandler = Callable[[ClientInfo, RequestHeader, Any], Awaitable[Any | None]]
# header of a request whose version we do not support -> response message, or None to close
UnsupportedHandler = Callable[[RequestHeader], Any | None]
# (client, frame) -> what the transport is still to send of an answer already written, or
# None for a frame left to the decoder and ``RequestHandler`` (``handlers.quick_fetch``)
QuickHandler = Callable[[ClientInfo, bytes | bytearray], list[Any] | None]


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
        quick: QuickHandler | None = None,
    ) -> None:
        self._config = config
        self._handle = handle
        self._unsupported = unsupported
        self._quick = quick
        self._servers: list[asyncio.Server] = []
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._stopping = False
        self.host = config.host
        self.port = config.port
        self.bound: list[BoundListener] = []

    async def start(self, listeners: list[BoundListener]) -> tuple[str, int]:
        """Bind every listener and start accepting; returns the first one's (host, port).

        Raises ``OSError`` (naming nothing: the caller knows the listener) if one cannot
        bind; those bound before it are closed again.
        """
        try:
            loop = asyncio.get_running_loop()
            for entry in listeners:
                server = await loop.create_server(
                    partial(self._connection, entry),
                    entry.listener.host,
                    entry.listener.port,
                    reuse_address=True,
                    ssl=entry.ssl_context,
                    ssl_handshake_timeout=(
                        SSL_HANDSHAKE_TIMEOUT_S if entry.ssl_context is not None else None
                    ),
                )
                self._servers.append(server)
                sockname = server.sockets[0].getsockname()
                self.bound.append(
                    BoundListener(
                        entry.listener, entry.ssl_context, str(sockname[0]), int(sockname[1])
                    )
                )
        except BaseException:
            for server in self._servers:
                server.close()
            self._servers = []
            self.bound = []
            raise
        self.host, self.port = self.bound[0].host, self.bound[0].port
        return self.host, self.port

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting; let requests in progress finish; close every connection."""
        self._stopping = True
        for server in self._servers:
            server.close()
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
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    @property
    def connection_count(self) -> int:
        """Open client connections (the ``streamsource_broker_connections`` metric)."""
        return len(self._connections)

    def _connection(self, bound: BoundListener) -> FrameConnection:
        """A new connection's protocol; its serving task starts once it is connected."""
        config = self._config
        limit = config.max_frame_bytes
        if bound.listener.sasl:  # until it authenticates (``_serve`` raises it after)
            limit = min(limit, config.max_unauthenticated_frame_bytes)
        return FrameConnection(
            config.read_chunk_bytes, limit, partial(self._connected, bound.listener)
        )

    def _connected(self, listener: Listener, connection: FrameConnection) -> None:
        if self._stopping:
            connection.close()
            return
        task = asyncio.get_running_loop().create_task(self._accept(listener, connection))
        self._connections[task] = _Connection(task)

    async def _accept(self, listener: Listener, connection: FrameConnection) -> None:
        task = asyncio.current_task()
        assert task is not None
        conn = self._connections[task]
        try:
            await self._serve(conn, listener, connection)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        finally:
            del self._connections[task]

    async def _serve(
        self, conn: _Connection, listener: Listener, connection: FrameConnection
    ) -> None:
        peer = connection.get_extra_info("peername") or ("?", 0)
        session = Session(authenticated=not listener.sasl)
        if listener.protocol == "SSL":
            session.principal = certificate_principal(connection.get_extra_info("peercert"))
        responses = ResponseQueue(connection)
        client = ClientInfo(str(peer[0]), int(peer[1]), listener.protocol, session, responses)
        sock = connection.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        full_frames = self._config.max_frame_bytes
        small_frames = min(full_frames, self._config.max_unauthenticated_frame_bytes)
        quick = self._quick
        try:
            while not self._stopping:
                # between requests: stop() may cancel this wait; deferred answers still go
                # out from the finally clause below
                conn.idle = True
                connection.max_frame_size = full_frames if session.authenticated else small_frames
                frame = await connection.next_frame()
                if frame is None:
                    break
                conn.idle = False
                response: Any = quick(client, frame) if quick is not None else None
                if response is None:  # not answered there: decoded and handled
                    response = await self._answer(client, frame)
                    if response is _CLOSE:
                        return
                if response is not None:  # None: no answer, or the log writer's
                    responses.put(response)
                    if session.close_after_response:
                        return  # the finally clause sends what is queued, then closes
                if responses.must_wait:  # rarely: not a coroutine per request
                    await responses.drain()
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
            if responses.pending and not connection.is_closing():
                await responses.finish()  # acknowledge what was done before closing
            connection.close()
            responses.close_lane()
            if not self._stopping:  # on stop, the transport closes with the loop's help
                with contextlib.suppress(Exception):
                    await connection.wait_closed()

    async def _answer(
        self, client: ClientInfo, frame: bytes | bytearray
    ) -> list[Any] | asyncio.Future[list[Any]] | Unencoded | None:
        """The encoded response of one frame (chunks, or a future of them or of the message
        for a deferred answer), None for no response, or _CLOSE."""
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
            if isinstance(message.awaitable, asyncio.Future):
                # encoded by the response queue once ready: no task or second future
                return Unencoded(message.awaitable, partial(encode_response_chunks, header))
            return asyncio.ensure_future(_encode_later(header, message))
        if isinstance(message, Sent):
            return message.rest
        return encode_response_chunks(header, message)


async def _encode_later(header: RequestHeader, deferred: Deferred) -> list[Any]:
    return encode_response_chunks(header, await deferred.awaitable)


_CLOSE: list[Any] = []  # sentinel (compared by identity): close without answering
