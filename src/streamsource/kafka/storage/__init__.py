"""The broker's own files, apart from the partition logs: one format, one write path.

Committed offsets, producer ids, producer-state snapshots, the topic list and the cluster
id (and the transaction log and group metadata as they come) are all written here, so that
crash safety, checksums, size bounds and disk errors are handled once. The partition logs'
segments and indexes stay with ``kafka.log``. Nothing here runs on the event loop's thread
by accident: blocking calls say so, and ``RecordLog`` does its writing on a thread of its own.

The format: a file starts with an 8-byte magic naming what it holds, then records::

    length uint32 | crc32c(payload) uint32 | payload

The API, for a new kind of broker state:

- ``RecordLog.open(path, magic)`` replays an append-only record file (a torn tail, as a
  crash mid-append leaves, is cut off) and returns the log with the payloads it held.
  ``await log.append([payload, ...])`` makes records durable; appends from many callers
  made meanwhile share one write and one fsync (group commit), in submission order.
  ``await log.rewrite(payloads)`` replaces the whole file atomically (compaction): it runs
  after every append submitted before it. ``log.close()`` waits for pending appends.
- ``KeyedLog.open(path, magic)``: the latest value per key on a ``RecordLog`` (state of
  named things: transactions, groups); ``items()``, ``await put(key, value)``.
- ``write_record_file(path, magic, payload)`` / ``read_record_file(path, magic)``: a whole
  document as one record, replaced atomically (fsync, rename, fsync of the directory).
- ``write_json`` / ``read_json``: the same for small human-readable documents.

Every write failure (disk full, I/O error) raises ``StorageError`` (KAFKA_STORAGE_ERROR,
retriable as in Kafka) and leaves the file as it was before the failed call: a failed
append is cut back off, a failed replace leaves the old file in place.
"""

from streamsource.kafka.storage.files import (
    MAX_RECORD_BYTES,
    StorageError,
    fsync_dir,
    read_json,
    read_record_file,
    replace_file,
    write_json,
    write_record_file,
)
from streamsource.kafka.storage.keyed_log import KeyedLog
from streamsource.kafka.storage.record_log import RecordLog

__all__ = [
    "MAX_RECORD_BYTES",
    "KeyedLog",
    "RecordLog",
    "StorageError",
    "fsync_dir",
    "read_json",
    "read_record_file",
    "replace_file",
    "write_json",
    "write_record_file",
]
