"""ResponseQueue: answers leave a real socket in request order, deferred ones (a handler's
future of its message, encoded by the queue once ready) included."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from test_connection import WAIT_S, serve_one

from streamsource.kafka.broker.responses import ResponseQueue, Unencoded


async def read_exactly(client: socket.socket, count: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < count:
        chunk = await asyncio.wait_for(loop.sock_recv(client, count - len(data)), WAIT_S)
        assert chunk, "the connection closed"
        data += chunk
    return data


def encode(message: Any) -> list[Any]:
    return [b"<", str(message).encode(), b">"]


async def test_an_unencoded_answer_is_encoded_when_ready_and_keeps_its_place() -> None:
    connection, client = await serve_one(4096, 1 << 20)
    try:
        queue = ResponseQueue(connection)
        first: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        queue.put(Unencoded(first, encode))
        queue.put([b"second"])  # ready now, but after the first
        assert queue.pending == 2
        first.set_result(1)
        assert await read_exactly(client, len(b"<1>second")) == b"<1>second"
        assert queue.idle
    finally:
        connection.close()
        client.close()


async def test_an_answer_that_fails_to_encode_closes_the_connection_after_those_before() -> None:
    connection, client = await serve_one(4096, 1 << 20)
    try:
        queue = ResponseQueue(connection)
        loop = asyncio.get_running_loop()
        before: asyncio.Future[Any] = loop.create_future()
        broken: asyncio.Future[Any] = loop.create_future()
        queue.put(Unencoded(before, encode))
        queue.put(Unencoded(broken, lambda _: [1 / 0]))
        before.set_result("ok")
        broken.set_result("unencodable")
        await asyncio.wait_for(queue.finish(), WAIT_S)
        assert await read_exactly(client, 4) == b"<ok>"
        assert await asyncio.wait_for(loop.sock_recv(client, 10), WAIT_S) == b""  # closed
        assert isinstance(queue.failed, ZeroDivisionError)
        assert not broken.cancelled()  # the handler's future is left alone
    finally:
        connection.close()
        client.close()
