"""One segment of a partition log: a ``.log`` data file plus its two indexes.

A segment holds v2 record batches back to back, exactly as appended. It knows its base
offset, how many bytes of valid data it has (``size``), the offset after its last batch
(``next_offset``) and its largest batch timestamp. All reads are ``os.pread`` calls of a
bounded window; nothing reads a whole segment into memory.

Not thread-safe by itself: ``PartitionLog`` serialises every call under its lock.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import crc32c

from streamsource.kafka.log import page_cache
from streamsource.kafka.log.index import OffsetIndex, TimeIndex
from streamsource.kafka.records.header import (
    CRC_COVERED_FROM,
    HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    parse_header,
)

MAGIC_V2 = 2
MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD  # smallest legal batchLength field
# Bytes per pread when walking batch headers: the first window is small because a walk from
# an offset-index entry usually ends within index_interval_bytes; later ones grow.
FIRST_SCAN_WINDOW = 8 * 1024
MAX_SCAN_WINDOW = 256 * 1024
# Index entries are written to their files once this much data was appended after the
# last write, not on every append (a syscall or two per produce request): the entries
# live in memory for reads, and a crash loses at most this much of their tail, which
# recovery rebuilds from the data (indexes are advisory), as it does a torn tail.
INDEX_WRITE_BYTES = 4 * 1024 * 1024
VALIDATE_WINDOW = 1024 * 1024  # bytes per pread when checking CRCs during recovery
MAX_RELATIVE_OFFSET = 2**32 - 1  # the offset index stores offsets relative to the base in u32

_OFFSET_AND_LENGTH = struct.Struct(">qi")
_SEGMENT_FILE = re.compile(r"(\d{20})\.(log|index|timeindex)")
_MAX_IOV = 1024  # Linux's IOV_MAX: buffers per pwritev call


class NotCached(Exception):
    """A read of a segment set to ``cached_only`` needed bytes not in the page cache."""


class ReadStats:
    """Counts what a log read from its data files, so tests can check reads stay bounded."""

    def __init__(self) -> None:
        self.bytes_read = 0
        self.read_calls = 0


def segment_file_name(base_offset: int, suffix: str) -> str:
    """``<20-digit base offset><suffix>``, as Kafka names segment files."""
    return f"{base_offset:020d}{suffix}"


class Segment:
    """The data file and indexes of one segment; see the module docstring."""

    def __init__(self, directory: Path, base_offset: int, stats: ReadStats) -> None:
        self.base_offset = base_offset
        self.path = directory / segment_file_name(base_offset, ".log")
        self.index = OffsetIndex(directory / segment_file_name(base_offset, ".index"))
        self.time_index = TimeIndex(directory / segment_file_name(base_offset, ".timeindex"))
        self.size = 0
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.created_ms = 0  # wall clock when this segment started receiving data (for roll)
        self.last_modified_ms = 0  # wall clock of the last append (retention without timestamps)
        self.dirty = False  # data or index bytes written since the last fsync
        # set by the log, under its lock, while the event loop reads: a read of bytes not
        # in the page cache then raises NotCached instead of waiting for the disk
        self.cached_only = False
        self._stats = stats
        self._fd = -1
        self._bytes_since_index = 0
        self._bytes_since_index_write = 0  # data appended since index entries were written

    # -- lifecycle -----------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, base_offset: int, stats: ReadStats, now_ms: int) -> Segment:
        """A new empty segment; an old file with the same name is emptied."""
        segment = cls(directory, base_offset, stats)
        segment._fd = os.open(
            segment.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644
        )
        segment.index.reset()
        segment.time_index.reset()
        _fsync_directory(directory)  # the new file names survive a power loss
        segment.created_ms = segment.last_modified_ms = now_ms
        segment.dirty = True
        return segment

    @property
    def is_empty(self) -> bool:
        return self.size == 0

    @property
    def is_open(self) -> bool:
        """Whether the data file is open (``fd`` would not have to open it)."""
        return self._fd >= 0

    def fd(self) -> int:
        """The data file descriptor, opened on first use."""
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        return self._fd

    def close(self) -> None:
        """Close the files; the segment reopens them lazily when read again."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.index.close()
        self.time_index.close()

    def delete(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
        self.index.delete()
        self.time_index.delete()

    def dup_data_fd(self) -> int:
        """A duplicate of the open data descriptor (or -1), so a flush can run unlocked.

        Flushes sync only the data: the indexes are advisory and recovery rebuilds what a
        crash lost of them, so they are synced only when the segment is sealed or closed.
        """
        return os.dup(self._fd) if self._fd >= 0 else -1

    def sync_all(self) -> None:
        """fsync the data file and both indexes (those that are open), index entries not
        yet written included."""
        self.write_indexes()
        if self._fd >= 0:
            os.fsync(self._fd)
        self.index.fsync()
        self.time_index.fsync()
        self.dirty = False

    def seal(self) -> None:
        """Before rolling: record the final max timestamp in the time index, fsync, close."""
        if self.next_offset > self.base_offset:
            self.time_index.maybe_append(self.max_timestamp, self._last_batch_relative_offset())
            self.time_index.write_pending()
        self.sync_all()
        self.close()

    def _last_batch_relative_offset(self) -> int:
        # The time-index entry must name a batch start at or before the last batch; the last
        # offset-index entry (or the segment start) is always one.
        last = self.index.offsets[-1] if len(self.index) else 0
        return max(last, self.time_index.offsets[-1] if len(self.time_index) else 0)

    # -- append --------------------------------------------------------------------------

    def append(
        self,
        buffers: Sequence[bytes | bytearray | memoryview],
        headers: Sequence[tuple[int, int, int, int]],
        index_interval_bytes: int,
        now_ms: int,
    ) -> None:
        """Write ``buffers`` (the batches' bytes, in order) at the end, then index them.

        ``headers`` holds one ``(base_offset, last_offset, max_timestamp, size)`` per batch.
        On a write error the file is cut back to its old size and the ``OSError`` propagates.
        """
        fd = self.fd()
        position = self.size
        try:
            _pwrite_all(fd, buffers, position)
        except OSError:
            try:
                os.ftruncate(fd, self.size)
            except OSError:
                pass
            raise
        for base_offset, last_offset, max_timestamp, size in headers:
            self._index_batch(position, base_offset, max_timestamp, size, index_interval_bytes)
            position += size
            self.next_offset = last_offset + 1
        self._bytes_since_index_write += position - self.size
        self.size = position
        self.last_modified_ms = now_ms
        self.dirty = True
        if self._bytes_since_index_write >= INDEX_WRITE_BYTES:
            self.write_indexes()

    def write_indexes(self) -> None:
        """Write the index entries kept in memory since the last call to the index files."""
        self.index.write_pending()
        self.time_index.write_pending()
        self._bytes_since_index_write = 0

    def _index_batch(
        self, position: int, base_offset: int, max_timestamp: int, size: int, interval: int
    ) -> None:
        """Index the batch at ``position`` if enough bytes passed since the last entry."""
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
        if self._bytes_since_index > interval:
            relative = base_offset - self.base_offset
            self.index.append(relative, position)
            self.time_index.maybe_append(self.max_timestamp, relative)
            self._bytes_since_index = 0
        self._bytes_since_index += size

    # -- reads ---------------------------------------------------------------------------

    def pread(self, length: int, position: int) -> bytes:
        """Read ``length`` bytes at ``position`` (fewer only at the end of the file)."""
        fd = self.fd()
        if self.cached_only:
            cached = page_cache.pread_cached(fd, length, position)
            if cached is None:
                raise NotCached
            self._stats.bytes_read += length
            self._stats.read_calls += 1
            return cached
        data = os.pread(fd, length, position)
        self._stats.bytes_read += len(data)
        self._stats.read_calls += 1
        if len(data) < length:
            # A short pread below the file size happens only on signals; finish the read.
            parts = [data]
            got = len(data)
            while got < length:
                more = os.pread(fd, length - got, position + got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
                self._stats.bytes_read += len(more)
                self._stats.read_calls += 1
            data = b"".join(parts)
        return data

    def iter_headers(self, start: int, end: int) -> Iterator[tuple[int, BatchHeader]]:
        """``(position, header)`` of each batch in ``[start, end)``, reading bounded windows.

        Stops early at anything that is not a plausible batch header (never past ``end``).
        """
        for position, header in self._walk_headers(start, end):
            if position + header.size > end:
                return
            yield position, header

    def _walk_headers(self, start: int, end: int) -> Iterator[tuple[int, BatchHeader]]:
        """``(position, header)`` of each plausible batch header from ``start`` whose header
        lies before ``end``, in windows that grow while batches are small; the last may be
        of a batch that ends past ``end`` (the callers stop there)."""
        position = start
        window_size = FIRST_SCAN_WINDOW
        while position + HEADER_SIZE <= end:
            window = self.pread(min(window_size, end - position), position)
            window_size = min(window_size * 2, MAX_SCAN_WINDOW)
            offset = 0
            while offset + HEADER_SIZE <= len(window):
                header = parse_header(window, offset)
                if header.batch_length < MIN_BATCH_LENGTH:
                    return
                yield position + offset, header
                offset += header.size
            if offset == 0:
                return
            if offset > len(window):
                window_size = FIRST_SCAN_WINDOW  # big batches: read little more than headers
            position += offset

    def find_batch(self, offset: int) -> tuple[int, BatchHeader] | None:
        """Position and header of the first batch whose last offset is ``>= offset``."""
        _, position = self.index.lookup(max(0, offset - self.base_offset))
        for found in self.iter_headers(position, self.size):
            if found[1].last_offset >= offset:
                return found
        return None

    def read(self, position: int, first_size: int, max_bytes: int, max_offset: int | None) -> bytes:
        """Whole batches from ``position`` (a batch start) within ``max_bytes``.

        The first batch (``first_size`` bytes) is returned even when it alone exceeds
        ``max_bytes`` (KIP-74). Batches whose last offset is ``>= max_offset`` are left out.
        """
        limit = self.size
        if max_offset is not None and max_offset < self.next_offset:
            bound = self.find_batch(max_offset)
            if bound is not None:
                limit = bound[0]
        if position >= limit:
            return b""
        end = min(limit, position + max(max_bytes, first_size))
        data = self.pread(end - position, position)
        if end == limit:
            return data
        # Cut at the last batch boundary inside the window. The offset index gives one close
        # below the window's end, so the walk is short however large max_bytes is.
        boundary = position
        i = self.index.count_below_position(end + 1) - 1
        if i >= 0 and self.index.positions[i] > position:
            boundary = self.index.positions[i]
        cut = boundary - position
        while cut + LOG_OVERHEAD <= len(data):
            _, batch_length = _OFFSET_AND_LENGTH.unpack_from(data, cut)
            if cut + LOG_OVERHEAD + batch_length > len(data):
                break
            cut += LOG_OVERHEAD + batch_length
        return data if cut == len(data) else data[:cut]

    def read_range(
        self, position: int, first_size: int, max_bytes: int, max_offset: int | None
    ) -> tuple[int, int, BatchHeader | None]:
        """What ``read`` would return, as ``(end position, offset after it, header of the
        batch at the end position if the walk read it)``, from the indexes and batch
        headers only (for a region sent without reading it). The header lets the next read
        from there start without looking its batch up (``PartitionLog``'s resume point)."""
        limit, limit_offset = self.size, self.next_offset
        if max_offset is not None and max_offset < self.next_offset:
            bound = self.find_batch(max_offset)
            if bound is not None:
                limit, limit_offset = bound[0], bound[1].base_offset
        if position >= limit:
            return position, -1, None
        end = min(limit, position + max(max_bytes, first_size))
        if end == limit:
            return limit, limit_offset, None
        # The last batch boundary inside the window: walk the headers from the offset-index
        # entry closest below the window's end (the walk is short however large max_bytes).
        cut, after = position, -1
        i = self.index.count_below_position(end + 1) - 1
        if i >= 0 and self.index.positions[i] > position:
            # an indexed batch starts there: everything before it is whole batches
            cut, after = self.index.positions[i], self.base_offset + self.index.offsets[i]
        return self._scan(cut, end, after)

    def _scan(self, start: int, end: int, after: int) -> tuple[int, int, BatchHeader | None]:
        """``iter_headers(start, end)`` to its end: (the position after the last whole
        batch, the offset after it or ``after`` if none, the header of the batch that
        starts there if it was read: the one that did not fit)."""
        stop = start
        for position, header in self._walk_headers(start, end):
            if position + header.size > end:
                return position, after, header
            after = header.next_offset
            stop = position + header.size
        return stop, after, None

    def find_timestamp(self, timestamp: int) -> tuple[int, BatchHeader] | None:
        """Position and header of the first batch whose max timestamp is ``>= timestamp``."""
        relative = self.time_index.lookup_before(timestamp)
        position = 0
        if relative is not None:
            position = self.index.lookup(relative)[1]
        for found in self.iter_headers(position, self.size):
            if found[1].max_timestamp >= timestamp:
                return found
        return None

    # -- recovery ------------------------------------------------------------------------

    def recover(self, index_interval_bytes: int, now_ms: int) -> int:
        """Validate the tail, truncate a torn or corrupt end, rebuild what indexes lack.

        The tail is checked batch by batch (length bounds, magic, contiguous offsets,
        CRC-32C) from the last offset-index entry that points at a good batch, or from the
        start when the indexes are missing or inconsistent. Returns the bytes truncated.
        """
        fd = self.fd()
        file_size = os.fstat(fd).st_size
        mtime_ms = int(os.fstat(fd).st_mtime * 1000)
        self.created_ms = now_ms
        self.last_modified_ms = mtime_ms
        max_entries = file_size // HEADER_SIZE + 1
        indexes_ok = self.index.load(max_entries) & self.time_index.load(max_entries)
        start_entry = -1  # offset-index entry the validated scan starts from
        start_position = 0
        start_offset = self.base_offset
        if indexes_ok:
            for i in range(len(self.index) - 1, -1, -1):
                position = self.index.positions[i]
                offset = self.base_offset + self.index.offsets[i]
                if self._good_batch_at(position, offset, file_size):
                    start_entry, start_position, start_offset = i, position, offset
                    break
        self.index.keep_first(start_entry + 1)
        # Time entries from the start batch on are re-derived by the scan below.
        self.time_index.keep_below_offset(start_offset - self.base_offset if indexes_ok else 0)
        self.max_timestamp = self.time_index.max_timestamp
        self.next_offset = start_offset
        self._bytes_since_index = 0
        position = start_position
        for batch_position, header in self._validated(start_position, file_size, start_offset):
            self._index_batch(
                batch_position,
                header.base_offset,
                header.max_timestamp,
                header.size,
                index_interval_bytes,
            )
            position = batch_position + header.size
            self.next_offset = header.next_offset
        self.size = position
        truncated = file_size - position
        if truncated:
            os.ftruncate(fd, position)
            self.dirty = True
        self.index.write_pending()
        self.time_index.write_pending()
        return truncated

    def _good_batch_at(self, position: int, offset: int, file_size: int) -> bool:
        if position + HEADER_SIZE > file_size:
            return False
        header = parse_header(self.pread(HEADER_SIZE, position))
        if header.batch_length < MIN_BATCH_LENGTH or position + header.size > file_size:
            return False
        # Only this one batch is read (in bounded chunks), not a window past it.
        return any(True for _ in self._validated(position, position + header.size, offset))

    def _validated(
        self, start: int, end: int, expected_offset: int
    ) -> Iterator[tuple[int, BatchHeader]]:
        """Yield the well-formed batches from ``start`` on; stop at the first bad one."""
        position = start
        while position + HEADER_SIZE <= end:
            window = self.pread(min(VALIDATE_WINDOW, end - position), position)
            view = memoryview(window)
            offset = 0
            while offset + HEADER_SIZE <= len(window):
                header = parse_header(window, offset)
                size = header.size
                if (
                    header.batch_length < MIN_BATCH_LENGTH
                    or header.magic != MAGIC_V2
                    or header.last_offset_delta < 0
                    or header.base_offset < expected_offset  # gaps: compaction
                    or header.next_offset - self.base_offset > MAX_RELATIVE_OFFSET + 1
                    or position + offset + size > end
                ):
                    return
                if offset + size > len(window):
                    if offset > 0:
                        break  # read the next window from this batch's start
                    if not self._crc_ok_chunked(position, header):
                        return
                    offset = size
                    yield position, header
                    expected_offset = header.next_offset
                    break
                if crc32c.crc32c(view[offset + CRC_COVERED_FROM : offset + size]) != header.crc:
                    return
                yield position + offset, header
                offset += size
                expected_offset = header.next_offset
            position += offset

    def _crc_ok_chunked(self, position: int, header: BatchHeader) -> bool:
        """CRC of a batch larger than the validation window, read in bounded chunks."""
        crc = 0
        at = position + CRC_COVERED_FROM
        end = position + header.size
        while at < end:
            chunk = self.pread(min(VALIDATE_WINDOW, end - at), at)
            if not chunk:
                return False
            crc = crc32c.crc32c(chunk, crc)
            at += len(chunk)
        return bool(crc == header.crc)


def list_segment_bases(directory: Path) -> list[int]:
    """Base offsets of the ``.log`` files; index files without a ``.log`` are removed."""
    logs: set[int] = set()
    indexes: dict[int, list[Path]] = {}
    for path in directory.iterdir():
        match = _SEGMENT_FILE.fullmatch(path.name)
        if match is None:
            continue
        base = int(match.group(1))
        if match.group(2) == "log":
            logs.add(base)
        else:
            indexes.setdefault(base, []).append(path)
    for base, paths in indexes.items():
        if base not in logs:
            for path in paths:
                path.unlink(missing_ok=True)
    return sorted(logs)


def _pwrite_all(fd: int, buffers: Sequence[bytes | bytearray | memoryview], position: int) -> None:
    """Write every buffer at ``position``: one ``pwritev`` usually, more after short writes."""
    pending = list(buffers)
    while pending:
        chunk = pending[:_MAX_IOV]
        written = os.pwritev(fd, chunk, position)
        position += written
        done = 0  # buffers of the chunk written whole
        while done < len(chunk) and written >= len(chunk[done]):
            written -= len(chunk[done])
            done += 1
        pending = pending[done:]
        if written:  # the first pending buffer was written in part
            pending[0] = memoryview(pending[0])[written:]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
