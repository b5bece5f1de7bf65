"""The shoppers' HTTP client: one keep-alive HTTP/1.1 connection on asyncio, one request at a
time, responses parsed by httptools (uvicorn's parser, in the ``web`` extra the mall needs).

Why not ``http.client`` in a thread per shopper, as ``mall load`` did: the shoppers' CPU
counts against the same two cores as the mall's (100 orders/s leave 20 ms per order for
both), and eight shopper threads cost 0.23 ms per request, most of it GIL hand-offs between
them and ``http.client``'s header parsing by the ``email`` package; one event loop and a C
parser cost a third of that. Why not httpx or aiohttp: neither is a dependency of the mall
(httpx is a test dependency only), and this is all a shopper needs: a request line, two
headers, a JSON body, and a parser that frames the answer.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast
from urllib.parse import urlsplit

import httptools
import msgspec

MAX_RESPONSE = 16 << 20  # bytes of one answer's body: far above any view of the mall


class ResponseTooLarge(ConnectionError):
    """An answer's body over MAX_RESPONSE bytes (not the mall, or a mall gone wrong)."""


class _Exchange(asyncio.Protocol):
    """The connection's protocol: feeds what arrives to the parser, completes the waiting
    request's future with ``(status, body)`` when a whole response has arrived."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.size = 0
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            too_large = error.__context__  # what on_body raised, if it was that
            if isinstance(too_large, ResponseTooLarge):
                self._fail(too_large)
            else:
                self._fail(ConnectionError(f"a malformed answer: {error}"))
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError("the mall closed the connection"))

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_RESPONSE:
            raise ResponseTooLarge(f"an answer over {MAX_RESPONSE} bytes")
        self.body.append(body)

    def on_message_complete(self) -> None:
        body, self.body, self.size = b"".join(self.body), [], 0
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), body))

    def _fail(self, error: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)


class AsyncHttp:
    """A keep-alive connection to the mall at ``url``; a request that finds it closed by the
    server (an idle keep-alive timeout) is sent again once on a new one."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self._host = f"{self.host}:{self.port}".encode()
        self._exchange: _Exchange | None = None

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        payload = b"" if body is None else msgspec.json.encode(body)
        head = b"%s %s HTTP/1.1\r\nhost: %s\r\ncontent-length: %d\r\n" % (
            method.encode(),
            path.encode(),
            self._host,
            len(payload),
        )
        if payload:
            head += b"content-type: application/json\r\n"
        request = head + b"\r\n" + payload
        for attempt in range(2):
            try:
                async with asyncio.timeout(self.timeout):
                    status, data = await self._send(request)
                return status, _decoded(data)
            except ConnectionError:
                self.close()
                if attempt:
                    raise
            except TimeoutError:
                self.close()  # its answer may still come: not on this connection
                raise
        raise AssertionError("unreachable")

    async def _send(self, request: bytes) -> tuple[int, bytes]:
        exchange = self._exchange
        if exchange is None or exchange.transport is None or exchange.transport.is_closing():
            loop = asyncio.get_running_loop()
            _, exchange = await loop.create_connection(_Exchange, self.host, self.port)
            self._exchange = exchange
        assert exchange.transport is not None
        exchange.waiter = asyncio.get_running_loop().create_future()
        exchange.transport.write(request)
        return await exchange.waiter

    def close(self) -> None:
        if self._exchange is not None and self._exchange.transport is not None:
            self._exchange.transport.close()
        self._exchange = None


def _decoded(data: bytes) -> Any:
    """A JSON body, else its text (someone else's error page)."""
    if not data:
        return None
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        return data[:200].decode(errors="replace")
