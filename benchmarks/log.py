"""Partition-log throughput against a raw file loop, measured in the same run.

    .venv/bin/python benchmarks/log.py [--quick] [--dir DIR]

The baseline writes the same batch bytes with one ``os.write`` per append call into a plain
file, and reads them back with ``os.pread`` of the same size: what Python's file I/O costs
here with no offsets, indexes or segments. The log rows go through ``PartitionLog.append`` /
``read`` (offset assignment, index entries, segment rolls at 64 MiB, bounded reads). Neither
side fsyncs (that is the disk, not the code). Figures: MB/s of batch bytes and batches/s,
with the ratio log/raw.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from streamsource.kafka.log import LogConfig, PartitionLog
from streamsource.kafka.records import Record, build_batch

NOW = 1_700_000_000_000


@dataclass(frozen=True)
class Workload:
    name: str
    records_per_batch: int
    value_size: int
    batches_per_append: int


WORKLOADS = [
    Workload("1 rec x 100 B, 1 batch/append", 1, 100, 1),
    Workload("100 rec x 100 B, 1 batch/append", 100, 100, 1),
    Workload("10 rec x 1 KiB, 8 batches/append", 10, 1024, 8),
]


def make_batch(records: int, value_size: int) -> bytes:
    value = b"x" * value_size
    return build_batch([Record(i, NOW + i, None, value) for i in range(records)])


def records_per_batch(batch: bytes) -> int:
    return int.from_bytes(batch[57:61], "big")


def bench_raw(
    directory: Path, batch: bytes, per_append: int, appends: int, read_bytes: int
) -> tuple[float, float]:
    path = directory / "raw.bin"
    chunk = batch * per_append
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        start = time.perf_counter()
        for _ in range(appends):
            os.write(fd, chunk)
        write_s = time.perf_counter() - start
        size = os.fstat(fd).st_size
        start = time.perf_counter()
        position = 0
        while position < size:
            position += len(os.pread(fd, read_bytes, position))
        read_s = time.perf_counter() - start
    finally:
        os.close(fd)
        path.unlink()
    return write_s, read_s


def bench_log(
    directory: Path, batch: bytes, per_append: int, appends: int, read_bytes: int
) -> tuple[float, float]:
    config = LogConfig(segment_bytes=64 * 1024 * 1024)
    log = PartitionLog.open(directory / "p0", config, now_ms=NOW)
    try:
        batches = [batch] * per_append
        start = time.perf_counter()
        for _ in range(appends):
            log.append(batches, now_ms=NOW)
        write_s = time.perf_counter() - start
        start = time.perf_counter()
        offset = 0
        end = log.log_end_offset
        records = records_per_batch(batch)
        while offset < end:
            data = log.read(offset, read_bytes)
            # every batch is the same: the next offset follows from the size (no parsing here,
            # so the figure is the log's, not this loop's)
            offset += len(data) // len(batch) * records
        read_s = time.perf_counter() - start
    finally:
        log.delete()
    return write_s, read_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the data")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    args = parser.parse_args()
    total_bytes = (20 if args.quick else 200) * 1024 * 1024
    read_bytes = 1024 * 1024
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="log-bench-") as tmp:
        directory = Path(tmp)
        header = (
            f"{'workload':36} {'op':6} {'raw MB/s':>10} {'log MB/s':>10} "
            f"{'log batches/s':>14} {'log/raw':>8}"
        )
        print(header)
        print("-" * len(header))
        for workload in WORKLOADS:
            batch = make_batch(workload.records_per_batch, workload.value_size)
            appends = max(1, total_bytes // (len(batch) * workload.batches_per_append))
            if workload.records_per_batch == 1:
                appends //= 4  # per-call overhead dominates; keep the run short
            volume = appends * workload.batches_per_append * len(batch)
            n_batches = appends * workload.batches_per_append
            raw = bench_raw(directory, batch, workload.batches_per_append, appends, read_bytes)
            got = bench_log(directory, batch, workload.batches_per_append, appends, read_bytes)
            for op, raw_s, log_s in (("append", raw[0], got[0]), ("read", raw[1], got[1])):
                raw_mbs = volume / raw_s / 1e6
                log_mbs = volume / log_s / 1e6
                print(
                    f"{workload.name:36} {op:6} {raw_mbs:10.1f} {log_mbs:10.1f} "
                    f"{n_batches / log_s:14,.0f} {raw_s / log_s:8.2f}"
                )


if __name__ == "__main__":
    main()
