"""Errors of the coordinator's small persistence files."""

from __future__ import annotations

from streamsource.kafka.protocol.errors import CodedError, ErrorCode


class CoordinatorStorageError(CodedError):
    """Committed offsets or producer state could not be written (disk full, I/O error).

    Nothing was changed in memory; ``error_code`` is what the broker answers with.
    """

    error_code = ErrorCode.KAFKA_STORAGE_ERROR
