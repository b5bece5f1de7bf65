"""FrameConnection: request frames cut from a real socket however the bytes arrive, large
ones received into their own buffer, reading paused while the read buffer is full."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import struct
import threading
from pathlib import Path

import pytest

from streamsource.kafka.broker.connection import FrameConnection, send_direct
from streamsource.kafka.log.region import FileRegion
from streamsource.kafka.protocol.errors import FrameTooLarge, InvalidFrame

WAIT_S = 10.0


async def serve_one(
    read_buffer: int, max_frame: int, kind: type[FrameConnection] = FrameConnection
) -> tuple[FrameConnection, socket.socket]:
    """A listening FrameConnection and the client socket connected to it."""
    loop = asyncio.get_running_loop()
    connected: asyncio.Future[FrameConnection] = loop.create_future()
    server = await loop.create_server(
        lambda: kind(read_buffer, max_frame, connected.set_result), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    client = socket.socket()
    client.setblocking(False)
    await loop.sock_connect(client, ("127.0.0.1", port))
    connection = await asyncio.wait_for(connected, WAIT_S)
    server.close()
    return connection, client


def framed(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


async def next_frame(connection: FrameConnection) -> bytes | bytearray | None:
    return await asyncio.wait_for(connection.next_frame(), WAIT_S)


@pytest.mark.parametrize("seed", range(3))
async def test_frames_come_out_whole_and_in_order_however_the_bytes_are_split(
    seed: int,
) -> None:
    rng = random.Random(seed)
    sizes = [rng.randrange(0, 3000) for _ in range(200)] + [50_000, 0, 700_000, 5]
    rng.shuffle(sizes)
    bodies = [rng.randbytes(size) for size in sizes]
    stream = b"".join(framed(body) for body in bodies)
    connection, client = await serve_one(read_buffer=1024, max_frame=1 << 20)
    loop = asyncio.get_running_loop()

    async def send() -> None:
        pos = 0
        while pos < len(stream):
            step = rng.choice((1, 3, 4, 5, 700, 1024, 1500, 9000, 200_000))
            await loop.sock_sendall(client, stream[pos : pos + step])
            pos += step
        client.shutdown(socket.SHUT_WR)

    sender = asyncio.create_task(send())
    got = []
    while (frame := await next_frame(connection)) is not None:
        got.append(frame)
    await sender
    client.close()
    assert [bytes(frame) for frame in got] == bodies
    # a frame larger than the read buffer was received into a buffer of its own, whole
    big = got[sizes.index(700_000)]
    assert isinstance(big, bytearray) and len(big) == 700_000


async def test_a_size_above_the_limit_fails_before_the_body_arrives() -> None:
    connection, client = await serve_one(read_buffer=4096, max_frame=1000)
    client.send(struct.pack(">i", 1001))  # only the prefix: nothing is waited for
    with pytest.raises(FrameTooLarge):
        await next_frame(connection)
    client.close()


async def test_a_negative_size_is_an_invalid_frame() -> None:
    connection, client = await serve_one(read_buffer=4096, max_frame=1000)
    client.send(struct.pack(">i", -5) + b"rest")
    with pytest.raises(InvalidFrame):
        await next_frame(connection)
    client.close()


async def test_the_limit_in_force_when_the_frame_is_taken_applies() -> None:
    connection, client = await serve_one(read_buffer=4096, max_frame=10)
    await asyncio.get_running_loop().sock_sendall(client, framed(b"a") + framed(b"b" * 500))
    assert await next_frame(connection) == b"a"
    connection.max_frame_size = 1000  # as after a SASL authentication
    assert await next_frame(connection) == b"b" * 500
    client.close()


async def test_a_large_frame_goes_to_its_own_buffer_under_the_limit_in_force_when_taken() -> None:
    connection, client = await serve_one(read_buffer=1024, max_frame=1 << 20)
    loop = asyncio.get_running_loop()
    taking = asyncio.create_task(next_frame(connection))  # the server waits for a frame
    body = b"p" * 5000
    await loop.sock_sendall(client, framed(body)[:3000])  # more than the read buffer holds
    deadline = loop.time() + WAIT_S
    while connection.buffered < 2996:
        assert loop.time() < deadline, "the start of the frame never arrived"
        await asyncio.sleep(0.01)
    assert connection.transport.is_reading()  # the rest goes into the frame's own buffer
    connection.max_frame_size = 100  # as if the limit changed before the frame was taken
    await loop.sock_sendall(client, framed(body)[3000:])
    with pytest.raises(FrameTooLarge):
        await taking
    client.close()


class CountedCopies(FrameConnection):
    """Notes how many bytes of each large frame were read into the read buffer first
    (and so copied into the frame's own buffer)."""

    copied: list[int] = []

    def _own_buffer(self) -> bytearray | None:
        already = self._end - self._start - 4
        frame = super()._own_buffer()
        if frame is not None:
            self.copied.append(already)
        return frame


async def test_after_a_large_frame_the_next_one_is_read_straight_into_its_own_buffer() -> None:
    """A producer's requests are alike: after one that needed its own buffer, only the
    next size prefix is read into the read buffer, and the body goes to its own buffer
    (before, up to a read buffer's worth was read first and copied over)."""
    CountedCopies.copied = []
    connection, client = await serve_one(4096, 1 << 20, CountedCopies)
    loop = asyncio.get_running_loop()
    bodies = [bytes([65 + n]) * (50_000 + n) for n in range(5)] + [b"small", b"x" * 60_000]
    for body in bodies:
        taking = asyncio.create_task(next_frame(connection))
        await asyncio.sleep(0)  # the server waits for the frame, as it does between requests
        await loop.sock_sendall(client, framed(body))
        assert await taking == body
    # every large frame had its own buffer, the small one too (its size came alone), and
    # after that one, the read buffer takes whatever comes again
    assert CountedCopies.copied[:6] == [4092, 0, 0, 0, 0, 0]
    assert CountedCopies.copied[6] > 0
    client.close()


async def test_reading_pauses_while_the_read_buffer_is_full_and_resumes() -> None:
    connection, client = await serve_one(read_buffer=1024, max_frame=1000)
    frames = 10_000
    stream = framed(b"x" * 6) * frames  # 100 kB of small frames, none taken yet
    sender = asyncio.create_task(asyncio.get_running_loop().sock_sendall(client, stream))
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while connection.transport.is_reading():
        assert asyncio.get_running_loop().time() < deadline, "reading never paused"
        await asyncio.sleep(0.01)
    assert connection.buffered <= 1024  # the rest waits in the socket
    for _ in range(frames):
        assert await next_frame(connection) == b"x" * 6
    await asyncio.wait_for(sender, WAIT_S)
    assert connection.buffered == 0
    client.close()
    assert await next_frame(connection) is None


async def test_a_partial_frame_at_end_of_stream_is_dropped() -> None:
    connection, client = await serve_one(read_buffer=1024, max_frame=1 << 20)
    await asyncio.get_running_loop().sock_sendall(
        client, framed(b"whole") + struct.pack(">i", 5000) + b"part"
    )
    client.shutdown(socket.SHUT_WR)
    assert await next_frame(connection) == b"whole"
    assert await next_frame(connection) is None
    client.close()


def test_send_direct_writes_what_the_socket_takes_and_returns_the_rest_in_order(
    tmp_path: Path,
) -> None:
    """Fetch answers from its worker thread (``send_direct``): what a full socket does not
    take comes back as bytes, in order, and every file region is closed."""
    stored = tmp_path / "segment"
    stored.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    ours.setblocking(False)
    fd = os.open(stored, os.O_RDONLY)
    try:
        region = FileRegion(os.dup(fd), 1000, 600_000)
        chunks = [b"header:", region, b":trailer"]
        rest = send_direct(ours.fileno(), chunks)
        assert region.fd == -1  # closed once sent or read
        assert rest  # 600 kB do not fit a 4 kB socket buffer
        expected = b"header:" + os.pread(fd, 600_000, 1000) + b":trailer"
        theirs.settimeout(WAIT_S)
        ours.setblocking(True)
        got = bytearray()

        def read_all() -> None:
            while len(got) < len(expected):
                got.extend(theirs.recv(1 << 20))

        reader = threading.Thread(target=read_all)
        reader.start()
        for chunk in rest:
            ours.sendall(chunk)
        reader.join(WAIT_S)
        assert bytes(got) == expected
    finally:
        os.close(fd)
        ours.close()
        theirs.close()
