"""The sparse offset index and the time index of one segment.

Both are append-only files of fixed-size big-endian entries, as in Kafka:

* ``.index``: ``relative offset u32 | position u32`` -- the batch whose base offset is
  ``segment base + relative offset`` starts at byte ``position`` of the ``.log`` file;
  one entry about every ``index_interval_bytes`` of data.
* ``.timeindex``: ``timestamp i64 | relative offset u32`` -- every batch up to and including
  the one at that relative offset has a max timestamp ``<= timestamp``; written at the same
  points as offset entries, only when the segment's max timestamp grew.

The entries are mirrored in two ``array`` columns so that lookups are a ``bisect``, not file
reads. Indexes are advisory: data is always written before its index entry, and the log
rebuilds an index that is missing or inconsistent from the data (``streamsource.kafka.log.
segment``). Memory: one entry (8 + 8 bytes here) per ``index_interval_bytes`` of data.
"""

from __future__ import annotations

import os
import struct
from array import array
from bisect import bisect_left, bisect_right
from pathlib import Path

_OFFSET_ENTRY = struct.Struct(">II")
_TIME_ENTRY = struct.Struct(">qI")


class _IndexFile:
    """An append-only file of fixed-size entries, opened lazily."""

    entry: struct.Struct

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1
        self._file_entries = 0  # entries on disk that match the memory columns
        self._file_bytes = 0  # the file's size, trusted entries or not
        self._pending = bytearray()  # encoded entries not yet written

    def _read_raw(self, max_entries: int) -> list[tuple[int, int]] | None:
        """The entries on disk, or ``None`` when the file is missing or oversized."""
        self._file_entries = 0  # until load() accepts them, no entry on disk is trusted
        try:
            self._file_bytes = os.stat(self.path).st_size
        except FileNotFoundError:
            self._file_bytes = 0
            return None
        count = self._file_bytes // self.entry.size
        if count > max_entries:
            return None
        with open(self.path, "rb") as f:
            data = f.read(count * self.entry.size)
        return [self.entry.unpack_from(data, i * self.entry.size) for i in range(count)]

    def _append_raw(self, a: int, b: int) -> None:
        self._pending += self.entry.pack(a, b)

    def write_pending(self) -> None:
        """Write buffered entries to the file (after their data was written)."""
        if not self._pending:
            return
        fd = self._open()
        position = self._file_entries * self.entry.size
        data = bytes(self._pending)
        self._pending.clear()
        done = 0
        while done < len(data):
            done += os.pwrite(fd, data[done:], position + done)
        self._file_entries += len(data) // self.entry.size
        self._file_bytes = max(self._file_bytes, position + len(data))

    def _open(self) -> int:
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        return self._fd

    def reset(self) -> None:
        """Create the file empty (emptying an old one), with no entries."""
        self.close()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        self._file_entries = self._file_bytes = 0
        self._pending.clear()
        self._clear_columns()

    def _clear_columns(self) -> None:
        raise NotImplementedError

    def _keep(self, count: int) -> None:
        """Keep the first ``count`` entries (memory columns already cut); drop the rest.

        A prefix of the file stays as it is: only what follows is truncated (a torn entry,
        entries past the recovered data, or a file that failed to load).
        """
        size = self.entry.size
        if count <= self._file_entries:
            self._file_entries = count
            self._pending.clear()
        else:
            del self._pending[(count - self._file_entries) * size :]
        keep_bytes = self._file_entries * size
        fd = self._open()  # (re)creates a missing file, so the next open finds it
        if self._file_bytes != keep_bytes:
            os.ftruncate(fd, keep_bytes)
            self._file_bytes = keep_bytes

    def fsync(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def delete(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class OffsetIndex(_IndexFile):
    """Relative offset -> file position of a batch start, sparse and sorted."""

    entry = _OFFSET_ENTRY

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.offsets = array("I")
        self.positions = array("I")

    def load(self, max_entries: int) -> bool:
        """Read the file; ``False`` (entries empty) when missing, oversized or unsorted."""
        raw = self._read_raw(max_entries)
        self.offsets = array("I")
        self.positions = array("I")
        if raw is None:
            return False
        prev_offset = prev_pos = -1
        for rel, pos in raw:
            if rel <= prev_offset or pos <= prev_pos:
                return False
            prev_offset, prev_pos = rel, pos
        self.offsets.extend(r for r, _ in raw)
        self.positions.extend(p for _, p in raw)
        self._file_entries = len(raw)
        return True

    def __len__(self) -> int:
        return len(self.offsets)

    def _clear_columns(self) -> None:
        self.offsets = array("I")
        self.positions = array("I")

    def append(self, relative_offset: int, position: int) -> None:
        self.offsets.append(relative_offset)
        self.positions.append(position)
        self._append_raw(relative_offset, position)

    def lookup(self, relative_offset: int) -> tuple[int, int]:
        """The last entry whose offset is ``<= relative_offset``, else ``(0, 0)``."""
        i = bisect_right(self.offsets, relative_offset) - 1
        if i < 0:
            return 0, 0
        return self.offsets[i], self.positions[i]

    def keep_first(self, count: int) -> None:
        """Drop every entry after the first ``count`` (on disk too)."""
        del self.offsets[count:]
        del self.positions[count:]
        self._keep(count)

    def count_below_position(self, position: int) -> int:
        """How many entries point before ``position``."""
        return bisect_left(self.positions, position)


class TimeIndex(_IndexFile):
    """Max timestamp so far -> relative offset, sorted by both."""

    entry = _TIME_ENTRY

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.timestamps = array("q")
        self.offsets = array("I")

    def load(self, max_entries: int) -> bool:
        """Read the file; ``False`` (entries empty) when missing, oversized or unsorted."""
        raw = self._read_raw(max_entries)
        self.timestamps = array("q")
        self.offsets = array("I")
        if raw is None:
            return False
        prev_ts = prev_offset = -(2**63)
        for ts, rel in raw:
            if ts <= prev_ts or rel < prev_offset:
                return False
            prev_ts, prev_offset = ts, rel
        self.timestamps.extend(t for t, _ in raw)
        self.offsets.extend(r for _, r in raw)
        self._file_entries = len(raw)
        return True

    def __len__(self) -> int:
        return len(self.offsets)

    def _clear_columns(self) -> None:
        self.timestamps = array("q")
        self.offsets = array("I")

    @property
    def max_timestamp(self) -> int:
        return self.timestamps[-1] if self.timestamps else -1

    def maybe_append(self, timestamp: int, relative_offset: int) -> None:
        """Add an entry if ``timestamp`` is larger than the last one's."""
        if timestamp > self.max_timestamp and (
            not self.offsets or relative_offset >= self.offsets[-1]
        ):
            self.timestamps.append(timestamp)
            self.offsets.append(relative_offset)
            self._append_raw(timestamp, relative_offset)

    def lookup_before(self, timestamp: int) -> int | None:
        """Relative offset of the last entry with a timestamp ``< timestamp``, if any."""
        i = bisect_left(self.timestamps, timestamp) - 1
        return self.offsets[i] if i >= 0 else None

    def keep_below_offset(self, relative_offset: int) -> None:
        """Drop every entry at or after ``relative_offset`` (on disk too)."""
        count = bisect_left(self.offsets, relative_offset)
        del self.timestamps[count:]
        del self.offsets[count:]
        self._keep(count)
