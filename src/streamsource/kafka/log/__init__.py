"""Partition log storage: the only file I/O of the broker's data plane.

``PartitionLog.open(directory, LogConfig(...), now_ms=...)`` opens (and recovers) one
partition's segmented log; see ``partition_log`` for the API and ``segment``/``index`` for
the file formats.
"""

from streamsource.kafka.log.config import LogConfig
from streamsource.kafka.log.errors import (
    BatchTooLarge,
    InvalidBatch,
    InvalidLogConfig,
    LogClosed,
    LogError,
    LogStorageError,
    OffsetOutOfRange,
)
from streamsource.kafka.log.partition_log import AppendInfo, PartitionLog

__all__ = [
    "AppendInfo",
    "BatchTooLarge",
    "InvalidBatch",
    "InvalidLogConfig",
    "LogClosed",
    "LogConfig",
    "LogError",
    "LogStorageError",
    "OffsetOutOfRange",
    "PartitionLog",
]
