"""The mall's HTTP protocol (``examples/mall/platform/server.py``): a connection's writes
during one turn of the event loop leave in one send at its end, in order, before a close;
and uvicorn serves whole responses with it: plain, streamed across turns, pipelined,
closed."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
import uvicorn
from examples.mall.platform.server import OneWriteHttpTools, OneWriteTransport
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from deadline import wait_until


def received(peer: socket.socket) -> bytes:
    try:
        return peer.recv(65536, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return b""


class Closing(asyncio.Protocol):
    def __init__(self) -> None:
        self.lost = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(None)


async def test_writes_of_one_turn_leave_together_at_its_end() -> None:
    loop = asyncio.get_running_loop()
    ours, peer = socket.socketpair()
    with peer:
        transport, protocol = await loop.connect_accepted_socket(Closing, ours)
        one = OneWriteTransport(transport, loop)  # type: ignore[arg-type]
        one.write(b"HTTP/1.1 200 OK\r\n\r\n")
        one.write(bytearray(b"body"))
        assert received(peer) == b""  # nothing sent while this turn goes on
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert received(peer) == b"HTTP/1.1 200 OK\r\n\r\nbody"
        one.write(b"last")
        one.close()  # what was written goes out before the close
        await asyncio.wait_for(protocol.lost, 5)
        peer.settimeout(5)
        assert peer.recv(100) == b"last"
        assert peer.recv(100) == b""  # then the end of the stream


async def ticks() -> AsyncIterator[bytes]:
    for part in (b"one ", b"two ", b"three"):
        await asyncio.sleep(0)  # each chunk in a turn of its own
        yield part


async def plain(request: Request) -> Response:
    return PlainTextResponse("hello " + request.path_params["name"])


async def streamed(request: Request) -> Response:
    return StreamingResponse(ticks())


APP = Starlette(routes=[Route("/hello/{name}", plain), Route("/stream", streamed)])


@pytest.fixture
def port() -> Iterator[int]:
    config = uvicorn.Config(APP, port=0, http=OneWriteHttpTools, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, what="uvicorn to start")
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


def read_until(connection: socket.socket, ends: bytes, count: int = 1) -> bytes:
    data = b""
    while data.count(ends) < count:
        chunk = connection.recv(65536)
        assert chunk, data
        data += chunk
    return data


def test_uvicorn_serves_whole_responses_with_it(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        # two requests in one packet: two whole answers, in order
        connection.sendall(
            b"GET /hello/ada HTTP/1.1\r\nhost: x\r\n\r\nGET /hello/bo HTTP/1.1\r\nhost: x\r\n\r\n"
        )
        answers = read_until(connection, b"hello bo")
        assert answers.index(b"hello ada") < answers.index(b"hello bo")
        assert answers.count(b"HTTP/1.1 200 OK") == 2
        connection.sendall(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        streamed = read_until(connection, b"0\r\n\r\n")
        assert b"transfer-encoding: chunked" in streamed
        assert b"4\r\none \r\n4\r\ntwo \r\n5\r\nthree\r\n0\r\n\r\n" in streamed
        connection.sendall(b"GET /hello/cy HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        last = b""
        while chunk := connection.recv(65536):  # the server closes after its answer
            last += chunk
        assert last.endswith(b"hello cy") and b"connection: close" in last
