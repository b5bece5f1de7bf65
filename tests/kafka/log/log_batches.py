"""Build real v2 record batches for the log tests (with kafka-python's builder).

Each value is ``b"<tag>:<offset delta>"`` padded to ``value_size`` so a test can tell batches
apart; ``records_in`` reads them back with kafka-python's own parser.
"""

from __future__ import annotations

from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from streamsource.kafka.records.header import parse_header


def make_batch(
    count: int = 1,
    *,
    timestamp: int = 1_000,
    timestamps: list[int] | None = None,
    tag: str = "v",
    value_size: int = 0,
) -> bytearray:
    """A v2 batch of ``count`` records stamped ``timestamp`` (or one each of ``timestamps``)."""
    stamps = timestamps if timestamps is not None else [timestamp] * count
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 30,
    )
    for delta, ts in enumerate(stamps):
        value = f"{tag}:{delta}".encode().ljust(value_size, b".")
        builder.append(delta, timestamp=ts, key=None, value=value, headers=[])
    built: bytearray = builder.build()
    return built


def records_in(data: bytes) -> list[tuple[int, int, bytes]]:
    """``(offset, timestamp, value)`` of every record in consecutive batches ``data``."""
    out: list[tuple[int, int, bytes]] = []
    pos = 0
    while pos < len(data):
        size = parse_header(data, pos).size
        batch = DefaultRecordBatch(bytes(data[pos : pos + size]))
        assert batch.validate_crc()
        out.extend((r.offset, r.timestamp, bytes(r.value)) for r in batch)
        pos += size
    return out


def batch_bases(data: bytes) -> list[int]:
    """Base offset of each batch in ``data``."""
    bases = []
    pos = 0
    while pos < len(data):
        header = parse_header(data, pos)
        bases.append(header.base_offset)
        pos += header.size
    assert pos == len(data), "the data must end at a batch boundary"
    return bases
