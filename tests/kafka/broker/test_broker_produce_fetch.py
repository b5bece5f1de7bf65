"""Produce and Fetch semantics over the raw protocol: idempotence, long poll, fsync, offsets."""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable

from broker_wire import (
    WireClient,
    fetch_values,
    idempotent_batch,
    init_producer,
    produce_request,
    produced,
)

from deadline import wait_until
from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.protocol import ErrorCode, Message, ProduceResponse
from streamsource.kafka.protocol.messages.fetch import FetchRequest
from streamsource.kafka.protocol.messages.list_offsets import ListOffsetsRequest
from streamsource.kafka.records import Record, build_batch


def test_retried_batch_is_acknowledged_once_and_stored_once(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = broker_factory()
    with WireClient(broker.bootstrap) as client:
        pid, epoch = init_producer(client)
        first = idempotent_batch(pid, epoch, 0, b"a", b"b")
        second = idempotent_batch(pid, epoch, 2, b"c")
        assert produced(client, "idem", first) == (ErrorCode.NONE, 0)
        assert produced(client, "idem", first) == (ErrorCode.NONE, 0)  # retry: same offset
        assert produced(client, "idem", second) == (ErrorCode.NONE, 2)
        gap = idempotent_batch(pid, epoch, 7, b"skipped ahead")
        assert produced(client, "idem", gap)[0] == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert fetch_values(broker.bootstrap, "idem") == [b"a", b"b", b"c"]

    # producer state survives a restart: the retry after it is still recognised
    data_dir = broker.data_dir
    broker.stop()
    again = broker_factory(data_dir=data_dir)
    with WireClient(again.bootstrap) as client:
        assert produced(client, "idem", second) == (ErrorCode.NONE, 2)
        assert produced(client, "idem", idempotent_batch(pid, epoch, 3, b"d")) == (
            ErrorCode.NONE,
            3,
        )
        assert init_producer(client)[0] != pid  # ids are never handed out twice
    assert fetch_values(again.bootstrap, "idem") == [b"a", b"b", b"c", b"d"]


def fetch_request(topic: str, offset: int, max_wait_ms: int, min_bytes: int = 1) -> FetchRequest:
    return FetchRequest(
        max_wait_ms=max_wait_ms,
        min_bytes=min_bytes,
        max_bytes=1_000_000,
        isolation_level=1,
        topics=[
            FetchRequest.FetchTopic(
                topic=topic,
                partitions=[
                    FetchRequest.FetchPartition(
                        partition=0, fetch_offset=offset, partition_max_bytes=1_000_000
                    )
                ],
            )
        ],
    )


def test_long_poll_is_answered_by_an_append(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap, timeout=120) as producer:
        assert produced(producer, "poll", build_batch([Record(0, 1, None, b"first")]))[0] == 0
        result: list[object] = []

        def wait_for_data() -> None:
            with WireClient(broker.bootstrap, timeout=120) as consumer:
                # a one-minute wait: only an append can answer it before the test times out
                result.append(consumer.request(fetch_request("poll", 1, 60_000), 11))

        waiter = threading.Thread(target=wait_for_data)
        waiter.start()
        wait_until(
            lambda: any(p.waiting_fetches for p in broker.broker.topics.partitions()),
            what="the fetch to wait for data",
        )
        assert produced(producer, "poll", build_batch([Record(0, 2, None, b"second")]))[0] == 0
        waiter.join(timeout=60)
    (response,) = result
    data = response.responses[0].partitions[0]  # type: ignore[attr-defined]
    assert data.error_code == ErrorCode.NONE
    assert (data.high_watermark, data.last_stable_offset, data.aborted_transactions) == (2, 2, [])
    assert b"second" in bytes(data.records)


def test_fetch_out_of_range_and_sessionless_fetch(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        produced(client, "range", build_batch([Record(0, 1, None, b"x")]))
        response = client.request(fetch_request("range", 5, 0), 11)
        assert response.error_code == ErrorCode.NONE
        assert response.session_id == 0
        assert response.responses[0].partitions[0].error_code == ErrorCode.OFFSET_OUT_OF_RANGE
        unknown_session = fetch_request("range", 0, 0)
        unknown_session.session_id = 1234
        unknown_session.session_epoch = 1
        assert (
            client.request(unknown_session, 11).error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
        )


def test_list_offsets_earliest_latest_and_by_time(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        for ts in (1000, 2000, 3000):
            produced(client, "times", build_batch([Record(0, ts, None, b"at %d" % ts)]))

        def lookup(timestamp: int, version: int = 7) -> tuple[int, int]:
            request = ListOffsetsRequest(
                replica_id=-1,
                topics=[
                    ListOffsetsRequest.ListOffsetsTopic(
                        name="times",
                        partitions=[
                            ListOffsetsRequest.ListOffsetsPartition(
                                partition_index=0, timestamp=timestamp
                            )
                        ],
                    )
                ],
            )
            p = client.request(request, version).topics[0].partitions[0]
            assert p.error_code == ErrorCode.NONE
            return (p.old_style_offsets[0], -1) if version == 0 else (p.offset, p.timestamp)

        assert lookup(-2)[0] == 0
        assert lookup(-1)[0] == 3
        assert lookup(1500) == (1, 2000)
        assert lookup(3000) == (2, 3000)
        assert lookup(9999) == (-1, -1)
        assert lookup(-3) == (2, 3000)
        assert lookup(-1, version=0)[0] == 3
        assert lookup(-2, version=1)[0] == 0


def test_fsync_always_acks_all_from_many_producers(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    broker = broker_factory(fsync="always")
    errors: list[object] = []

    def producer(n: int) -> None:
        with WireClient(broker.bootstrap) as client:
            for i in range(20):
                code, _ = produced(
                    client, "synced", build_batch([Record(0, 1, None, b"%d-%d" % (n, i))])
                )
                if code != ErrorCode.NONE:
                    errors.append(code)

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    partition = broker.broker.topics.partition("synced", 0)
    assert partition is not None
    assert partition.log.flushed_offset == partition.high_watermark == 80
    assert sorted(v or b"" for v in fetch_values(broker.bootstrap, "synced")) == sorted(
        b"%d-%d" % (n, i) for n in range(4) for i in range(20)
    )


def test_pipelined_acks_all_under_fsync_always_answer_in_order(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    from streamsource.kafka.protocol import decode_response
    from streamsource.kafka.protocol.messages.api_versions import ApiVersionsRequest

    broker = broker_factory(fsync="always")
    with WireClient(broker.bootstrap) as client:
        sent = [
            client.send(produce_request("piped", build_batch([Record(0, 1, None, b"%d" % i)])), 9)
            for i in range(5)
        ]
        sent.append(client.send(ApiVersionsRequest(), 3))
        sent.append(
            client.send(
                produce_request("piped", build_batch([Record(0, 1, None, b"5")]), acks=1), 9
            )
        )
        frames = [client.recv_frame() for _ in sent]
    correlations = [struct.unpack_from(">i", f)[0] if f else None for f in frames]
    assert correlations == sent
    offsets = [
        base_offset(decode_response(0, 9, f)[1]) for i, f in enumerate(frames) if f and i != 5
    ]
    assert offsets == [0, 1, 2, 3, 4, 5]
    partition = broker.broker.topics.partition("piped", 0)
    assert partition is not None and partition.log.flushed_offset >= 5


def test_stop_answers_a_waiting_fetch_before_closing(broker: EmbeddedBroker) -> None:
    with WireClient(broker.bootstrap) as producer:
        produced(producer, "stopping", build_batch([Record(0, 1, None, b"only")]))
    result: list[object] = []

    def wait_for_data() -> None:
        with WireClient(broker.bootstrap, timeout=120) as consumer:
            result.append(consumer.request(fetch_request("stopping", 1, 60_000), 11))

    waiter = threading.Thread(target=wait_for_data)
    waiter.start()
    wait_until(
        lambda: any(p.waiting_fetches for p in broker.broker.topics.partitions()),
        what="the fetch to wait for data",
    )
    broker.stop()
    waiter.join(timeout=60)
    (response,) = result
    data = response.responses[0].partitions[0]  # type: ignore[attr-defined]
    assert (data.error_code, data.high_watermark, bytes(data.records)) == (ErrorCode.NONE, 1, b"")


def base_offset(response: Message) -> int:
    assert isinstance(response, ProduceResponse)
    return response.responses[0].partition_responses[0].base_offset


def test_produces_the_log_writer_answers_keep_their_place_among_other_answers(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    """Under ``--fsync interval`` the log writer writes a Produce's answer to the socket
    itself (``writer_lane``): pipelined with other requests, every answer still comes in
    request order, a Fetch sees the Produce requests before it (acks=0 too), and the
    interval flush covers what the writer appended."""
    from streamsource.kafka.protocol import decode_response
    from streamsource.kafka.protocol.messages.api_versions import ApiVersionsRequest

    broker = broker_factory(flush_interval_ms=20)

    def value(i: int) -> bytes:
        return build_batch([Record(0, 1, None, b"%d" % i)])

    with WireClient(broker.bootstrap) as client:
        sent = [client.send(produce_request("lane", value(i), acks=1), 9) for i in range(4)]
        client.send(produce_request("lane", value(4), acks=0), 9)  # answered by nothing
        fetch = client.send(fetch_request("lane", 0, 0), 11)
        sent += [fetch, client.send(ApiVersionsRequest(), 3)]
        sent.append(client.send(produce_request("lane", value(5)), 9))  # acks=all
        received = [client.recv_frame() for _ in sent]
    frames = [f for f in received if f is not None]
    assert [struct.unpack_from(">i", f)[0] for f in frames] == sent
    offsets = [base_offset(decode_response(0, 9, f)[1]) for f in frames[:4] + frames[-1:]]
    assert offsets == [0, 1, 2, 3, 5]
    _, fetched = decode_response(1, 11, frames[4])
    data = fetched.responses[0].partitions[0]  # type: ignore[attr-defined]
    assert data.high_watermark == 5  # the acks=0 produce included
    partition = broker.broker.topics.partition("lane", 0)
    assert partition is not None
    wait_until(lambda: partition.log.flushed_offset == 6, what="the interval flush")
