"""One client connection's bytes: request frames read into memory they keep, responses out.

Written by hand because asyncio's streams copy every byte of a request three times before a
frame decoder sees it (``recv`` into a new ``bytes``, into the ``StreamReader``'s buffer, out
again on ``read``), and a frame that spans reads was copied once more into the decoder's
buffer. A produce request is mostly record data, so each copy is CPU per message. This
``asyncio.BufferedProtocol`` has the socket (or TLS) layer write into memory it owns: size
prefixes and small frames into one reused read buffer, and a frame that does not fit what is
already there, once its size prefix is known, straight into a buffer of exactly its size,
which then is the frame, handed to the server without a copy. After such a frame, while
the server waits for the next one and nothing is buffered, only the next size prefix is
read: a producer's next request is likely as large, and its body then goes straight into
its own buffer too (not up to a read buffer's worth first, copied over after).

Frames are cut one at a time when the server asks for the next one (``next_frame``), or,
while it waits for one, as soon as the next one's size prefix is in (its own buffer then
takes the rest); the size limit in force when the server takes the frame applies (it grows
once a connection has authenticated), and a prefix above the current one fails before any
of that frame is buffered. What a connection buffers is bounded by the read buffer plus one
frame: reading pauses while the read buffer is full, until the server takes a frame.

Responses are written through the transport, except file regions (``log.region``) in them:
once the transport has sent what was written before, a worker thread (the file may need the
disk, which the event loop never waits for) hands each one to the kernel with ``sendfile``
on a duplicate of the socket's descriptor (so a socket closed meanwhile can never be
confused with a new one). What the socket buffer has no room for then is read and
written through the transport; over TLS a region is read and written like any bytes.
Fetch skips a hop when nothing is queued on the connection: whoever read the data writes
the whole answer itself (``send_direct``): the event loop for the log's hot tail
(``socket_fd``), else the worker thread that read it (``idle_socket``).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import struct
from collections.abc import Callable
from typing import Any, cast

from streamsource.kafka.log.region import FileRegion
from streamsource.kafka.protocol.errors import FrameTooLarge, InvalidFrame

_SIZE = struct.Struct(">i")
_MIN_ROOM = 4096  # below this much free space at its end, the read buffer is compacted


class FrameConnection(asyncio.BufferedProtocol):
    """A connection as the server sees it: ``await next_frame()``, ``write``, ``drain``."""

    def __init__(
        self,
        read_buffer_bytes: int,
        max_frame_size: int,
        on_connect: Callable[[FrameConnection], None],
    ) -> None:
        self.max_frame_size = max_frame_size
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set on connect
        self._on_connect = on_connect
        self._buf = bytearray(read_buffer_bytes)
        self._start = 0  # first byte of _buf not yet cut into a frame
        self._end = 0  # end of the bytes received into _buf
        self._frame: bytearray | None = None  # a frame being received into its own buffer
        self._filled = 0  # bytes of _frame received so far
        self._ready: bytearray | None = None  # _frame once complete, until taken
        self._prefix_first = False  # the last frame was large: read the next size alone
        self._reading_paused = False
        self._eof = False
        self._lost = False
        self._over_ssl = False
        self._waiter: asyncio.Future[None] | None = None
        self._writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closed: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # on connect

    # -- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's are not subclasses of asyncio.Transport)
        self.transport = cast(asyncio.Transport, transport)
        self._over_ssl = transport.get_extra_info("sslcontext") is not None
        # kept: asyncio.get_running_loop() costs a getpid() syscall per call (Python 3.11)
        self._loop = asyncio.get_running_loop()
        self._closed = self._loop.create_future()
        self._on_connect(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        frame = self._frame
        if frame is None:
            if self._start == self._end:
                self._start = self._end = 0
                if self._prefix_first and self._waiter is not None:
                    return memoryview(self._buf)[:4]
            elif self._waiter is not None:  # the server waits for this frame: cut it now
                frame = self._own_buffer()
        if frame is not None:
            return memoryview(frame)[self._filled :]
        if len(self._buf) - self._end < _MIN_ROOM and self._start:
            self._compact()
        return memoryview(self._buf)[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        frame = self._frame
        if frame is not None:
            self._filled += nbytes
            if self._filled == len(frame):
                self._ready, self._frame = frame, None
        else:
            self._end += nbytes
        full = self._frame is None and self._end == len(self._buf) and not self._start
        if full and (self._waiter is None or self._own_buffer() is None):
            self._pause_reading()  # nowhere to read into until the server takes a frame
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        # keep the transport open to send the answers still owed (not possible over TLS)
        return not self._over_ssl

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._wake()
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionResetError("connection lost"))
        self._drain_waiters.clear()
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    # -- reading -------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Bytes received and not yet taken as frames."""
        waiting = len(self._ready) if self._ready is not None else 0
        return self._end - self._start + self._filled * (self._frame is not None) + waiting

    async def next_frame(self) -> bytes | bytearray | None:
        """The next request frame (size prefix stripped), or None once the peer is gone.

        Raises ``InvalidFrame`` for a negative size prefix and ``FrameTooLarge`` for one
        above ``max_frame_size``; the connection is then unusable.
        """
        while True:
            frame = self._cut()
            if frame is not None:
                self._resume_reading()
                return frame
            if self._eof or self._lost:
                return None
            self._resume_reading()
            waiter = self._loop.create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None

    def _cut(self) -> bytes | bytearray | None:
        """The next complete frame, if there is one; sets up ``_frame`` for a partial one."""
        if self._ready is not None:
            ready, self._ready = self._ready, None
            if len(ready) > self.max_frame_size:  # the limit now in force applies
                raise FrameTooLarge(len(ready), self.max_frame_size)
            return ready
        if self._frame is not None:
            if len(self._frame) > self.max_frame_size:
                raise FrameTooLarge(len(self._frame), self.max_frame_size)
            return None
        start = self._start
        available = self._end - start
        if available < 4:
            return None
        (size,) = _SIZE.unpack_from(self._buf, start)
        if size < 0:
            raise InvalidFrame(f"negative frame size {size}")
        if size > self.max_frame_size:
            raise FrameTooLarge(size, self.max_frame_size)
        start += 4
        available -= 4
        if available >= size:
            self._start = start + size
            self._prefix_first = False
            return bytes(memoryview(self._buf)[start : start + size])
        self._own_buffer()
        return None

    def _own_buffer(self) -> bytearray | None:
        """Move the first unread frame, if incomplete, into a buffer of its own, which the
        rest of it is received into; returns that buffer, or None.

        ``_cut`` calls this, and so do the socket callbacks as soon as the size prefix is in
        while the server waits for a frame (it would cut this one next): the next read
        then goes straight into the frame, and a full read buffer need not pause reading.
        Either way the limit in force then applies (``_cut`` checks it again later).
        """
        if self._ready is not None:
            return None  # the last frame received this way is still to be taken
        start = self._start
        available = self._end - start - 4
        if available < 0:
            return None
        (size,) = _SIZE.unpack_from(self._buf, start)
        if size < 0 or size > self.max_frame_size or available >= size:
            return None  # _cut reports a bad size; a complete frame is cut from the buffer
        frame = _uninitialised(size)
        frame[:available] = memoryview(self._buf)[start + 4 : self._end]
        self._start = self._end = 0
        self._frame, self._filled = frame, available
        self._prefix_first = size > len(self._buf) // 2  # another like it: not read twice
        return frame

    def _compact(self) -> None:
        pending = self._end - self._start
        # through a copy: the ranges may overlap (rare, and at most one read buffer)
        self._buf[:pending] = self._buf[self._start : self._end]
        self._start, self._end = 0, pending

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _pause_reading(self) -> None:
        if not self._reading_paused and not self._lost:
            self._reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and not self._lost:
            if self._frame is None and self._end == len(self._buf):
                if not self._start:
                    return  # still full: the caller takes a frame first
                self._compact()
            self._reading_paused = False
            self.transport.resume_reading()

    # -- writing -------------------------------------------------------------------------

    @property
    def plaintext(self) -> bool:
        """Whether the bytes written are the socket's (no TLS), so another thread may
        write them to a duplicate of its descriptor (``writer_lane``)."""
        return not self._over_ssl and self.transport.get_extra_info("socket") is not None

    def write(self, data: Any) -> None:
        self.transport.write(data)

    @property
    def writing_paused(self) -> bool:
        """Whether the transport's write buffer is above its high-water mark."""
        return self._writing_paused

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        if self._lost:
            raise ConnectionResetError("connection lost")
        if self.transport.is_closing():
            await asyncio.sleep(0)  # let connection_lost run, as StreamWriter.drain does
            if self._lost:
                raise ConnectionResetError("connection lost")
        if not self._writing_paused:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._drain_waiters.append(waiter)
        await waiter

    async def send_chunks(self, chunks: list[Any]) -> None:
        """Write ``chunks`` in order, file regions included (see the module docstring);
        every region is closed once sent (or not, on an error)."""
        try:
            for chunk in chunks:
                if isinstance(chunk, FileRegion):
                    await self._send_region(chunk)
                else:
                    self.transport.write(chunk)
        finally:
            for chunk in chunks:
                if isinstance(chunk, FileRegion):
                    chunk.close()

    async def _send_region(self, region: FileRegion) -> None:
        sock = self.transport.get_extra_info("socket")
        if self._over_ssl or sock is None:
            self.transport.write(await asyncio.to_thread(region.read))
            return
        await self._flushed()
        if self._lost:
            raise ConnectionResetError("connection lost")
        sock_fd = os.dup(sock.fileno())
        try:
            rest = await asyncio.to_thread(_sendfile, sock_fd, region)
        finally:
            os.close(sock_fd)
        if rest:
            self.transport.write(rest)

    async def _flushed(self) -> None:
        """Wait until the transport has sent everything written to it."""
        transport = self.transport
        if not transport.get_write_buffer_size():
            return
        low, high = transport.get_write_buffer_limits()
        transport.set_write_buffer_limits(high=0, low=0)  # resume_writing once empty
        try:
            while transport.get_write_buffer_size():
                if not self._writing_paused:
                    await asyncio.sleep(0)
                await self.drain()
        finally:
            transport.set_write_buffer_limits(high=high, low=low)

    def socket_fd(self) -> int | None:
        """The socket's descriptor when the next bytes on the connection may be written
        straight to it (``send_direct``) on the event loop's thread, now: plaintext, and
        nothing waiting in the transport's buffer. While the caller writes, nothing else
        may write to this connection (the server is waiting for the request it answers,
        and no earlier response is queued: ``ResponseQueue.idle``)."""
        if self._over_ssl or self._lost or self.transport.is_closing():
            return None
        if self.transport.get_write_buffer_size():
            return None
        sock = self.transport.get_extra_info("socket")
        return None if sock is None else int(sock.fileno())

    def idle_socket(self) -> int | None:
        """``socket_fd``, duplicated for another thread (so that a socket closed meanwhile
        can never be confused with a new one); the caller closes it. The same rules hold
        until it does."""
        fd = self.socket_fd()
        return None if fd is None else os.dup(fd)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def close(self) -> None:
        self.transport.close()

    async def wait_closed(self) -> None:
        if self._closed is not None:
            await asyncio.shield(self._closed)


def _make_uninitialised() -> Callable[[int], bytearray]:
    """``bytearray(n)`` without zeroing ``n`` bytes that the socket is about to overwrite
    (a memset of every produce request): CPython's ``PyByteArray_FromStringAndSize(NULL,
    n)``. Elsewhere, plain ``bytearray``. The frame is handed on only once completely
    received, so no byte of it is ever read before it was written."""
    try:
        new = ctypes.pythonapi.PyByteArray_FromStringAndSize
    except AttributeError:  # not CPython
        return bytearray
    new.argtypes = [ctypes.c_char_p, ctypes.c_ssize_t]
    new.restype = ctypes.py_object
    return lambda size: new(None, size)  # type: ignore[no-any-return]


_uninitialised = _make_uninitialised()


def send_direct(sock_fd: int, chunks: list[Any]) -> list[Any]:
    """Write ``chunks`` (bytes and file regions) to the non-blocking socket ``sock_fd`` as
    far as it takes them now; returns what is left, as bytes, for the transport to send
    next. Every region is closed. Raises ``OSError`` if the connection failed (nothing more
    can be sent on it). In a worker thread (``idle_socket``), or on the event loop
    (``socket_fd``) when the regions lie in the page cache (hot, see ``handlers.fetch``)."""
    rest: list[Any] = []
    try:
        for chunk in chunks:
            if rest:  # the socket is full: everything after goes through the transport
                rest.append(chunk.read() if isinstance(chunk, FileRegion) else chunk)
            elif isinstance(chunk, FileRegion):
                left = _sendfile(sock_fd, chunk)
                if left:
                    rest.append(left)
            else:
                left_bytes = _write_some(sock_fd, chunk)
                if left_bytes:
                    rest.append(left_bytes)
    finally:
        for chunk in chunks:
            if isinstance(chunk, FileRegion):
                chunk.close()
    return rest


def _write_some(sock_fd: int, data: Any) -> Any:
    """Write what the non-blocking socket takes of ``data`` now; the rest (or b"")."""
    view = memoryview(data)
    while view:
        try:
            sent = os.write(sock_fd, view)
        except BlockingIOError:
            break
        view = view[sent:]
    return bytes(view)


def _sendfile(sock_fd: int, region: FileRegion) -> bytes:
    """Send what the (non-blocking) socket takes now; the rest, read."""
    offset, left = region.offset, region.length
    while left:
        try:
            sent = os.sendfile(sock_fd, region.fd, offset, left)
        except BlockingIOError:
            break  # the socket buffer is full: the rest goes through the transport
        if not sent:
            raise OSError(f"segment file ended {left} bytes before its region did")
        offset += sent
        left -= sent
    return region.read(region.length - left) if left else b""
