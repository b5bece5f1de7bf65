"""The record format and the one atomic-replace path (see the package docstring)."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import crc32c

from streamsource.errors import CorruptStoreError
from streamsource.kafka.protocol.errors import CodedError, ErrorCode

MAGIC_BYTES = 8
MAX_RECORD_BYTES = 64 * 1024 * 1024  # a length above this is a torn or damaged record
MAX_FILE_BYTES = 256 * 1024 * 1024  # a whole-document file above this is refused
RECORD_HEADER = struct.Struct(">II")  # payload length, crc32c(payload)


class StorageError(CodedError):
    """A broker file could not be written (disk full, I/O error, removed directory).

    The file is as it was before the failed call; the same call may succeed once the disk
    has room again.
    """

    error_code = ErrorCode.KAFKA_STORAGE_ERROR

    def __init__(self, path: Path, operation: str, cause: OSError) -> None:
        self.path = path
        self.cause = cause
        super().__init__(f"{operation} {path}: {cause.strerror or cause}")


def frame(payload: bytes) -> bytes:
    """One record: length, checksum, payload."""
    if len(payload) > MAX_RECORD_BYTES:
        raise ValueError(f"a record of {len(payload)} bytes exceeds {MAX_RECORD_BYTES}")
    return RECORD_HEADER.pack(len(payload), crc32c.crc32c(payload)) + payload


def unframe(data: bytes | memoryview, pos: int) -> tuple[bytes, int] | None:
    """(payload, position after it) of the record at ``pos``; None if it is torn or bad."""
    if len(data) - pos < RECORD_HEADER.size:
        return None
    length, crc = RECORD_HEADER.unpack_from(data, pos)
    start = pos + RECORD_HEADER.size
    if length > MAX_RECORD_BYTES or start + length > len(data):
        return None
    payload = bytes(data[start : start + length])
    if crc32c.crc32c(payload) != crc:
        return None
    return payload, start + length


def iter_records(data: bytes, pos: int) -> Iterator[tuple[bytes, int]]:
    """Each intact record from ``pos`` with the position after it; stops at the first bad
    one (everything from there on is a torn tail)."""
    while True:
        found = unframe(data, pos)
        if found is None:
            return
        yield found
        pos = found[1]


def check_magic(magic: bytes) -> None:
    if len(magic) != MAGIC_BYTES:
        raise ValueError(f"a file magic is {MAGIC_BYTES} bytes, not {len(magic)}")


def write_all(fd: int, data: bytes) -> None:
    """The one place broker state reaches a file: every byte, or ``OSError``."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_dir(directory: Path) -> None:
    """Make a rename, creation or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new version.

    Blocking (two fsyncs): call it from a worker thread when serving requests. Raises
    ``StorageError``; the old file is then untouched.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass  # never created, or already renamed
        raise StorageError(path, "cannot write", exc) from exc


def write_record_file(path: Path, magic: bytes, payload: bytes) -> None:
    """Replace ``path`` with a file holding one checksummed record (see ``replace_file``)."""
    check_magic(magic)
    replace_file(path, magic + frame(payload))


def read_record_file(path: Path, magic: bytes) -> bytes | None:
    """The payload ``write_record_file`` stored; None if there is no file.

    Raises ``CorruptStoreError`` if the file is damaged, of another kind, or too large: the
    caller decides whether to rebuild its state or refuse to start.
    """
    check_magic(magic)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CorruptStoreError(f"{path} is {size} bytes, larger than any state file")
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if data[:MAGIC_BYTES] != magic:
        raise CorruptStoreError(f"{path} is not a {magic.decode(errors='replace')} file")
    found = unframe(data, MAGIC_BYTES)
    if found is None or found[1] != len(data):
        raise CorruptStoreError(f"{path} is damaged (checksum or length)")
    return found[0]


def write_json(path: Path, document: Any, mode: int = 0o644) -> None:
    """Replace ``path`` with ``document`` as readable JSON (see ``replace_file``);
    ``mode`` 0o600 for a file only the broker's user may read."""
    replace_file(path, json.dumps(document, indent=2, sort_keys=True).encode(), mode)


def read_json(path: Path) -> Any | None:
    """The JSON document at ``path``, or ``None`` if it does not exist."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size > MAX_FILE_BYTES:
        raise CorruptStoreError(f"{path} is {size} bytes, larger than any broker metadata file")
    try:
        return json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptStoreError(f"{path} is not valid JSON: {exc}") from exc
