"""A minimal blocking Kafka client over a raw socket, for tests that send exact bytes.

Real clients hide what goes on the wire; these tests need to send truncated frames, bad
CRCs and unknown versions, and to see exactly what the broker answers (or that it closed
the connection).
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

from streamsource.kafka.protocol import ErrorCode, RequestHeader, decode_response, encode_request
from streamsource.kafka.protocol.messages.fetch import FetchRequest
from streamsource.kafka.protocol.messages.produce import ProduceRequest
from streamsource.kafka.protocol.messages.producer_id import InitProducerIdRequest
from streamsource.kafka.records import Record, build_batch, iter_batch_records, iter_batches


class WireClient:
    """One TCP connection to the broker speaking raw frames."""

    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self._correlation = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_frame(self) -> bytes | None:
        """The next response frame (size prefix stripped); None if the broker closed."""
        head = self._recv_exactly(4)
        if head is None:
            return None
        (size,) = struct.unpack(">i", head)
        body = self._recv_exactly(size)
        if body is None:
            raise AssertionError("the broker closed the connection mid-response")
        return body

    def is_closed_by_broker(self) -> bool:
        """True once the broker has closed this connection (reads EOF or a reset)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def request(self, message: Any, version: int, client_id: str | None = "wire-test") -> Any:
        """Send ``message`` at ``version`` and decode the broker's response."""
        self.send(message, version, client_id)
        frame = self.recv_frame()
        assert frame is not None, "the broker closed the connection instead of answering"
        correlation_id, response = decode_response(type(message).API_KEY, version, frame)
        assert correlation_id == self._correlation
        return response

    def send(self, message: Any, version: int, client_id: str | None = "wire-test") -> int:
        self._correlation += 1
        header = RequestHeader(type(message).API_KEY, version, self._correlation, client_id)
        self.send_raw(encode_request(header, message))
        return self._correlation

    def _recv_exactly(self, n: int) -> bytes | None:
        chunks = bytearray()
        while len(chunks) < n:
            try:
                chunk = self.sock.recv(n - len(chunks))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if chunks:
                    raise AssertionError("connection closed in the middle of a frame")
                return None
            chunks += chunk
        return bytes(chunks)


def batch_of(*values: bytes, key: bytes | None = None) -> bytes:
    """A valid v2 batch holding ``values`` (same key), timestamped now."""
    now = int(time.time() * 1000)
    return build_batch([Record(i, now, key, v) for i, v in enumerate(values)])


def produce_request(
    topic: str, records: bytes, partition: int = 0, acks: int = -1
) -> ProduceRequest:
    """A Produce request carrying ``records`` for one partition."""
    return ProduceRequest(
        acks=acks,
        timeout_ms=10_000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name=topic,
                partition_data=[
                    ProduceRequest.PartitionProduceData(index=partition, records=records)
                ],
            )
        ],
    )


def fetch_values(bootstrap: str, topic: str, partition: int = 0) -> list[bytes | None]:
    """Every value stored in the partition, read with a Fetch v11 from offset 0."""
    request = FetchRequest(
        max_wait_ms=0,
        min_bytes=0,
        max_bytes=10_000_000,
        topics=[
            FetchRequest.FetchTopic(
                topic=topic,
                partitions=[
                    FetchRequest.FetchPartition(
                        partition=partition, fetch_offset=0, partition_max_bytes=10_000_000
                    )
                ],
            )
        ],
    )
    with WireClient(bootstrap) as client:
        response = client.request(request, 11)
    data = response.responses[0].partitions[0]
    assert data.error_code == ErrorCode.NONE
    return [r.value for _, batch in iter_batches(data.records) for r in iter_batch_records(batch)]


def idempotent_batch(producer_id: int, epoch: int, sequence: int, *values: bytes) -> bytes:
    now = int(time.time() * 1000)
    return build_batch(
        [Record(i, now, None, v) for i, v in enumerate(values)],
        producer_id=producer_id,
        producer_epoch=epoch,
        base_sequence=sequence,
    )


def init_producer(client: WireClient) -> tuple[int, int]:
    response = client.request(
        InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60_000), 4
    )
    assert response.error_code == ErrorCode.NONE
    return response.producer_id, response.producer_epoch


def produced(client: WireClient, topic: str, batch: bytes) -> tuple[int, int]:
    response = client.request(produce_request(topic, batch), 9)
    result = response.responses[0].partition_responses[0]
    return result.error_code, result.base_offset
