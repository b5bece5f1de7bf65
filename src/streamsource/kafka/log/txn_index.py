"""One partition's transaction index: open transactions (for the LSO) and aborted ones.

Kafka keeps a ``.txnindex`` per segment listing aborted transactions, and rebuilds the
open ones from producer state. Here one small file per partition (``transactions.index``)
holds both as fixed-size records: BEGIN (a producer's first transactional batch in the
partition) and COMMIT/ABORT (its marker). Replaying it gives

- the **open transactions** ``{producer_id: first_offset}``: the last stable offset (LSO)
  is the smallest first offset, or the high watermark when none is open;
- the **aborted transactions** ``(producer_id, first_offset, last_offset)`` that Fetch with
  ``read_committed`` lists so clients drop their records.

Records pointing past the log's end (the log lost its tail in a power failure) are
ignored on open, and entries below the log start offset are dropped when the file is
rewritten at open, so the index never outgrows the log. Appends go to the page cache
(``kill -9`` safe) and are synced with the log's flushes. Changes come from the log writer
thread while Fetch reads from worker threads, so every method takes the index's lock; the
event loop, which must not wait for a file write made under it, only tries it (``try_*``).
"""

from __future__ import annotations

import bisect
import os
import struct
import threading
from pathlib import Path
from typing import NamedTuple

import crc32c

from streamsource.kafka.log.errors import LogStorageError

INDEX_FILE = "transactions.index"
_RECORD = struct.Struct(">bqqq")  # kind, producer id, first offset, marker offset
_CRC = struct.Struct(">I")
_SIZE = _RECORD.size + _CRC.size
_BEGIN, _COMMIT, _ABORT = 0, 1, 2


class AbortedTxn(NamedTuple):
    """An aborted transaction's records in this partition: ``first_offset..last_offset``
    (``last_offset`` is the abort marker's offset), as Fetch's aborted_transactions."""

    producer_id: int
    first_offset: int
    last_offset: int


class TransactionIndex:
    """See the module docstring. Open with ``TransactionIndex.open``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.open_txns: dict[int, int] = {}  # producer id -> first offset
        self._aborted: list[AbortedTxn] = []  # sorted by last_offset (append order)
        self._last_offsets: list[int] = []
        self._lock = threading.Lock()
        self._file = None if not path.exists() else open(path, "ab")  # noqa: SIM115

    @classmethod
    def open(cls, directory: Path, log_start_offset: int, log_end_offset: int) -> TransactionIndex:
        """Replay (and rewrite, dropping what is gone from the log) the directory's index."""
        index = cls(Path(directory) / INDEX_FILE)
        path = index.path
        if index._file is not None:
            index._file.close()
        try:
            records = _read_records(path)
            for kind, pid, first, last in records:
                if kind == _BEGIN:
                    if first < log_end_offset:
                        index.open_txns.setdefault(pid, first)
                elif last < log_end_offset:
                    index._end(pid, last, kind == _ABORT)
            index._aborted = [a for a in index._aborted if a.last_offset >= log_start_offset]
            index._last_offsets = [a.last_offset for a in index._aborted]
            if records:
                index._rewrite()
            index._file = open(path, "ab") if path.exists() else None  # noqa: SIM115
        except OSError as exc:
            raise LogStorageError(path, "opening", exc) from exc
        return index

    # -- queries --------------------------------------------------------------------------

    def last_stable_offset(self, high_watermark: int) -> int:
        """The first offset a read_committed consumer may not see yet."""
        with self._lock:
            return self._last_stable_offset(high_watermark)

    def try_last_stable_offset(self, high_watermark: int) -> int | None:
        """``last_stable_offset``, or None while another thread holds the index."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._last_stable_offset(high_watermark)
        finally:
            self._lock.release()

    def aborted_between(self, start: int, end: int) -> list[AbortedTxn]:
        """Aborted transactions with records in ``[start, end)``."""
        with self._lock:
            return self._aborted_between(start, end)

    def try_aborted_between(self, start: int, end: int) -> list[AbortedTxn] | None:
        """``aborted_between``, or None while another thread holds the index."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._aborted_between(start, end)
        finally:
            self._lock.release()

    def _last_stable_offset(self, high_watermark: int) -> int:
        if not self.open_txns:
            return high_watermark
        return min(high_watermark, min(self.open_txns.values()))

    def _aborted_between(self, start: int, end: int) -> list[AbortedTxn]:
        i = bisect.bisect_left(self._last_offsets, start)
        return [a for a in self._aborted[i:] if a.first_offset < end]

    def open_transactions(self) -> dict[int, int]:
        """``{producer id: first offset}`` of the transactions open here."""
        with self._lock:
            return dict(self.open_txns)

    @property
    def aborted(self) -> list[AbortedTxn]:
        with self._lock:
            return list(self._aborted)

    # -- changes ----------------------------------------------------------------------------

    def begin(self, producer_id: int, first_offset: int) -> None:
        """A transactional batch was appended at ``first_offset``."""
        with self._lock:
            if producer_id in self.open_txns:
                return
            self._write(_BEGIN, producer_id, first_offset, -1)
            self.open_txns[producer_id] = first_offset

    def end(self, producer_id: int, marker_offset: int, aborted: bool) -> None:
        """The producer's marker was appended at ``marker_offset``."""
        with self._lock:
            if producer_id not in self.open_txns:
                return  # the transaction wrote nothing here: nothing to hide or to unblock
            first = self.open_txns[producer_id]
            self._write(_ABORT if aborted else _COMMIT, producer_id, first, marker_offset)
            self._end(producer_id, marker_offset, aborted)

    def forget_aborted(self, ended: list[tuple[int, int]]) -> None:
        """Stop listing the aborted transactions ``(producer id, marker offset)`` whose
        records are all gone from the log (compaction): their markers may go next, and an
        entry without its marker would make read_committed clients skip the producer's
        later batches. Durable before it returns (the file is rewritten and synced)."""
        gone = set(ended)
        with self._lock:
            kept = [a for a in self._aborted if (a.producer_id, a.last_offset) not in gone]
            if len(kept) == len(self._aborted):
                return
            self._aborted = kept
            self._last_offsets = [a.last_offset for a in kept]
            try:
                if self._file is not None:
                    self._file.close()
                    self._file = None  # reopened by the next write, should this fail
                self._rewrite()
                self._file = open(self.path, "ab")  # noqa: SIM115
            except OSError as exc:
                raise LogStorageError(self.path, "rewriting", exc) from exc

    def flush(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError as exc:
                raise LogStorageError(self.path, "syncing", exc) from exc

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            try:
                self.flush()
            finally:
                self._file.close()

    # -- internals ------------------------------------------------------------------------

    def _end(self, producer_id: int, marker_offset: int, aborted: bool) -> None:
        first = self.open_txns.pop(producer_id, None)
        if first is not None and aborted:
            self._aborted.append(AbortedTxn(producer_id, first, marker_offset))
            self._last_offsets.append(marker_offset)

    def _write(self, kind: int, producer_id: int, first: int, last: int) -> None:
        record = _RECORD.pack(kind, producer_id, first, last)
        try:
            if self._file is None:
                self._file = open(self.path, "ab")  # noqa: SIM115
            self._file.write(record + _CRC.pack(crc32c.crc32c(record)))
            self._file.flush()
        except OSError as exc:
            raise LogStorageError(self.path, "appending to", exc) from exc

    def _rewrite(self) -> None:
        """Write the live state to a new file and swap it in (drops ended BEGINs too)."""
        tmp = self.path.with_name(INDEX_FILE + ".tmp")
        with open(tmp, "wb") as f:
            for a in self._aborted:
                for kind, last in ((_BEGIN, -1), (_ABORT, a.last_offset)):
                    record = _RECORD.pack(kind, a.producer_id, a.first_offset, last)
                    f.write(record + _CRC.pack(crc32c.crc32c(record)))
            for pid, first in self.open_txns.items():
                record = _RECORD.pack(_BEGIN, pid, first, -1)
                f.write(record + _CRC.pack(crc32c.crc32c(record)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def _read_records(path: Path) -> list[tuple[int, int, int, int]]:
    """Every intact record; a torn or corrupt tail ends the list (and is rewritten away)."""
    if not path.exists():
        return []
    records: list[tuple[int, int, int, int]] = []
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_SIZE)
            if len(chunk) < _SIZE:
                break
            (crc,) = _CRC.unpack_from(chunk, _RECORD.size)
            if crc32c.crc32c(chunk[: _RECORD.size]) != crc:
                break
            records.append(_RECORD.unpack_from(chunk))
    return records
