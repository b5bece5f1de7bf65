"""Round trip with the project's own batch builder: compressed batches, keys, headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streamsource.kafka.log import LogConfig, PartitionLog
from streamsource.kafka.records import (
    Compression,
    Record,
    build_batch,
    check_batch,
    iter_batch_records,
    iter_batches,
)

NOW = 1_000_000


@pytest.mark.parametrize("codec", list(Compression))
def test_round_trip_of_compressed_batches(tmp_path: Path, codec: Compression) -> None:
    log = PartitionLog.open(tmp_path / "p", LogConfig(), now_ms=NOW)
    for b in range(3):
        records = [
            Record(
                i, 1_000 + 10 * b + i, f"k{i}".encode(), f"value {b}/{i}".encode(), [("h", b"x")]
            )
            for i in range(4)
        ]
        log.append([build_batch(records, compression=codec)], now_ms=NOW)
    data = log.read(0, 1 << 20)
    got: list[Any] = []
    for _, batch in iter_batches(data):
        check_batch(batch)  # CRC still valid after the offset patch
        got.extend(iter_batch_records(batch))
    assert [r.offset for r in got] == list(range(12))
    assert got[5].key == b"k1" and got[5].value == b"value 1/1"
    assert got[5].headers == [("h", b"x")]
    # the timestamp lookup reads the records of the (compressed) batch it lands in
    assert log.offset_for_timestamp(1_012) == (6, 1_012)
    log.close()
