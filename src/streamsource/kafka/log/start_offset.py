"""The log start offset checkpoint: where DeleteRecords moved a partition's start.

Retention moves the start only by deleting whole segments, so the first segment's base
offset says where the log starts. DeleteRecords (KIP-107) may move it into the middle of a
segment, which nothing else on disk records; this file does. It is tiny and replaced
atomically (temp file, fsync, rename, fsync of the directory)::

    magic "SSLSO001" | offset int64 | crc32c(magic + offset) uint32

A file of the wrong size, magic or CRC is ignored (with a warning): the start then falls
back to the first segment's base, which only re-exposes records that were deleted.
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path

import crc32c

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "log-start-offset.checkpoint"
_MAGIC = b"SSLSO001"
_BODY = struct.Struct(">8sq")
_CRC = struct.Struct(">I")
_SIZE = _BODY.size + _CRC.size


def read_start_offset(directory: Path, file_name: str = CHECKPOINT_FILE) -> int | None:
    """The checkpointed log start offset in ``directory``, or ``None`` if there is none.

    ``file_name`` names another offset checkpoint of the same format (the cleaner's).
    """
    path = directory / file_name
    try:
        with open(path, "rb") as f:
            data = f.read(_SIZE + 1)  # bounded: one byte more shows a file that is too long
    except FileNotFoundError:
        return None
    if len(data) == _SIZE:
        magic, offset = _BODY.unpack_from(data)
        (crc,) = _CRC.unpack_from(data, _BODY.size)
        if magic == _MAGIC and crc == crc32c.crc32c(data[: _BODY.size]) and offset >= 0:
            return int(offset)
    log.warning("%s is damaged; the log starts at its first segment", path)
    return None


def write_start_offset(directory: Path, offset: int, file_name: str = CHECKPOINT_FILE) -> None:
    """Durably record ``offset`` as the log start (raises ``OSError`` on failure)."""
    body = _BODY.pack(_MAGIC, offset)
    data = body + _CRC.pack(crc32c.crc32c(body))
    path = directory / file_name
    tmp = directory / (file_name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
