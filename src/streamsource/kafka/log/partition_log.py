"""``PartitionLog``: the segmented, append-only log of one topic partition.

A directory of segments (``<20-digit base offset>.log`` + ``.index`` + ``.timeindex``). The
log stores v2 record batches exactly as produced; ``append`` patches only the base offset
(and, when asked, the partition leader epoch; with ``LogAppendTime`` also the max timestamp,
re-computing the CRC). Offsets are contiguous: each batch takes ``last_offset_delta + 1``.

Thread-safety: every public method takes the log's lock, so the broker may call ``flush``
or ``enforce_retention`` from a worker thread while its event loop appends and reads. The
fsync itself runs outside the lock on duplicated file descriptors, so appends are not held
up by a slow disk.

Hot reads (``read_hot_regions``): a read that the event loop may do itself, because it
cannot wait for the disk: every byte it touches (the batch headers found from the offset
index, the ranges handed to ``sendfile``) is in the page cache. Two ways to know: the bytes
this process appended to the active segment within its last ``HOT_TAIL_BYTES`` were written
moments ago, so they are cached (dirty until written back, then on the LRU as its most
recently used pages) without asking; anything else (older data, older segments, the tail
found at open) is asked of the kernel (``page_cache``: headers read only if cached, regions
counted with ``cachestat``), and where the kernel cannot say, it is cold and goes to a
worker thread. Only memory pressure that evicts pages between the question and the read
could make such a read wait, and then every process of the machine is already paging. A
segment whose file is closed is cold too (opening it may wait). The log's lock is only
tried, never waited for: the writer thread holds it while it appends, and an append may wait
on writeback throttling.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import threading
import time
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from streamsource.kafka.log import page_cache
from streamsource.kafka.log.checks import checked_header, stamp_log_append_time
from streamsource.kafka.log.cleaner import swap as cleaner_swap
from streamsource.kafka.log.cleaner.core import SegmentInfo
from streamsource.kafka.log.config import LogConfig
from streamsource.kafka.log.errors import (
    InvalidBatch,
    LogClosed,
    LogStorageError,
    OffsetOutOfRange,
)
from streamsource.kafka.log.region import FileRegion
from streamsource.kafka.log.segment import (
    MAX_RELATIVE_OFFSET,
    NotCached,
    ReadStats,
    Segment,
    list_segment_bases,
)
from streamsource.kafka.log.start_offset import read_start_offset, write_start_offset
from streamsource.kafka.records.batch import iter_batch_records
from streamsource.kafka.records.errors import RecordError
from streamsource.kafka.records.header import BatchHeader

log = logging.getLogger(__name__)

_BASE_OFFSET_LENGTH_EPOCH = struct.Struct(">qii")
_OPEN_OLD_SEGMENTS = 8  # old segments whose data file stays open between reads
_HEADERS_PER_CHUNK = 1024  # iter_batch_headers: headers read per lock hold
HOT_TAIL_BYTES = 64 * 1024 * 1024  # the end of the active segment reads call hot (docstring)
# A timestamp lookup reads one batch into memory to find the record; above this size (only
# possible in a damaged file) it answers with the batch instead.
_MAX_BATCH_TO_PARSE = 64 * 1024 * 1024


@dataclass(frozen=True)
class CleanerView:
    """The closed segments (oldest first) as the cleaner plans a pass over them."""

    segments: list[tuple[Segment, SegmentInfo]]
    active_base: int
    log_start: int


@dataclass(frozen=True, slots=True)
class AppendInfo:
    """Where an append landed: its first and last offset, and the append time it stamped.

    ``log_append_time_ms`` is ``-1`` unless the log uses ``LogAppendTime``, as Kafka's
    ProduceResponse reports it.
    """

    base_offset: int
    last_offset: int
    log_append_time_ms: int


class PartitionLog:
    """One partition's log; create with ``PartitionLog.open``. See the module docstring."""

    def __init__(
        self, directory: Path, config: LogConfig, segments: list[Segment], stats: ReadStats
    ) -> None:
        self.directory = directory
        self._config = config
        self._segments = segments
        self._bases = [s.base_offset for s in segments]
        self._stats = stats
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._recent: OrderedDict[int, Segment] = OrderedDict()  # old segments with open files
        self._closed = False
        self._log_start_offset = segments[0].base_offset
        self._flushed_offset = self.log_end_offset
        # where the bytes this process appended to the active segment start (hot reads)
        self._hot_from = segments[-1].size
        # where the last region read stopped: (offset, segment, position, the header of the
        # batch there), so that a consumer's next fetch, from exactly that offset, finds its
        # batch without the index and header reads (``_walk``)
        self._resume: tuple[int, Segment, int, BatchHeader] | None = None

    # -- opening and closing -------------------------------------------------------------

    @classmethod
    def open(
        cls, directory: Path, config: LogConfig, *, now_ms: int, initial_offset: int = 0
    ) -> PartitionLog:
        """Open (creating if needed) and recover the log in ``directory``.

        Every segment's tail is validated from its last good offset-index entry; a torn or
        corrupt batch and everything after it are truncated, and missing or inconsistent
        indexes are rebuilt from the data. ``initial_offset`` is where an empty log starts.
        """
        directory = Path(directory)
        stats = ReadStats()
        segments: list[Segment] = []
        try:
            directory.mkdir(parents=True, exist_ok=True)
            cleaner_swap.recover(directory)  # finish or discard a cleaning cut by a crash
            bases = list_segment_bases(directory)
            if not bases:
                segments.append(Segment.create(directory, initial_offset, stats, now_ms))
            for base in bases:
                segment = Segment(directory, base, stats)
                segments.append(segment)
                truncated = segment.recover(config.index_interval_bytes, now_ms)
                if truncated:
                    log.warning(
                        "%s: truncated %d bytes of torn or corrupt data after offset %d",
                        segment.path,
                        truncated,
                        segment.next_offset,
                    )
            start = read_start_offset(directory)
            if start is not None and start > segments[0].base_offset:
                segments = _drop_segments_below(start, segments, directory, stats, now_ms)
            # What recovery kept is made durable, so flushed_offset starts at the end.
            for segment in segments:
                if segment.dirty:
                    segment.sync_all()
                if segment is not segments[-1]:
                    segment.close()
        except OSError as exc:
            for segment in segments:
                segment.close()
            raise LogStorageError(directory, "opening the log in", exc) from exc
        opened = cls(directory, config, segments, stats)
        if start is not None:
            opened._log_start_offset = max(opened._log_start_offset, start)
        return opened

    def close(self) -> None:
        """Flush everything to disk and close the files; later calls raise ``LogClosed``."""
        if self._closed:
            return
        self.flush()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                for segment in self._segments:
                    segment.sync_all()  # the indexes too, so the next open reads only tails
            except OSError as exc:
                raise LogStorageError(self.directory, "closing", exc) from exc
            finally:
                for segment in self._segments:
                    segment.close()

    def delete(self) -> None:
        """Close the log and remove its directory with everything in it."""
        with self._lock:
            for segment in self._segments:
                segment.close()
            self._closed = True
            shutil.rmtree(self.directory, ignore_errors=True)

    # -- state ---------------------------------------------------------------------------

    @property
    def config(self) -> LogConfig:
        return self._config

    def update_config(self, config: LogConfig) -> None:
        """Use new settings from now on (e.g. after the topic's configs changed)."""
        with self._lock:
            self._config = config

    @property
    def log_start_offset(self) -> int:
        """The first offset still in the log."""
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        """The offset the next appended record gets."""
        return self._segments[-1].next_offset

    @property
    def flushed_offset(self) -> int:
        """Every offset below this one is on disk (fsynced)."""
        return self._flushed_offset

    @property
    def size_bytes(self) -> int:
        """Bytes of batch data in all segments."""
        return sum(s.size for s in self._segments)

    @property
    def segment_base_offsets(self) -> list[int]:
        """Base offset of every segment, oldest first."""
        return list(self._bases)

    @property
    def stats(self) -> ReadStats:
        return self._stats

    @property
    def bytes_read(self) -> int:
        """Bytes this log object has read from its data files (reads, scans, recovery)."""
        return self._stats.bytes_read

    # -- append --------------------------------------------------------------------------

    def append(
        self,
        batches: Sequence[bytes | bytearray | memoryview],
        *,
        now_ms: int,
        leader_epoch: int | None = None,
    ) -> AppendInfo:
        """Append v2 batches (already validated by the caller) and give them offsets.

        Each batch's base offset is patched (in place for a ``bytearray``) to the next
        offset; the batch then takes ``last_offset_delta + 1`` offsets. All batches of one
        call land in the same segment. Raises ``InvalidBatch`` for something that is not a
        v2 batch of its stated length, ``BatchTooLarge`` above ``max_message_bytes``,
        ``LogStorageError`` when the write fails (nothing of the call is then kept).
        """
        if not batches:
            raise InvalidBatch("an append needs at least one batch")
        config = self._config
        headers = [checked_header(b, config.max_message_bytes) for b in batches]
        total = sum(h.size for h in headers)
        offsets = sum(h.last_offset_delta + 1 for h in headers)
        append_time = now_ms if config.message_timestamp_type == "LogAppendTime" else -1
        with self._lock:
            self._check_open()
            first_offset = self.log_end_offset
            segment = self._roll_if_needed(total, offsets, now_ms)
            buffers: list[bytes | bytearray | memoryview] = []
            placed: list[tuple[int, int, int, int]] = []
            next_offset = first_offset
            for batch, header in zip(batches, headers, strict=True):
                max_timestamp = header.max_timestamp
                if append_time >= 0:
                    batch = stamp_log_append_time(batch, append_time)
                    max_timestamp = append_time
                # Write a patched copy of the first 16 bytes and the rest as is: no copy of
                # the batch, and right even if the same buffer is passed twice.
                epoch = header.partition_leader_epoch if leader_epoch is None else leader_epoch
                patched = _BASE_OFFSET_LENGTH_EPOCH.pack(next_offset, header.batch_length, epoch)
                buffers.append(patched)
                buffers.append(memoryview(batch)[16:])
                if isinstance(batch, bytearray):
                    batch[:16] = patched  # the caller sees the offsets it got, as in Kafka
                last_offset = next_offset + header.last_offset_delta
                placed.append((next_offset, last_offset, max_timestamp, header.size))
                next_offset = last_offset + 1
            try:
                segment.append(buffers, placed, config.index_interval_bytes, now_ms)
            except OSError as exc:
                raise LogStorageError(segment.path, "appending to", exc) from exc
            return AppendInfo(first_offset, next_offset - 1, append_time)

    def _roll_if_needed(self, incoming_bytes: int, incoming_offsets: int, now_ms: int) -> Segment:
        active = self._segments[-1]
        if active.is_empty:
            return active
        config = self._config
        relative_end = active.next_offset + incoming_offsets - 1 - active.base_offset
        if (
            active.size + incoming_bytes > config.segment_bytes
            or now_ms - active.created_ms > config.segment_ms
            or relative_end > MAX_RELATIVE_OFFSET
        ):
            try:
                active.seal()
                new = Segment.create(self.directory, active.next_offset, self._stats, now_ms)
            except OSError as exc:
                raise LogStorageError(self.directory, "rolling a segment in", exc) from exc
            self._start_active(new)
            return new
        return active

    def _start_active(self, segment: Segment) -> None:
        """Make a segment just created the active one (under the lock)."""
        self._segments.append(segment)
        self._bases.append(segment.base_offset)
        self._hot_from = 0  # every byte of it is written by this process

    # -- reads ---------------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int, *, max_offset: int | None = None) -> bytes:
        """Whole batches starting with the one that contains ``offset``.

        At most ``max_bytes``, except that the first batch is returned whole even when it is
        larger (KIP-74). Only batches entirely below ``max_offset`` (e.g. the high watermark
        or last stable offset) are returned. ``b""`` at the end of the log; raises
        ``OffsetOutOfRange`` below ``log_start_offset`` or above ``log_end_offset``.
        """
        parts: list[bytes] = []

        def take(segment: Segment, position: int, forced: int, remaining: int) -> int:
            data = segment.read(position, forced, remaining, max_offset)
            if data:
                parts.append(data)
            return position + len(data)

        with self._lock:
            try:
                self._walk(offset, max_bytes, max_offset, take)
            except OSError as exc:
                raise LogStorageError(self.directory, "reading from", exc) from exc
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def read_regions(
        self, offset: int, max_bytes: int, *, max_offset: int | None = None
    ) -> tuple[list[FileRegion], int]:
        """What ``read`` returns, as file regions (one per segment) to send without reading
        them, and the offset after the last batch in them (-1 when there is none).

        The caller owns the regions' descriptors (``FileRegion.close``).
        """
        with self._lock:
            return self._regions(offset, max_bytes, max_offset)

    def read_hot_regions(
        self, offset: int, max_bytes: int, *, max_offset: int | None = None
    ) -> tuple[list[FileRegion], int] | None:
        """What ``read_regions`` returns, if it can be had without waiting: the lock is
        free and every byte the read touches is hot (module docstring); else None (read it
        from a worker thread). For the event loop. None too for a read that fails (out of
        range, closed), so that the worker's read reports it."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._closed:
                return None
            end = self.log_end_offset
            if offset < self._log_start_offset or offset > end:
                return None
            if offset == end or (max_offset is not None and offset >= max_offset):
                return [], -1
            first = max(0, bisect_right(self._bases, offset) - 1)
            walked = self._segments[first:]
            if not all(segment.is_open for segment in walked):
                return None  # opening a file may wait for the disk
            active = walked[-1]
            hot_from = max(self._hot_from, active.size - HOT_TAIL_BYTES)
            if len(walked) == 1:
                # the walk reads forward from the resume point or the index entry below the
                # offset: from there on the tail this process wrote is hot without asking
                resume = self._resume
                if resume is not None and resume[0] == offset and resume[1] is active:
                    position = resume[2]
                else:
                    _, position = active.index.lookup(offset - active.base_offset)
                if position >= hot_from:
                    return self._regions(offset, max_bytes, max_offset)

            def in_page_cache(segment: Segment, start: int, stop: int) -> bool:
                if segment is active and start >= hot_from:
                    return True
                return page_cache.cached(segment.fd(), start, stop - start) is True

            for segment in walked:
                segment.cached_only = True  # batch headers: read only from the page cache
            try:
                return self._regions(offset, max_bytes, max_offset, in_page_cache)
            except NotCached:
                return None
            finally:
                for segment in walked:
                    segment.cached_only = False
        finally:
            self._lock.release()

    def _regions(
        self,
        offset: int,
        max_bytes: int,
        max_offset: int | None,
        hot: Callable[[Segment, int, int], bool] | None = None,
    ) -> tuple[list[FileRegion], int]:
        """``read_regions`` under the lock; with ``hot``, raises ``NotCached`` unless
        ``hot(segment, start, stop)`` holds for every region."""
        regions: list[FileRegion] = []
        after = -1

        def take(segment: Segment, position: int, forced: int, remaining: int) -> int:
            nonlocal after
            stop, next_offset, next_batch = segment.read_range(
                position, forced, remaining, max_offset
            )
            if stop > position:
                if hot is not None and not hot(segment, position, stop):
                    raise NotCached
                regions.append(FileRegion(os.dup(segment.fd()), position, stop - position))
                after = next_offset
            if next_batch is not None:
                self._resume = (next_batch.base_offset, segment, stop, next_batch)
            return stop

        try:
            self._walk(offset, max_bytes, max_offset, take)
        except BaseException as exc:
            for region in regions:
                region.close()
            if isinstance(exc, OSError):
                raise LogStorageError(self.directory, "reading from", exc) from exc
            raise
        return regions, after

    def _walk(
        self,
        offset: int,
        max_bytes: int,
        max_offset: int | None,
        take: Callable[[Segment, int, int, int], int],
    ) -> None:
        """The segment walk of ``read`` and ``read_regions`` (under the lock): from the batch
        that contains ``offset`` on, ``take(segment, position, first batch size or 0, bytes
        left)`` takes whole batches of a segment and returns the position it stopped at."""
        self._check_open()
        end = self.log_end_offset
        if offset < self._log_start_offset or offset > end:
            raise OffsetOutOfRange(offset, self._log_start_offset, end)
        if offset == end or (max_offset is not None and offset >= max_offset):
            return
        remaining = max_bytes
        took = False
        first = max(0, bisect_right(self._bases, offset) - 1)
        resume = self._resume
        for segment in self._segments[first:]:
            self._touch(segment)
            if resume is not None and resume[0] == offset and resume[1] is segment:
                # the batch at the resume point starts at offset: the bytes of a segment
                # never change while it is in the log (cleaning swaps in a new object)
                found: tuple[int, BatchHeader] | None = resume[2], resume[3]
            else:
                found = segment.find_batch(offset)
            if found is None:
                continue  # a gap or an empty segment: the data goes on in the next
            position, header = found
            # the first batch goes out whole, whatever max_bytes says (KIP-74)
            stop = take(segment, position, 0 if took else header.size, remaining)
            if stop > position:
                took = True
                remaining -= stop - position
            if remaining <= 0 or stop < segment.size:
                break

    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int] | None:
        """``(offset, timestamp)`` of the first record stamped ``>= timestamp_ms``.

        The batch is found through the time index, then its records are read to find the
        record (as Kafka's ListOffsets answers). ``None`` when no record is that recent.
        """
        with self._lock:
            self._check_open()
            try:
                for segment in self._segments:
                    if segment.max_timestamp >= timestamp_ms:
                        self._touch(segment)
                        found = segment.find_timestamp(timestamp_ms)
                        if found is not None:
                            return self._record_at_or_after(segment, *found, timestamp_ms)
            except OSError as exc:
                raise LogStorageError(self.directory, "reading from", exc) from exc
            return None

    def max_timestamp_offset(self) -> tuple[int, int] | None:
        """``(offset, timestamp)`` of the first record with the log's largest timestamp.

        What ListOffsets answers for timestamp -3 (KIP-734); ``None`` for an empty log or
        one without timestamps. Reads one batch, found through the time index.
        """
        with self._lock:
            self._check_open()
            best: Segment | None = None
            for segment in self._segments:
                if segment.max_timestamp >= 0 and (
                    best is None or segment.max_timestamp > best.max_timestamp
                ):
                    best = segment  # strictly larger: ties keep the earliest, as Kafka does
            if best is None:
                return None
            try:
                self._touch(best)
                found = best.find_timestamp(best.max_timestamp)
                if found is None:
                    return None
                return self._record_at_or_after(best, *found, best.max_timestamp)
            except OSError as exc:
                raise LogStorageError(self.directory, "reading from", exc) from exc

    def _record_at_or_after(
        self, segment: Segment, position: int, header: BatchHeader, timestamp_ms: int
    ) -> tuple[int, int]:
        """The first record of the batch at ``position`` stamped ``>= timestamp_ms``."""
        if header.size <= _MAX_BATCH_TO_PARSE:
            batch = segment.pread(header.size, position)
            try:
                for record in iter_batch_records(batch):
                    if record.timestamp >= timestamp_ms and record.offset >= self._log_start_offset:
                        return record.offset, record.timestamp
            except RecordError:
                pass  # unreadable records: answer with the batch, still right to seek to
        return max(header.base_offset, self._log_start_offset), header.max_timestamp

    def iter_batch_headers(self, from_offset: int = 0) -> Iterator[BatchHeader]:
        """Headers of the batches from the one containing ``from_offset`` to the end.

        Reads in chunks under the lock and yields outside it, so appends may interleave
        (batches appended meanwhile are included).
        """
        offset = max(from_offset, self._log_start_offset)
        while True:
            with self._lock:
                self._check_open()
                chunk = self._headers_from(offset)
            if not chunk:
                return
            yield from chunk
            offset = chunk[-1].next_offset

    def _headers_from(self, offset: int) -> list[BatchHeader]:
        chunk: list[BatchHeader] = []
        first = max(0, bisect_right(self._bases, offset) - 1)
        for segment in self._segments[first:]:
            self._touch(segment)
            found = segment.find_batch(offset)
            if found is None:
                continue
            for _, header in segment.iter_headers(found[0], segment.size):
                chunk.append(header)
                if len(chunk) >= _HEADERS_PER_CHUNK:
                    return chunk
        return chunk

    # -- durability and retention ----------------------------------------------------------

    def flush(self) -> None:
        """fsync the data of everything appended so far; advances ``flushed_offset``.

        Only data files are synced (with ``fdatasync``): indexes are advisory, rebuilt by
        recovery, and synced when a segment rolls and when the log closes.
        """
        # One flush at a time: a second caller must not see "nothing dirty" and return while
        # the first one's fsync of the same data is still running.
        with self._flush_lock:
            with self._lock:
                if self._closed:
                    return
                target = self.log_end_offset
                fds: list[int] = []
                dirty = [s for s in self._segments if s.dirty]
                for segment in dirty:
                    fd = segment.dup_data_fd()
                    if fd >= 0:
                        fds.append(fd)
                    segment.dirty = False
            try:
                for fd in fds:
                    os.fdatasync(fd)
            except OSError as exc:
                for segment in dirty:
                    segment.dirty = True
                raise LogStorageError(self.directory, "flushing", exc) from exc
            finally:
                for fd in fds:
                    os.close(fd)
            with self._lock:
                self._flushed_offset = max(self._flushed_offset, target)

    def enforce_retention(self, now_ms: int) -> int:
        """Delete the oldest segments past ``retention_ms`` or ``retention_bytes``.

        As in Kafka, the active (last) segment goes too once everything in it is past
        retention: a new empty segment is rolled first, at the log end, so an idle topic
        does not keep expired data until its next roll and the log end stays where it was.
        Returns how many segments were deleted; ``log_start_offset`` moves to the new first
        segment. A log whose ``cleanup.policy`` is only ``compact`` keeps everything: the
        cleaner, not retention, bounds it.
        """
        with self._lock:
            self._check_open()
            config = self._config
            if not config.time_and_size_retention:
                return 0
            active = self._segments[-1]
            candidates = self._segments if not active.is_empty else self._segments[:-1]
            by_time = 0
            if config.retention_ms >= 0:
                for segment in candidates:
                    newest = segment.max_timestamp
                    if newest < 0:
                        newest = segment.last_modified_ms
                    if now_ms - newest <= config.retention_ms:
                        break
                    by_time += 1
            by_size = 0
            if config.retention_bytes >= 0:
                size = sum(s.size for s in self._segments)
                for segment in candidates:
                    if size - segment.size < config.retention_bytes:
                        break
                    size -= segment.size
                    by_size += 1
            count = max(by_time, by_size)
            if count == len(self._segments):
                try:
                    active.seal()
                    new = Segment.create(self.directory, active.next_offset, self._stats, now_ms)
                except OSError as exc:
                    raise LogStorageError(self.directory, "rolling a segment in", exc) from exc
                self._start_active(new)
            for segment in self._segments[:count]:
                segment.delete()
                self._recent.pop(segment.base_offset, None)
            del self._segments[:count]
            del self._bases[:count]
            self._log_start_offset = max(self._log_start_offset, self._segments[0].base_offset)
            return count

    def delete_records_before(self, offset: int, *, now_ms: int | None = None) -> int:
        """Make ``offset`` the log start (DeleteRecords): records below it are gone.

        The new start is made durable first (``start_offset``), so it survives a crash or a
        restart; then segments holding only earlier records are deleted. The segment that
        holds ``offset`` stays, its earlier records hidden (reads below the start raise
        ``OffsetOutOfRange``), as in Kafka; when ``offset`` is the log end, the active
        segment is rolled so that all the old data goes. An ``offset`` at or below the
        start changes nothing; above ``log_end_offset`` raises ``OffsetOutOfRange``.
        Returns the log start offset.
        """
        with self._lock:
            self._check_open()
            end = self.log_end_offset
            if offset > end:
                raise OffsetOutOfRange(offset, self._log_start_offset, end)
            if offset <= self._log_start_offset:
                return self._log_start_offset
            try:
                write_start_offset(self.directory, offset)
                self._log_start_offset = offset
                active = self._segments[-1]
                if offset == end and not active.is_empty:
                    active.seal()
                    if now_ms is None:
                        now_ms = int(time.time() * 1000)
                    self._start_active(Segment.create(self.directory, end, self._stats, now_ms))
                count = bisect_right(self._bases, offset) - 1  # segments before offset's one
                for segment in self._segments[:count]:
                    segment.delete()
                    self._recent.pop(segment.base_offset, None)
                del self._segments[:count]
                del self._bases[:count]
            except OSError as exc:
                raise LogStorageError(self.directory, "deleting records from", exc) from exc
            return offset

    # -- compaction (``kafka.log.cleaner``) -------------------------------------------------

    def cleaner_view(self) -> CleanerView:
        """The closed segments now, for the cleaner to read through its own descriptors."""
        with self._lock:
            self._check_open()
            return CleanerView(
                [
                    (s, SegmentInfo(s.base_offset, s.next_offset, s.size, s.max_timestamp))
                    for s in self._segments[:-1]
                ],
                self._segments[-1].base_offset,
                self._log_start_offset,
            )

    def swap_cleaned(self, cleaned: Sequence[tuple[Segment, int, bool]], now_ms: int) -> int:
        """Swap in the cleaned copies staged by the cleaner; returns how many were swapped.

        ``cleaned`` holds ``(segment, its size when read, whether the copy is empty)``. A
        segment that is gone or changed since (retention, DeleteRecords, truncation) keeps
        its data and its copy is discarded. An empty copy deletes its segment, except the
        first one, which holds the log start. Files are swapped as ``cleaner.swap``
        describes, so a crash leaves either segment whole.
        """
        with self._lock:
            self._check_open()
            live = {id(s): i for i, s in enumerate(self._segments[:-1])}
            replace: list[Segment] = []
            delete: list[Segment] = []
            for segment, size, empty in cleaned:
                if id(segment) not in live or segment.size != size:
                    continue
                if empty and segment is not self._segments[0]:
                    delete.append(segment)
                else:
                    replace.append(segment)
            try:
                for segment in replace + delete:
                    segment.close()
                    self._recent.pop(segment.base_offset, None)
                cleaner_swap.commit(
                    self.directory,
                    [s.base_offset for s in replace],
                    [s.base_offset for s in delete],
                )
                for old in replace:
                    new = Segment(self.directory, old.base_offset, self._stats)
                    new.recover(self._config.index_interval_bytes, now_ms)
                    new.created_ms = old.created_ms
                    new.close()
                    self._segments[self._segments.index(old)] = new
            except OSError as exc:
                raise LogStorageError(self.directory, "swapping cleaned segments in", exc) from exc
            gone = {id(s) for s in delete}
            self._segments[:] = [s for s in self._segments if id(s) not in gone]
            self._bases[:] = [s.base_offset for s in self._segments]
            return len(replace) + len(delete)

    def _touch(self, segment: Segment) -> None:
        """Note a read of ``segment``; close the least recently read old segments' files.

        Bounds open descriptors when a consumer walks a long log: the active segment stays
        open, at most ``_OPEN_OLD_SEGMENTS`` others do.
        """
        if segment is self._segments[-1]:
            return
        recent = self._recent
        recent.pop(segment.base_offset, None)
        recent[segment.base_offset] = segment
        while len(recent) > _OPEN_OLD_SEGMENTS:
            _, oldest = recent.popitem(last=False)
            if oldest is not self._segments[-1]:
                oldest.close()

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosed(f"the log in {self.directory} is closed")

    def __repr__(self) -> str:
        return (
            f"PartitionLog({str(self.directory)!r}, start={self._log_start_offset}, "
            f"end={self.log_end_offset}, segments={len(self._segments)})"
        )


def _drop_segments_below(
    start: int, segments: list[Segment], directory: Path, stats: ReadStats, now_ms: int
) -> list[Segment]:
    """Recovery: the segments still needed by a log that starts at ``start`` (checkpointed).

    Segments wholly below ``start`` are deleted (a crash may have kept them after a
    DeleteRecords). If even the log end is below ``start`` (a crash lost an unflushed tail
    whose records were then deleted), the log restarts empty at ``start``.
    """
    if start > segments[-1].next_offset:
        for segment in segments:
            segment.delete()
        return [Segment.create(directory, start, stats, now_ms)]
    while len(segments) > 1 and segments[1].base_offset <= start:
        segments.pop(0).delete()
    return segments
