"""Splitting a byte stream into Kafka frames (int32 size prefix, then that many bytes)."""

from __future__ import annotations

import struct

from streamsource.kafka.protocol.errors import FrameTooLarge, InvalidFrame

DEFAULT_MAX_FRAME_SIZE = 100 * 1024 * 1024

_SIZE = struct.Struct(">i")


class FrameDecoder:
    """Incremental frame splitter: ``feed`` bytes as they arrive, get complete frames back.

    A size prefix that is negative raises ``InvalidFrame``, one above ``max_frame_size``
    raises ``FrameTooLarge`` as soon as the prefix is read, before any of the frame is
    buffered. After an error the decoder is unusable (the connection must be closed).
    """

    __slots__ = ("_buf", "_need", "max_frame_size")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.max_frame_size = max_frame_size
        self._buf = bytearray()
        self._need = -1  # size of the frame being collected, -1 while reading its prefix

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes | bytearray]:
        """Add received bytes; return every frame completed by them (size prefix stripped).

        Frames are copied out once (a produce request is mostly record data, and each copy
        of it costs the broker CPU per message): a frame that spans reads and ends where
        the buffered bytes end is the buffer itself, handed over without a copy.
        """
        if self._buf:
            self._buf += data
            source: bytes | bytearray | memoryview = self._buf
        else:
            # Common case: nothing pending, so frames are sliced straight out of ``data``
            # and only an incomplete tail is kept.
            source = data
        frames: list[bytes | bytearray] = []
        pos = 0
        end = len(source)
        while True:
            if self._need < 0:
                if end - pos < 4:
                    break
                (size,) = _SIZE.unpack_from(source, pos)
                if size < 0:
                    raise InvalidFrame(f"negative frame size {size}")
                if size > self.max_frame_size:
                    raise FrameTooLarge(size, self.max_frame_size)
                self._need = size
                pos += 4
            if end - pos < self._need:
                break
            if source is self._buf and pos + self._need == end:
                # the rest of the buffer is this frame: hand it over (dropping the bytes
                # before it from the front of a bytearray does not move the rest)
                frame = self._buf
                del frame[:pos]
                self._buf = bytearray()
                self._need = -1
                frames.append(frame)
                return frames
            frames.append(bytes(memoryview(source)[pos : pos + self._need]))
            pos += self._need
            self._need = -1
        if source is self._buf:
            del self._buf[:pos]
        elif pos < end:
            self._buf += memoryview(source)[pos:]
        return frames
