"""``FileRegion``: bytes of a segment file handed to the network without being read.

A fetch of v2 batches sends them exactly as stored, so for a plaintext connection the
broker passes the kernel a file range (``sendfile``) instead of reading it into memory and
writing it back out: two copies of every fetched byte fewer. The region owns a duplicate of
the segment's descriptor, so retention, compaction or a segment closing meanwhile cannot
take the data away (the stored bytes of a batch never change once written).
"""

from __future__ import annotations

import os


class FileRegion:
    """``length`` bytes of a file at ``offset``, through a descriptor this object owns."""

    __slots__ = ("fd", "length", "offset")

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self.fd = fd
        self.offset = offset
        self.length = length

    def __len__(self) -> int:
        return self.length

    def read(self, skip: int = 0) -> bytes:
        """The region's bytes from ``skip`` on (for a connection that cannot ``sendfile``)."""
        parts = []
        at, left = self.offset + skip, self.length - skip
        while left > 0:
            data = os.pread(self.fd, left, at)
            if not data:
                raise OSError(f"segment file ended {left} bytes before its region did")
            parts.append(data)
            at += len(data)
            left -= len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:  # a response dropped unsent must not leak its descriptor
        self.close()

    def __repr__(self) -> str:
        return f"FileRegion(fd={self.fd}, offset={self.offset}, length={self.length})"
