"""Errors raised by the partition log.

Each carries ``error_code``, the Kafka error code the broker answers with, as a plain int so
that this package does not depend on the protocol package.
"""

from __future__ import annotations

from pathlib import Path

from streamsource.errors import StreamsourceError

# Kafka error codes (see streamsource.kafka.protocol.errors.ErrorCode).
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
MESSAGE_TOO_LARGE = 10
INVALID_CONFIG = 40
KAFKA_STORAGE_ERROR = 56


class LogError(StreamsourceError):
    """Base class of partition-log errors; ``error_code`` is the Kafka code to answer with."""

    error_code: int = KAFKA_STORAGE_ERROR


class OffsetOutOfRange(LogError):
    """A read asked for an offset below the log start or beyond the log end."""

    error_code = OFFSET_OUT_OF_RANGE

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset
        super().__init__(
            f"offset {offset} is outside the log's range [{log_start_offset}, {log_end_offset}]"
        )


class InvalidBatch(LogError):
    """A batch handed to ``append`` is not a well-formed v2 record batch."""

    error_code = CORRUPT_MESSAGE


class BatchTooLarge(LogError):
    """A batch is larger than the log's ``max_message_bytes``."""

    error_code = MESSAGE_TOO_LARGE


class InvalidLogConfig(LogError):
    """A log setting is out of range or not a number."""

    error_code = INVALID_CONFIG


class LogStorageError(LogError):
    """The disk refused an operation (full, read-only, removed); the log may be unusable."""

    retriable = False

    def __init__(self, path: Path, operation: str, cause: OSError) -> None:
        self.path = path
        super().__init__(f"{operation} {path}: {cause.strerror or cause}")


class LogClosed(LogError):
    """The log was closed or deleted and cannot be used any more."""
