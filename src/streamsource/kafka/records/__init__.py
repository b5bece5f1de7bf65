"""Kafka record data, sans-I/O: v2 batches, legacy message sets, compression, validation."""

from streamsource.kafka.records.batch import (
    CREATE_TIME,
    LOG_APPEND_TIME,
    NO_TIMESTAMP,
    Record,
    batch_max_timestamp,
    build_batch,
    check_batch,
    iter_batch_records,
    iter_batches,
    magic_of,
    set_log_append_time,
)
from streamsource.kafka.records.compression import (
    MAX_DECOMPRESSED_BYTES,
    Compression,
    compress,
    decompress,
)
from streamsource.kafka.records.errors import (
    CorruptRecordError,
    InvalidRecordError,
    RecordError,
    RecordTooLargeError,
    UnsupportedCompressionError,
)
from streamsource.kafka.records.header import (
    BatchHeader,
    ValidatedBatch,
    parse_header,
    patch_base_offset,
)
from streamsource.kafka.records.legacy import downconvert, iter_legacy_messages
from streamsource.kafka.records.validate import (
    DEFAULT_MAX_BATCH_BYTES,
    validate_produce_records,
)

__all__ = [
    "CREATE_TIME",
    "DEFAULT_MAX_BATCH_BYTES",
    "LOG_APPEND_TIME",
    "MAX_DECOMPRESSED_BYTES",
    "NO_TIMESTAMP",
    "BatchHeader",
    "Compression",
    "CorruptRecordError",
    "InvalidRecordError",
    "Record",
    "RecordError",
    "RecordTooLargeError",
    "UnsupportedCompressionError",
    "ValidatedBatch",
    "batch_max_timestamp",
    "build_batch",
    "check_batch",
    "compress",
    "decompress",
    "downconvert",
    "iter_batch_records",
    "iter_batches",
    "iter_legacy_messages",
    "magic_of",
    "parse_header",
    "patch_base_offset",
    "set_log_append_time",
    "validate_produce_records",
]
