"""WriterLane: answers the log writer thread writes to a real socket itself, in order with
everything else the connection sends; a socket that cannot take one whole; the end of a
connection while the writer still owes an answer."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from typing import Any

from test_connection import WAIT_S, serve_one
from test_responses import read_exactly

from streamsource.kafka.broker.log_writer import LogWriter
from streamsource.kafka.broker.responses import ResponseQueue


def answer(gate: threading.Event | None, *chunks: bytes) -> Callable[[], list[Any]]:
    def job() -> list[Any]:
        if gate is not None:
            assert gate.wait(WAIT_S)
        return list(chunks)

    return job


async def read_to_end(client: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    data = bytearray()
    while chunk := await asyncio.wait_for(loop.sock_recv(client, 1 << 20), WAIT_S):
        data += chunk
    return bytes(data)


async def read_bytes(client: socket.socket, count: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = bytearray()
    while len(data) < count:
        chunk = await asyncio.wait_for(loop.sock_recv(client, count - len(data)), WAIT_S)
        assert chunk, "the connection closed"
        data += chunk
    return bytes(data)


async def test_the_writer_answers_in_order_and_later_answers_of_the_loop_wait_for_it() -> None:
    connection, client = await serve_one(4096, 1 << 20)
    writer = LogWriter()
    gate = threading.Event()
    try:
        queue = ResponseQueue(connection)
        lane = queue.lane()
        assert lane is not None
        lane.submit(writer, answer(gate, b"one,"))
        lane.submit(writer, answer(None, b"two", b","))
        lane.submit(writer, lambda: None)  # acks=0: nothing to answer
        assert not queue.idle and queue.pending == 3
        assert queue.socket_fd() is None  # a Fetch may not write past the writer's answers
        queue.put([b"three"])  # the loop's answer to a later request
        assert queue.lane() is None  # now behind a queued answer: the loop's way
        gate.set()
        assert await read_exactly(client, len(b"one,two,three")) == b"one,two,three"
        await asyncio.wait_for(queue.finish(), WAIT_S)
        assert queue.idle and queue.pending == 0
        assert queue.lane() is lane  # idle again: the writer may answer the next one
    finally:
        gate.set()
        writer.close()
        connection.close()
        client.close()


async def test_an_answer_the_socket_cannot_take_whole_is_finished_in_order_by_the_loop() -> None:
    connection, client = await serve_one(4096, 1 << 20)
    sock = connection.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer = LogWriter()
    big = bytes(range(256)) * 256  # 64 KiB: far more than both socket buffers
    try:
        queue = ResponseQueue(connection)
        lane = queue.lane()
        assert lane is not None
        lane.submit(writer, answer(None, b"[", big, b"]"))
        lane.submit(writer, answer(None, b"next"))  # handed to the loop too, after the rest
        await asyncio.wait_for(lane.settled(), WAIT_S)
        assert connection.transport.get_write_buffer_size() > 0  # the loop finishes it
        queue.put([b"last"])
        expected = b"[" + big + b"]nextlast"
        assert await read_bytes(client, len(expected)) == expected
        await asyncio.wait_for(queue.finish(), WAIT_S)
        # once idle with nothing buffered, the writer writes the next answer itself again
        assert queue.lane() is lane
        lane.submit(writer, answer(None, b"again"))
        assert await read_exactly(client, 5) == b"again"
    finally:
        writer.close()
        connection.close()
        client.close()


async def test_an_answer_owed_when_the_connection_ends_is_sent_before_the_socket_closes() -> None:
    """The server closes a connection whose client went quiet while the writer still works
    on its last Produce: the answer is written, then the socket closes (the writer's
    duplicate of it is not left open)."""
    connection, client = await serve_one(4096, 1 << 20)
    writer = LogWriter()
    gate = threading.Event()
    try:
        queue = ResponseQueue(connection)
        lane = queue.lane()
        assert lane is not None
        lane.submit(writer, answer(gate, b"owed"))
        connection.close()
        queue.close_lane()
        gate.set()
        assert await read_to_end(client) == b"owed"
    finally:
        gate.set()
        writer.close()
        client.close()


async def test_a_job_that_fails_closes_the_connection_after_the_answers_before_it() -> None:
    connection, client = await serve_one(4096, 1 << 20)
    writer = LogWriter()

    def broken() -> list[Any]:
        raise ValueError("a bug in a produce")

    try:
        queue = ResponseQueue(connection)
        lane = queue.lane()
        assert lane is not None
        lane.submit(writer, answer(None, b"fine"))
        lane.submit(writer, broken)
        lane.submit(writer, answer(None, b"never"))
        await asyncio.wait_for(lane.settled(), WAIT_S)
        assert await read_to_end(client) == b"fine"
    finally:
        writer.close()
        connection.close()
        client.close()


async def test_a_tls_or_socketless_connection_has_no_lane() -> None:
    connection, client = await serve_one(4096, 1 << 20)
    try:
        queue = ResponseQueue(connection)
        connection._over_ssl = True  # what connection_made notes for a TLS transport
        assert queue.lane() is None
    finally:
        connection.close()
        client.close()
