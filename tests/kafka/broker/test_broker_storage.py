"""The broker's storage seen from the wire: a full disk, a stalled disk, ListOffsets -3.

A full disk is a real one: a small tmpfs mounted under the test's directory and filled up
with a file, so every write path (produce, topic creation, committed offsets, producer ids
and snapshots, the transaction log, the log cleaner, topic configs) meets a true ENOSPC. Each answers its API's error code on an open
connection, keeps everything it acknowledged before, serves reads meanwhile, and works
again once the file is removed. A stalled disk (fsync held) shows that a commit waiting
for the disk holds up its own connection only.
"""

from __future__ import annotations

import errno
import os
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from broker_wire import (
    WireClient,
    batch_of,
    fetch_values,
    idempotent_batch,
    init_producer,
    produced,
)
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.log import LogConfig
from streamsource.kafka.protocol import ErrorCode
from streamsource.kafka.protocol.messages.api_versions import ApiVersionsRequest
from streamsource.kafka.protocol.messages.list_offsets import ListOffsetsRequest
from streamsource.kafka.protocol.messages.metadata import MetadataRequest
from streamsource.kafka.protocol.messages.offsets import (
    OffsetCommitRequest,
    OffsetFetchRequest,
)
from streamsource.kafka.protocol.messages.producer_id import InitProducerIdRequest
from streamsource.kafka.protocol.messages.transactions import (
    AddPartitionsToTxnRequest,
    DescribeTransactionsRequest,
)
from streamsource.kafka.records import Record, build_batch

BIG = b"x" * 64 * 1024  # a value that needs fresh pages on any filesystem

Factory = Callable[..., EmbeddedBroker]


# -- a real full disk ------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs mounted for this test only (needs root, as CI runs)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], check=True, timeout=30
    )
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False, timeout=30)


class Filler:
    """Takes every free byte of a disk, and gives it back."""

    def __init__(self, disk: Path) -> None:
        self.path = disk / "filler"

    def fill(self) -> None:
        chunk = b"\0" * (1 << 20)
        with open(self.path, "ab", buffering=0) as f:
            while chunk:
                try:
                    f.write(chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    chunk = chunk[: len(chunk) // 2]

    def free(self) -> None:
        self.path.unlink()


@pytest.fixture
def full_disk(small_disk: Path, broker_factory: Factory) -> tuple[Factory, Filler, Path]:
    """(start a broker on the small disk, its filler, the data dir)."""
    data = small_disk / "data"

    def start(**overrides: object) -> EmbeddedBroker:
        return broker_factory(data_dir=data, **overrides)

    return start, Filler(small_disk), data


def test_produce_on_a_full_disk_answers_storage_error_then_recovers(
    full_disk: tuple[Factory, Filler, Path],
) -> None:
    start, filler, _data = full_disk
    broker = start()
    acked = [b"before-1", b"before-2"]
    with WireClient(broker.bootstrap) as client:
        for value in acked:
            assert produced(client, "t", batch_of(value))[0] == ErrorCode.NONE
        filler.fill()
        code, _ = produced(client, "t", batch_of(BIG))
        assert code == ErrorCode.KAFKA_STORAGE_ERROR  # retriable: clients try again
        assert fetch_values(broker.bootstrap, "t") == acked  # reads go on
        filler.free()
        assert produced(client, "t", batch_of(b"after"))[0] == ErrorCode.NONE
    acked.append(b"after")
    assert fetch_values(broker.bootstrap, "t") == acked
    broker.stop()
    assert fetch_values(start().bootstrap, "t") == acked


def test_topic_creation_on_a_full_disk_leaves_no_half_made_topic(
    full_disk: tuple[Factory, Filler, Path],
) -> None:
    start, filler, _ = full_disk
    broker = start()
    filler.fill()
    with WireClient(broker.bootstrap) as client:
        assert produced(client, "new", batch_of(b"v"))[0] == ErrorCode.KAFKA_STORAGE_ERROR
        listed = client.request(MetadataRequest(topics=None), 9)
        assert [t.name for t in listed.topics] == []
        filler.free()
        assert produced(client, "new", batch_of(b"v"))[0] == ErrorCode.NONE
    assert fetch_values(broker.bootstrap, "new") == [b"v"]


def _commit(client: WireClient, offset: int, metadata: str = "", partitions: int = 1) -> list[int]:
    request = OffsetCommitRequest(
        group_id="g",
        generation_id=-1,
        member_id="",
        topics=[
            OffsetCommitRequest.OffsetCommitRequestTopic(
                name="t",
                partitions=[
                    OffsetCommitRequest.OffsetCommitRequestPartition(
                        partition_index=i, committed_offset=offset, committed_metadata=metadata
                    )
                    for i in range(partitions)
                ],
            )
        ],
    )
    response = client.request(request, 2)
    return [p.error_code for t in response.topics for p in t.partitions]


def _committed(client: WireClient) -> int:
    request = OffsetFetchRequest(
        group_id="g",
        topics=[OffsetFetchRequest.OffsetFetchRequestTopic(name="t", partition_indexes=[0])],
    )
    response = client.request(request, 2)
    return int(response.topics[0].partitions[0].committed_offset)


def test_offset_commit_on_a_full_disk_is_refused_and_nothing_acknowledged_is_lost(
    full_disk: tuple[Factory, Filler, Path],
) -> None:
    start, filler, _data = full_disk
    broker = start(default_partitions=4)
    big = "m" * 4000  # four of them need fresh pages of the offsets file
    with WireClient(broker.bootstrap) as client:
        assert produced(client, "t", batch_of(b"v"))[0] == ErrorCode.NONE
        assert _commit(client, 1) == [ErrorCode.NONE]
        filler.fill()
        assert _commit(client, 2, big, partitions=4) == [ErrorCode.NOT_COORDINATOR] * 4
        assert _committed(client) == 1
        filler.free()
        assert _commit(client, 3, big, partitions=4) == [ErrorCode.NONE] * 4
    broker.stop()
    with WireClient(start().bootstrap) as client:
        assert _committed(client) == 3


def test_producer_ids_on_a_full_disk_are_not_handed_out(
    full_disk: tuple[Factory, Filler, Path],
) -> None:
    start, filler, _data = full_disk
    broker = start()
    filler.fill()
    request = InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60_000)
    with WireClient(broker.bootstrap) as client:
        refused = client.request(request, 4)
        assert refused.error_code == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS  # retried
        assert refused.producer_id == -1
        filler.free()
        first = client.request(request, 4)
        assert first.error_code == ErrorCode.NONE
    broker.stop()
    with WireClient(start().bootstrap) as client:
        assert client.request(request, 4).producer_id > first.producer_id


def test_a_producer_snapshot_lost_to_a_full_disk_is_rebuilt_from_the_log(
    full_disk: tuple[Factory, Filler, Path],
) -> None:
    start, filler, data = full_disk
    broker = start()
    with WireClient(broker.bootstrap) as client:
        pid, epoch = init_producer(client)
        batch = idempotent_batch(pid, epoch, 0, b"once")
        assert produced(client, "t", batch) == (ErrorCode.NONE, 0)
    filler.fill()
    broker.stop()  # the shutdown snapshot cannot be written
    assert not (data / "logs" / "t-0" / "producer.snapshot").exists()
    filler.free()
    restarted = start()
    with WireClient(restarted.bootstrap) as client:
        assert produced(client, "t", batch) == (ErrorCode.NONE, 0)  # a duplicate, not a copy
        assert produced(client, "t", idempotent_batch(pid, epoch, 1, b"next"))[1] == 1
    assert fetch_values(restarted.bootstrap, "t") == [b"once", b"next"]


# -- a stalled disk holds up one connection, not the event loop -------------------------------


class StalledFsync:
    """``os.fsync`` that blocks until released (a disk that takes its time)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        real = os.fsync

        def fsync(fd: int) -> None:
            self.entered.set()
            self.release.wait(timeout=60)  # bounded even if the test fails to release
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)


def _readable(client: WireClient) -> bool:
    return bool(select.select([client.sock], [], [], 0)[0])


def test_a_commit_waiting_for_the_disk_holds_up_only_its_own_connection(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    with WireClient(broker.bootstrap) as other:
        assert produced(other, "t", batch_of(b"v"))[0] == ErrorCode.NONE
    stalled = StalledFsync(monkeypatch)
    try:
        with WireClient(broker.bootstrap) as committer, WireClient(broker.bootstrap) as other:
            committer.send(
                OffsetCommitRequest(
                    group_id="g",
                    generation_id=-1,
                    member_id="",
                    topics=[
                        OffsetCommitRequest.OffsetCommitRequestTopic(
                            name="t",
                            partitions=[
                                OffsetCommitRequest.OffsetCommitRequestPartition(
                                    partition_index=0, committed_offset=1, committed_metadata=""
                                )
                            ],
                        )
                    ],
                ),
                2,
            )
            assert stalled.entered.wait(timeout=30), "the commit never reached the disk"
            # the event loop serves everyone else while the commit waits for its fsync
            assert other.request(ApiVersionsRequest(), 3).error_code == ErrorCode.NONE
            assert [t.name for t in other.request(MetadataRequest(topics=None), 9).topics] == ["t"]
            assert produced(other, "t", batch_of(b"w"))[0] == ErrorCode.NONE
            assert fetch_values(broker.bootstrap, "t") == [b"v", b"w"]
            assert not _readable(committer)  # not answered before it is durable
            stalled.release.set()
            frame = committer.recv_frame()
            assert frame is not None
    finally:
        stalled.release.set()
    with WireClient(broker.bootstrap) as client:
        assert _committed(client) == 1


# -- ListOffsets -3 ---------------------------------------------------------------------------


def test_list_offsets_max_timestamp_answers_the_records_offset(
    broker_factory: Factory,
) -> None:
    broker = broker_factory(log_defaults=LogConfig(segment_bytes=200))
    base = int(time.time() * 1000)
    # the largest timestamp is carried by the third record of the second batch (offset 5);
    # small segments spread the batches over several files
    batches = [
        [base + 1, base + 2, base + 3],
        [base + 4, base + 5, base + 900, base + 6],
        [base + 7, base + 8],
    ]
    with WireClient(broker.bootstrap) as client:
        for stamps in batches:
            batch = build_batch([Record(i, ts, None, b"v") for i, ts in enumerate(stamps)])
            assert produced(client, "ts", batch)[0] == ErrorCode.NONE

        def list_offset(timestamp: int) -> tuple[int, int]:
            request = ListOffsetsRequest(
                replica_id=-1,
                topics=[
                    ListOffsetsRequest.ListOffsetsTopic(
                        name="ts",
                        partitions=[
                            ListOffsetsRequest.ListOffsetsPartition(
                                partition_index=0, timestamp=timestamp
                            )
                        ],
                    )
                ],
            )
            found = client.request(request, 7).topics[0].partitions[0]
            assert found.error_code == ErrorCode.NONE
            return int(found.offset), int(found.timestamp)

        assert list_offset(-3) == (5, base + 900)
        assert list_offset(base + 5) == (4, base + 5)  # first record at or after a time
        assert list_offset(-1)[0] == 9


def test_list_offsets_max_timestamp_of_an_empty_partition(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="e")]), 9)
        request = ListOffsetsRequest(
            replica_id=-1,
            topics=[
                ListOffsetsRequest.ListOffsetsTopic(
                    name="e",
                    partitions=[
                        ListOffsetsRequest.ListOffsetsPartition(partition_index=0, timestamp=-3)
                    ],
                )
            ],
        )
        found = client.request(request, 7).topics[0].partitions[0]
    assert (found.error_code, found.offset, found.timestamp) == (ErrorCode.NONE, -1, -1)


def test_cleaning_and_config_changes_on_a_full_disk_lose_nothing(
    full_disk: tuple[Factory, Filler, Path],
) -> None:
    start, filler, _ = full_disk
    broker = start(log_cleaner_enable=False)  # cleaned when the test says so
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    created = admin.create_topics(
        [NewTopic("prices", 1, 1, config={"cleanup.policy": "compact", "segment.bytes": "512"})]
    )
    created["prices"].result(timeout=30)
    with WireClient(broker.bootstrap) as client:
        for i in range(30):
            for key in (b"apple", b"pear"):
                batch = batch_of(key + b"%d" % i, key=key)
                assert produced(client, "prices", batch)[0] == ErrorCode.NONE
    everything = fetch_values(broker.bootstrap, "prices")
    filler.fill()
    assert broker.call(lambda b: b.clean_logs(force=True), 60) == 0  # could not write
    assert fetch_values(broker.bootstrap, "prices") == everything
    altered = admin.incremental_alter_configs(
        [
            ConfigResource(
                "topic",
                "prices",
                incremental_configs=[
                    ConfigEntry(
                        "retention.ms",
                        "1000",
                        incremental_operation=AlterConfigOpType.SET,
                    )
                ],
            )
        ]
    )
    with pytest.raises(KafkaException) as refused:
        next(iter(altered.values())).result(timeout=30)
    assert refused.value.args[0].code() == ErrorCode.KAFKA_STORAGE_ERROR
    described = admin.describe_configs([ConfigResource("topic", "prices")])
    configs = next(iter(described.values())).result(timeout=30)
    assert configs["retention.ms"].is_default  # the change was not kept
    filler.free()
    assert broker.call(lambda b: b.clean_logs(force=True), 60) > 0
    compacted = fetch_values(broker.bootstrap, "prices")
    assert compacted[-2:] == everything[-2:]  # the latest of each key is kept
    assert len(compacted) < len(everything)


def test_transaction_state_on_a_full_disk_is_not_changed(
    full_disk: tuple[Factory, Filler, Path],
) -> None:
    start, filler, _ = full_disk
    broker = start()
    txn_id = "t" * 8000  # each transaction log record then needs fresh pages
    with WireClient(broker.bootstrap) as client:
        assert produced(client, "t", batch_of(b"v"))[0] == ErrorCode.NONE
        init = client.request(
            InitProducerIdRequest(transactional_id=txn_id, transaction_timeout_ms=60_000), 4
        )
        assert init.error_code == ErrorCode.NONE
        add = AddPartitionsToTxnRequest(
            transactional_id=txn_id,
            producer_id=init.producer_id,
            producer_epoch=init.producer_epoch,
            topics=[AddPartitionsToTxnRequest.AddPartitionsToTxnTopic(name="t", partitions=[0])],
        )

        def added() -> int:
            response = client.request(add, 1)
            return int(response.results[0].results[0].error_code)

        def state() -> str:
            described = client.request(DescribeTransactionsRequest(transactional_ids=[txn_id]), 0)
            return str(described.transaction_states[0].transaction_state)

        filler.fill()
        assert added() == ErrorCode.KAFKA_STORAGE_ERROR
        assert state() == "Empty"
        filler.free()
        assert added() == ErrorCode.NONE
        assert state() == "Ongoing"
    broker.stop()
    with WireClient(start().bootstrap) as client:
        described = client.request(DescribeTransactionsRequest(transactional_ids=[txn_id]), 0)
        (found,) = described.transaction_states
        assert found.transaction_state == "Ongoing"
        assert [(t.topic, t.partitions) for t in found.topics] == [("t", [0])]
