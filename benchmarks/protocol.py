"""Micro-benchmark of the hot-path codecs: Produce request decode and Fetch response encode.

Compares streamsource's compiled codec with kio (PyPI ``kio``, the Kafka schemas as Python
dataclasses with a native reader) on the same messages in the same run, and prints a table
of operations per second and the ratio. Run: ``.venv/bin/python benchmarks/protocol.py``.

Workloads: a Produce v9 request (flexible) and v7, with 1, 10 and 100 partitions of 1 KiB
record batches; a Fetch v12 and v11 response with the same shapes. kio has no Produce v0-2
or Fetch v0-3, so the legacy versions are measured for streamsource only.
"""

from __future__ import annotations

import datetime
import importlib
import io
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from streamsource.kafka.protocol import (
    FetchResponse,
    ProduceRequest,
    RequestHeader,
    decode_request,
    encode_request,
    encode_response,
    encode_response_chunks,
)

RECORDS = bytes(1024)


def ops_per_second(fn: Callable[[], Any], min_time: float = 0.3) -> float:
    """Best of 3 rounds of as many calls as fit in ``min_time`` seconds."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            break
        n *= 2
    best = elapsed
    for _ in range(2):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def produce_request(partitions: int) -> ProduceRequest:
    return ProduceRequest(
        acks=1,
        timeout_ms=30000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name="bench",
                partition_data=[
                    ProduceRequest.PartitionProduceData(index=i, records=RECORDS)
                    for i in range(partitions)
                ],
            )
        ],
    )


def fetch_response(partitions: int) -> FetchResponse:
    return FetchResponse(
        responses=[
            FetchResponse.FetchableTopicResponse(
                topic="bench",
                partitions=[
                    FetchResponse.PartitionData(
                        partition_index=i,
                        high_watermark=1000,
                        last_stable_offset=1000,
                        log_start_offset=0,
                        aborted_transactions=None,
                        records=RECORDS,
                    )
                    for i in range(partitions)
                ],
            )
        ]
    )


def kio_produce_reader(version: int) -> Callable[[bytes], Any] | None:
    try:
        from kio.serial import entity_reader

        schema = importlib.import_module(f"kio.schema.produce.v{version}.request")
    except ImportError:
        return None
    read_body = entity_reader(schema.ProduceRequest)
    read_header = entity_reader(schema.RequestHeader)

    def read(frame: bytes) -> Any:
        _header, size = read_header(frame, 0)
        return read_body(frame, size)

    return read


def kio_fetch_writer(version: int, partitions: int) -> Callable[[], Any] | None:
    try:
        from kio.schema.errors import ErrorCode as KioErrorCode
        from kio.serial import entity_writer

        schema = importlib.import_module(f"kio.schema.fetch.v{version}.response")
    except ImportError:
        return None
    write_body = entity_writer(schema.FetchResponse)
    write_header = entity_writer(schema.ResponseHeader)
    message = schema.FetchResponse(
        throttle_time=datetime.timedelta(0),
        error_code=KioErrorCode.none,
        session_id=0,
        responses=(
            schema.FetchableTopicResponse(
                topic="bench",
                partitions=tuple(
                    schema.PartitionData(
                        partition_index=i,
                        error_code=KioErrorCode.none,
                        high_watermark=1000,
                        last_stable_offset=1000,
                        log_start_offset=0,
                        aborted_transactions=None,
                        records=RECORDS,
                    )
                    for i in range(partitions)
                ),
            ),
        ),
    )
    header = schema.ResponseHeader(correlation_id=1)

    def write() -> bytes:
        buffer = io.BytesIO()
        write_header(buffer, header)
        write_body(buffer, message)
        return buffer.getvalue()

    return write


def main() -> None:
    rows: list[tuple[str, float, float | None]] = []
    for version in (9, 7, 2):
        for partitions in (1, 10, 100):
            frame = encode_request(
                RequestHeader(0, version, 1, "bench"), produce_request(partitions)
            )[4:]
            ours = ops_per_second(partial(decode_request, frame))
            reader = kio_produce_reader(version)
            theirs = ops_per_second(partial(reader, frame)) if reader else None
            rows.append((f"Produce v{version} decode, {partitions} x 1 KiB", ours, theirs))
    for version in (12, 11, 2):
        for partitions in (1, 10, 100):
            header = RequestHeader(1, version, 1, "bench")
            response = fetch_response(partitions)
            ours = ops_per_second(partial(encode_response, header, response))
            writer = kio_fetch_writer(version, partitions)
            theirs = ops_per_second(writer) if writer else None
            rows.append((f"Fetch v{version} encode, {partitions} x 1 KiB", ours, theirs))
            if partitions == 100:
                chunks = ops_per_second(partial(encode_response_chunks, header, response))
                rows.append((f"Fetch v{version} encode to chunks, 100 x 1 KiB", chunks, theirs))

    print(f"{'workload':<44} {'streamsource op/s':>18} {'kio op/s':>12} {'ratio':>8}")
    for name, ours, theirs in rows:
        if theirs is None:
            print(f"{name:<44} {ours:>18,.0f} {'n/a':>12} {'n/a':>8}")
        else:
            print(f"{name:<44} {ours:>18,.0f} {theirs:>12,.0f} {ours / theirs:>7.1f}x")


if __name__ == "__main__":
    main()
