"""Cleaning one partition log: plan, build the offset map, rewrite, swap.

Runs in a worker thread (the broker's cleaner task hands it one log at a time) and never
holds the log's lock while it reads or writes data: it reads closed segments through its
own file descriptors (closed segments do not change; one deleted meanwhile by retention
stays readable through the open descriptor), writes the cleaned copies into the staging
directory, and takes the lock only for the swap (``PartitionLog.swap_cleaned``), which
skips any segment that changed meanwhile. Produce and fetch go on throughout.

A pass covers the log from its start to the cleanable end (below the active segment, any
open transaction and the compaction lag). Its offset map holds the keys of the dirty part
(from the cleaner checkpoint on) as far as ``dedupe_buffer_bytes`` allows; when the keys do
not fit, the pass ends where the map filled up, and the next pass goes on from there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from streamsource.kafka.log.cleaner import swap
from streamsource.kafka.log.cleaner.core import (
    Cleaner,
    OffsetMap,
    Transactions,
    cleanable_end,
    map_batch,
    marker_type,
    needs_cleaning,
)
from streamsource.kafka.log.errors import InvalidLogConfig, LogStorageError
from streamsource.kafka.log.segment import Segment, segment_file_name
from streamsource.kafka.log.start_offset import read_start_offset, write_start_offset
from streamsource.kafka.records.header import HEADER_SIZE, parse_header

if TYPE_CHECKING:
    from streamsource.kafka.log.partition_log import CleanerView, PartitionLog

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "cleaner-offset.checkpoint"
# the earliest delete horizon stamped into the log (KIP-534): once it has passed, the log
# is cleaned even without new dirty data, so that expired tombstones go
HORIZON_FILE = "cleaner-horizon.checkpoint"
_WINDOW = 1024 * 1024  # bytes per read of a segment being cleaned
_WRITE_BUFFER = 1024 * 1024


@dataclass
class CleanResult:
    """What one ``clean_log`` call did."""

    passes: int = 0
    segments_rewritten: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    # (producer id, marker offset) of aborted transactions found with no batch left
    dataless_aborts: list[tuple[int, int]] = field(default_factory=list)


def clean_log(
    partition_log: PartitionLog,
    *,
    now_ms: int,
    dedupe_buffer_bytes: int,
    force: bool = False,
    forget_aborted: Callable[[list[tuple[int, int]]], None] | None = None,
) -> CleanResult:
    """Compact ``partition_log`` if its dirty ratio (or ``force``) says so.

    ``forget_aborted`` gets the (producer id, marker offset) of aborted transactions with
    no batch left, before the swap that may drop their markers (the partition's
    transaction index must stop listing them first; called again for the same ones is
    harmless). A crash between the two leaves the marker in place: the next cleaning
    reports it again.

    Raises ``LogStorageError`` when the disk fails (the log is left as it was: a swap is
    all or nothing per segment) and ``InvalidLogConfig`` when one batch has more records
    than the offset map can hold.
    """
    result = CleanResult()
    directory = partition_log.directory
    config = partition_log.config
    try:
        view = partition_log.cleaner_view()
        first_dirty = max(read_start_offset(directory, CHECKPOINT_FILE) or 0, view.log_start)
        txns = _scan_transactions(partition_log, view.log_start)
        infos = [info for _, info in view.segments]
        end = cleanable_end(
            infos,
            view.active_base,
            txns.open_start,
            first_dirty=first_dirty,
            now_ms=now_ms,
            min_compaction_lag_ms=config.min_compaction_lag_ms,
        )
        horizon = read_start_offset(directory, HORIZON_FILE)
        horizon_passed = horizon is not None and horizon <= now_ms
        if (
            not force
            and not horizon_passed
            and not needs_cleaning(
                infos,
                first_dirty=first_dirty,
                end=end,
                min_dirty_ratio=config.min_cleanable_dirty_ratio,
                now_ms=now_ms,
                max_compaction_lag_ms=config.max_compaction_lag_ms,
            )
        ):
            return result
        earliest: int | None = None
        while True:  # at least one pass: a passed horizon alone is worth one
            pass_end, earliest = _clean_pass(
                partition_log,
                view,
                txns,
                first_dirty,
                end,
                dedupe_buffer_bytes,
                now_ms,
                result,
                forget_aborted,
            )
            write_start_offset(directory, pass_end, CHECKPOINT_FILE)
            first_dirty = pass_end
            if first_dirty >= end:
                break
            view = partition_log.cleaner_view()
        if earliest is not None:
            write_start_offset(directory, earliest, HORIZON_FILE)
        else:
            (directory / HORIZON_FILE).unlink(missing_ok=True)
    except OSError as exc:
        raise LogStorageError(directory, "cleaning", exc) from exc
    return result


def _scan_transactions(partition_log: PartitionLog, start: int) -> Transactions:
    txns = Transactions()
    for header in partition_log.iter_batch_headers(start):
        marker = None
        if header.is_control:
            marker = marker_type(partition_log.read(header.base_offset, header.size))
        txns.observe(header, marker)
    return txns


def _clean_pass(
    partition_log: PartitionLog,
    view: CleanerView,
    txns: Transactions,
    first_dirty: int,
    end: int,
    dedupe_buffer_bytes: int,
    now_ms: int,
    result: CleanResult,
    forget_aborted: Callable[[list[tuple[int, int]]], None] | None,
) -> tuple[int, int | None]:
    """One pass; returns the offset its map covered up to (the next pass's dirty start)
    and the earliest delete horizon still ahead in what it kept."""
    offset_map = OffsetMap.for_bytes(dedupe_buffer_bytes)
    pass_end = max(end, first_dirty)
    for segment, info in view.segments:
        if info.next_offset <= first_dirty or info.base_offset >= end or pass_end < end:
            continue
        for batch in _file_batches(segment):
            header = parse_header(batch)
            if header.base_offset < first_dirty:
                continue
            if header.base_offset >= end:
                break
            if not map_batch(offset_map, batch, txns):
                if len(offset_map) == 0:
                    raise InvalidLogConfig(
                        f"a batch of {header.record_count} records does not fit the cleaner's "
                        f"offset map ({offset_map.capacity} keys): raise "
                        "log.cleaner.dedupe.buffer.size"
                    )
                pass_end = header.base_offset
                break
    cleaner = Cleaner(
        offset_map,
        txns,
        now_ms=now_ms,
        delete_retention_ms=partition_log.config.delete_retention_ms,
    )
    staging = swap.fresh_staging(partition_log.directory)
    cleaned: list[tuple[Segment, int, bool]] = []
    for segment, info in view.segments:
        if info.base_offset >= min(pass_end, end):
            break
        rewritten = _rewrite_segment(segment, cleaner, staging, partition_log, now_ms)
        if rewritten is not None:
            cleaned.append((segment, info.size, rewritten == 0))
            result.bytes_before += info.size
            result.bytes_after += rewritten
    if cleaner.dataless_aborts:
        if forget_aborted is not None:
            forget_aborted(cleaner.dataless_aborts)
        result.dataless_aborts += cleaner.dataless_aborts
    result.segments_rewritten += partition_log.swap_cleaned(cleaned, now_ms)
    result.passes += 1
    return pass_end, cleaner.earliest_horizon


def _rewrite_segment(
    segment: Segment, cleaner: Cleaner, staging: Path, partition_log: PartitionLog, now_ms: int
) -> int | None:
    """Write the cleaned copy of ``segment`` with its indexes into ``staging``.

    Returns its size, or ``None`` when cleaning changes nothing (no copy is then kept).
    """
    target = staging / segment_file_name(segment.base_offset, ".log")
    changed = False
    size = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        pending: list[bytes | bytearray | memoryview] = []
        pending_bytes = 0
        for batch in _file_batches(segment):
            kept = cleaner.clean(batch)
            if kept is not batch:
                changed = True
            if kept is None:
                continue
            pending.append(kept)
            pending_bytes += len(kept)
            size += len(kept)
            if pending_bytes >= _WRITE_BUFFER:
                _write_all(fd, pending)
                pending, pending_bytes = [], 0
        if not changed:
            os.close(fd)
            fd = -1
            target.unlink()
            return None
        _write_all(fd, pending)
        os.fsync(fd)
    finally:
        if fd >= 0:
            os.close(fd)
    # Build the indexes from the data just written, as recovery would, and fsync them.
    copy = Segment(staging, segment.base_offset, partition_log.stats)
    copy.recover(partition_log.config.index_interval_bytes, now_ms)
    if copy.size != size:
        raise OSError(f"the cleaned copy of {segment.path} did not read back whole")
    copy.seal()
    stat = os.stat(segment.path)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # retention by mtime unchanged
    return size


def _file_batches(segment: Segment) -> Iterator[memoryview]:
    """The batches of a closed segment, read through a descriptor of our own."""
    fd = os.open(segment.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        end = os.fstat(fd).st_size
        position = 0
        while position + HEADER_SIZE <= end:
            window = os.pread(fd, min(_WINDOW, end - position), position)
            view = memoryview(window)
            offset = 0
            while offset + HEADER_SIZE <= len(window):
                size = parse_header(window, offset).size
                if offset + size > len(window):
                    break
                yield view[offset : offset + size]
                offset += size
            if offset == 0:  # one batch larger than the window: read it whole
                size = parse_header(window).size
                whole = os.pread(fd, size, position)
                if len(whole) < size:
                    return
                yield memoryview(whole)
                offset = size
            position += offset
    finally:
        os.close(fd)


def _write_all(fd: int, buffers: list[bytes | bytearray | memoryview]) -> None:
    for buffer in buffers:
        view = memoryview(buffer)
        while view:
            written = os.write(fd, view)
            view = view[written:]
