"""The coordinator's durable state: a transaction the broker stopped in the middle of
ending is finished at start, pending offsets survive with it, and read_committed offset
fetches see UNSTABLE_OFFSET_COMMIT while a transaction holds an offset."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from deadline import wait_until
from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.broker.transactions import LOG_MAGIC
from streamsource.kafka.coordinator.transactions import decode_metadata, encode_metadata
from streamsource.kafka.protocol import (
    ErrorCode,
    RequestHeader,
    decode_response,
    encode_request,
)
from streamsource.kafka.protocol.messages.offsets import OffsetFetchRequest
from streamsource.kafka.protocol.messages.transactions import DescribeTransactionsRequest
from streamsource.kafka.storage import KeyedLog, RecordLog

TIMEOUT = 30.0


def wire_request(bootstrap: str, message: Any, version: int) -> Any:
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        header = RequestHeader(type(message).API_KEY, version, 1, "txn-test")
        sock.sendall(encode_request(header, message))
        (size,) = struct.unpack(">i", _recv(sock, 4))
        _, response = decode_response(type(message).API_KEY, version, _recv(sock, size))
    return response


def _recv(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "the broker closed the connection"
        data += chunk
    return bytes(data)


def offset_fetch(bootstrap: str, group: str, topic: str) -> tuple[int, int]:
    """(error code, offset) of partition 0 from OffsetFetch v7 with require_stable."""
    request = OffsetFetchRequest(
        group_id=group,
        topics=[OffsetFetchRequest.OffsetFetchRequestTopic(name=topic, partition_indexes=[0])],
        require_stable=True,
    )
    response = wire_request(bootstrap, request, 7)
    partition = response.topics[0].partitions[0]
    return partition.error_code, partition.committed_offset


def read_committed(bootstrap: str, topic: str) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"r-{time.monotonic_ns()}",
         "isolation.level": "read_committed", "enable.partition.eof": True},
    )  # fmt: skip
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is None:
                values.append(msg.value() or b"")  # every message here has a value
            elif error.code() == KafkaError._PARTITION_EOF:
                return values
    finally:
        consumer.close()
    raise AssertionError("did not reach the end of the partition")


def open_transaction_with_offsets(bootstrap: str) -> Producer:
    """A transaction holding three records on ``out`` and offset 7 of ``in`` for group g."""
    feeder = Producer({"bootstrap.servers": bootstrap})
    feeder.produce("in", value=b"input")
    assert feeder.flush(TIMEOUT) == 0
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "recovering"})
    producer.init_transactions(TIMEOUT)
    producer.begin_transaction()
    for i in range(3):
        producer.produce("out", value=f"v{i}".encode())
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "g"})
    try:
        producer.send_offsets_to_transaction(
            [TopicPartition("in", 0, 7)], consumer.consumer_group_metadata(), TIMEOUT
        )
    finally:
        consumer.close()
    assert producer.flush(TIMEOUT) == 0
    return producer


def test_offsets_held_by_an_open_transaction_are_unstable_until_it_commits(
    broker: EmbeddedBroker,
) -> None:
    producer = open_transaction_with_offsets(broker.bootstrap)
    assert offset_fetch(broker.bootstrap, "g", "in") == (ErrorCode.UNSTABLE_OFFSET_COMMIT, -1)
    producer.commit_transaction(TIMEOUT)
    assert offset_fetch(broker.bootstrap, "g", "in") == (ErrorCode.NONE, 7)


def test_a_transaction_left_in_prepare_commit_is_finished_at_start(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = broker_factory()
    open_transaction_with_offsets(broker.bootstrap)
    data_dir = Path(broker.data_dir)
    broker.stop()
    # what a crash right after the PrepareCommit record leaves: no markers, no offsets
    path = data_dir / "transactions" / "transactions.log"
    log = KeyedLog.open(path, LOG_MAGIC)
    (ongoing,) = [decode_metadata(p) for p in log.items().values()]
    assert ongoing.state == "Ongoing" and ongoing.pending_offsets
    prepared = encode_metadata(msgspec.structs.replace(ongoing, state="PrepareCommit"))
    asyncio.run(log.put("recovering", prepared))
    log.close()

    restarted = broker_factory(data_dir=data_dir)
    assert read_committed(restarted.bootstrap, "out") == [b"v0", b"v1", b"v2"]
    assert offset_fetch(restarted.bootstrap, "g", "in") == (ErrorCode.NONE, 7)
    described = wire_request(
        restarted.bootstrap, DescribeTransactionsRequest(transactional_ids=["recovering"]), 0
    )
    assert described.transaction_states[0].transaction_state == "CompleteCommit"


def test_an_open_transaction_survives_a_restart_and_can_still_commit(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = broker_factory()
    port = broker.port
    producer = open_transaction_with_offsets(broker.bootstrap)
    data_dir = Path(broker.data_dir)
    broker.stop()
    restarted = broker_factory(data_dir=data_dir, port=port)
    assert read_committed(restarted.bootstrap, "out") == []
    producer.commit_transaction(TIMEOUT)  # the same producer, reconnected
    assert read_committed(restarted.bootstrap, "out") == [b"v0", b"v1", b"v2"]
    assert offset_fetch(restarted.bootstrap, "g", "in") == (ErrorCode.NONE, 7)


def test_the_interval_flush_syncs_the_transaction_log(
    broker_factory: Callable[..., EmbeddedBroker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--fsync interval``: the transaction log is written without an fsync of its own,
    and the periodic flush that syncs the partitions' data syncs it too (a power failure
    then loses at most the interval, as for the data). Watched through the fsyncs this
    in-process broker makes."""
    real_fsync = os.fsync
    synced: set[int] = set()

    def watched(fd: int) -> None:
        synced.add(os.fstat(fd).st_ino)
        real_fsync(fd)

    broker = broker_factory(fsync="interval", flush_interval_ms=50)
    path = broker.data_dir / "transactions" / "transactions.log"
    monkeypatch.setattr(os, "fsync", watched)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "synced"})
    producer.init_transactions(TIMEOUT)
    producer.begin_transaction()
    producer.produce("synced", b"in a transaction", partition=0)
    producer.commit_transaction(TIMEOUT)
    wait_until(lambda: path.stat().st_ino in synced, timeout=10, what="an fsync of the txn log")


def test_a_commit_writes_its_log_records_and_markers_in_one_log_writer_job(
    broker_factory: Callable[..., EmbeddedBroker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """EndTxn under ``--fsync interval``: PrepareCommit, the markers and CompleteCommit
    are one job of the log writer thread, which hands the two records to the transaction
    log's thread itself: the event loop is not woken between them (it was twice)."""
    from_loop: list[str] = []
    submit_from_loop = RecordLog._submit_from_loop

    def watched(self: RecordLog, job: Any) -> Any:
        from_loop.append(self.path.name)
        return submit_from_loop(self, job)

    broker = broker_factory(fsync="interval")
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "one-job"})
    producer.init_transactions(TIMEOUT)
    producer.begin_transaction()
    producer.produce("one-job", b"committed", partition=0)
    assert producer.flush(TIMEOUT) == 0  # AddPartitionsToTxn and the produce are done
    monkeypatch.setattr(RecordLog, "_submit_from_loop", watched)
    producer.commit_transaction(TIMEOUT)
    monkeypatch.undo()
    assert "transactions.log" not in from_loop
    assert read_committed(broker.bootstrap, "one-job") == [b"committed"]
    described = wire_request(
        broker.bootstrap, DescribeTransactionsRequest(transactional_ids=["one-job"]), 0
    )
    assert described.transaction_states[0].transaction_state == "CompleteCommit"
    data_dir = Path(broker.data_dir)
    broker.stop()
    log = KeyedLog.open(data_dir / "transactions" / "transactions.log", LOG_MAGIC)
    assert [decode_metadata(p).state for p in log.items().values()] == ["CompleteCommit"]
    log.close()
