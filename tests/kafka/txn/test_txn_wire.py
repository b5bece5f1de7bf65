"""Transactions on the wire, where clients would hide it: sequences stay enforced inside a
transaction, batches outside the transaction's partitions are refused, a zombie's batches
are fenced, and read_committed Fetch lists the aborted transactions of its range."""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.protocol import (
    ErrorCode,
    RequestHeader,
    decode_response,
    encode_request,
)
from streamsource.kafka.protocol.messages.fetch import FetchRequest
from streamsource.kafka.protocol.messages.produce import ProduceRequest
from streamsource.kafka.protocol.messages.producer_id import InitProducerIdRequest
from streamsource.kafka.protocol.messages.transactions import (
    AddPartitionsToTxnRequest,
    EndTxnRequest,
)
from streamsource.kafka.records import Record, build_batch, iter_batches

TIMEOUT = 30.0


class Wire:
    """One connection speaking raw requests."""

    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        self.correlation = 0

    def request(self, message: Any, version: int) -> Any:
        self.correlation += 1
        header = RequestHeader(type(message).API_KEY, version, self.correlation, "wire")
        self.sock.sendall(encode_request(header, message))
        (size,) = struct.unpack(">i", self._recv(4))
        _, response = decode_response(type(message).API_KEY, version, self._recv(size))
        return response

    def _recv(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "the broker closed the connection"
            data += chunk
        return bytes(data)

    def init(self, txn_id: str) -> tuple[int, int]:
        response = self.request(
            InitProducerIdRequest(transactional_id=txn_id, transaction_timeout_ms=60_000), 4
        )
        assert response.error_code == ErrorCode.NONE
        return response.producer_id, response.producer_epoch

    def add(self, txn_id: str, pid: int, epoch: int, topic: str, partition: int = 0) -> int:
        response = self.request(
            AddPartitionsToTxnRequest(
                transactional_id=txn_id,
                producer_id=pid,
                producer_epoch=epoch,
                topics=[
                    AddPartitionsToTxnRequest.AddPartitionsToTxnTopic(
                        name=topic, partitions=[partition]
                    )
                ],
            ),
            3,
        )
        return int(response.results[0].results[0].error_code)

    def produce(
        self, txn_id: str, topic: str, pid: int, epoch: int, seq: int, *values: bytes
    ) -> tuple[int, int]:
        now = int(time.time() * 1000)
        batch = build_batch(
            [Record(i, now, None, v) for i, v in enumerate(values)],
            producer_id=pid,
            producer_epoch=epoch,
            base_sequence=seq,
            transactional=True,
        )
        request = ProduceRequest(
            transactional_id=txn_id,
            acks=-1,
            timeout_ms=10_000,
            topic_data=[
                ProduceRequest.TopicProduceData(
                    name=topic,
                    partition_data=[ProduceRequest.PartitionProduceData(index=0, records=batch)],
                )
            ],
        )
        result = self.request(request, 9).responses[0].partition_responses[0]
        return result.error_code, result.base_offset

    def end(self, txn_id: str, pid: int, epoch: int, commit: bool, version: int = 3) -> int:
        response = self.request(
            EndTxnRequest(
                transactional_id=txn_id, producer_id=pid, producer_epoch=epoch, committed=commit
            ),
            version,
        )
        return int(response.error_code)

    def fetch_committed(self, topic: str, offset: int = 0) -> Any:
        request = FetchRequest(
            max_wait_ms=0,
            min_bytes=0,
            isolation_level=1,
            topics=[
                FetchRequest.FetchTopic(
                    topic=topic,
                    partitions=[
                        FetchRequest.FetchPartition(
                            partition=0, fetch_offset=offset, partition_max_bytes=1 << 20
                        )
                    ],
                )
            ],
        )
        return self.request(request, 11).responses[0].partitions[0]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def wire(broker: EmbeddedBroker) -> Any:
    # AddPartitionsToTxn needs existing topics (clients look them up, creating them, first)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    names = ["t-seq", "t-added", "t-other", "t-list"]
    for future in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        future.result(TIMEOUT)
    client = Wire(broker.bootstrap)
    yield client
    client.close()


def test_sequences_are_enforced_inside_a_transaction(wire: Wire) -> None:
    pid, epoch = wire.init("seq")
    assert wire.add("seq", pid, epoch, "t-seq") == ErrorCode.NONE
    assert wire.produce("seq", "t-seq", pid, epoch, 0, b"a", b"b") == (ErrorCode.NONE, 0)
    # a retry of the same batch is answered with its first offsets, not appended again
    assert wire.produce("seq", "t-seq", pid, epoch, 0, b"a", b"b") == (ErrorCode.NONE, 0)
    error, _ = wire.produce("seq", "t-seq", pid, epoch, 5, b"gap")
    assert error == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert wire.produce("seq", "t-seq", pid, epoch, 2, b"c") == (ErrorCode.NONE, 2)
    assert wire.end("seq", pid, epoch, commit=True) == ErrorCode.NONE
    data = wire.fetch_committed("t-seq")
    assert data.last_stable_offset == data.high_watermark == 4  # 3 records and the marker


def test_batches_outside_the_transaction_or_from_a_zombie_are_refused(wire: Wire) -> None:
    pid, epoch = wire.init("guard")
    wire.add("guard", pid, epoch, "t-added")
    error, _ = wire.produce("guard", "t-other", pid, epoch, 0, b"x")
    assert error == ErrorCode.INVALID_TXN_STATE  # never added: no marker would end it
    new_pid, new_epoch = wire.init("guard")  # a new incarnation fences the old one
    assert (new_pid, new_epoch) == (pid, epoch + 1)
    error, _ = wire.produce("guard", "t-added", pid, epoch, 0, b"zombie")
    assert error == ErrorCode.INVALID_PRODUCER_EPOCH
    # EndTxn v1 predates PRODUCER_FENCED: the zombie gets INVALID_PRODUCER_EPOCH there
    assert wire.end("guard", pid, epoch, commit=True, version=1) == ErrorCode.INVALID_PRODUCER_EPOCH
    assert wire.end("guard", pid, epoch, commit=True, version=3) == ErrorCode.PRODUCER_FENCED


def test_read_committed_fetch_lists_the_aborted_transactions(wire: Wire) -> None:
    pid, epoch = wire.init("lister")
    wire.add("lister", pid, epoch, "t-list")
    assert wire.produce("lister", "t-list", pid, epoch, 0, b"gone") == (ErrorCode.NONE, 0)
    assert wire.end("lister", pid, epoch, commit=False) == ErrorCode.NONE
    wire.add("lister", pid, epoch, "t-list")
    assert wire.produce("lister", "t-list", pid, epoch, 1, b"kept") == (ErrorCode.NONE, 2)
    # still open: read_committed stops before it
    data = wire.fetch_committed("t-list")
    assert (data.last_stable_offset, data.high_watermark) == (2, 3)
    assert [(a.producer_id, a.first_offset) for a in data.aborted_transactions] == [(pid, 0)]
    offsets = [h.base_offset for h, _ in iter_batches(data.records)]
    assert offsets == [0, 1]  # the aborted record and its marker; the client drops both
    assert wire.end("lister", pid, epoch, commit=True) == ErrorCode.NONE
    data = wire.fetch_committed("t-list")
    assert data.last_stable_offset == data.high_watermark == 4
    # read from past the aborted transaction: it is not listed
    assert wire.fetch_committed("t-list", offset=2).aborted_transactions == []
