"""A consumer's one-partition Fetch of hot data is answered straight from its frame
(``handlers.quick_fetch``), with the very bytes the generic path answers.

The same request goes both ways on the wire: as librdkafka sends it, and with a tagged
field (a cluster id), which the quick path leaves to the generic decoder and handler. A
spy on ``answer_quickly`` says which way each one went.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from broker_wire import WireClient, batch_of, produce_request, produced
from confluent_kafka import Producer

from deadline import wait_until
from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.broker import app
from streamsource.kafka.broker.handlers import quick_fetch
from streamsource.kafka.protocol import RequestHeader, encode_request
from streamsource.kafka.protocol.messages.fetch import FetchRequest
from streamsource.observability import metrics, tracing

TOPIC = "quick"


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the quick path answered, per Fetch frame it was offered (set up before the
    broker starts: it binds the function then). With metrics or tracing on (another test
    of this process may have left them on) every request is observed the generic way."""
    monkeypatch.setattr(metrics, "INSTRUMENTS", None)
    monkeypatch.setattr(tracing, "TRACER", None)
    seen: list[bool] = []

    def spy(broker: Any, client: Any, frame: bytes | bytearray) -> list[Any] | None:
        rest = quick_fetch.answer_quickly(broker, client, frame)
        if frame[:2] == b"\x00\x01":
            seen.append(rest is not None)
        return rest

    monkeypatch.setattr(app, "answer_quickly", spy)
    return seen


def offered(answered: list[bool], count: int) -> list[bool]:
    """``answered`` once it holds ``count`` entries (the spy notes one after the answer is
    sent, so a client may read the answer first)."""
    wait_until(lambda: len(answered) >= count, what=f"{count} fetches offered")
    return answered


def fetch(offset: int, *, committed: bool = True, wait_ms: int = 0, **fields: Any) -> Any:
    return FetchRequest(
        max_wait_ms=wait_ms,
        min_bytes=fields.pop("min_bytes", 1),
        max_bytes=fields.pop("max_bytes", 52_428_800),
        isolation_level=1 if committed else 0,
        topics=[
            FetchRequest.FetchTopic(
                topic=TOPIC,
                partitions=[
                    FetchRequest.FetchPartition(
                        partition=0,
                        fetch_offset=offset,
                        partition_max_bytes=fields.pop("partition_max_bytes", 1_048_576),
                    )
                ],
            )
        ],
        **fields,
    )


def both_ways(client: WireClient, request: FetchRequest) -> tuple[bytes, bytes]:
    """The answer to ``request`` as sent, and to the same with a cluster id (generic)."""
    answers = []
    for cluster_id in (None, "any"):
        request.cluster_id = cluster_id
        client.send_raw(encode_request(RequestHeader(1, 12, 7, "rdkafka"), request))
        frame = client.recv_frame()
        assert frame is not None
        answers.append(frame)
    return answers[0], answers[1]


def quick_and_generic(client: WireClient, request: FetchRequest, answered: list[bool]) -> bytes:
    """The answer of ``both_ways``, equal, once the first went the quick way (a read finding the log's
    lock held by the writer or flusher thread goes the generic way, so it may take tries)."""
    for _ in range(100):
        offered_before = len(answered)
        quick, generic = both_ways(client, request)
        assert quick == generic
        went = offered(answered, offered_before + 2)[offered_before:]
        assert went[1] is False  # the tagged one: always the generic way
        if went[0]:
            return quick
    raise AssertionError("the quick path never answered")


def test_the_quick_answer_is_the_generic_answer(
    broker_factory: Callable[..., EmbeddedBroker], answered: list[bool]
) -> None:
    broker = broker_factory()
    with WireClient(broker.bootstrap) as client:
        for i in range(5):
            batch = batch_of(*(b"value-%d-%d" % (i, n) for n in range(100)))
            assert produced(client, TOPIC, batch)[0] == 0
        requests = [
            fetch(0),
            fetch(0, committed=False),
            fetch(250),  # inside a batch: from that batch's start
            fetch(200, partition_max_bytes=1),  # the first batch whole all the same
            fetch(0, max_bytes=3_000),
            fetch(500),  # the end, no wait: empty
            fetch(500, committed=False),
        ]
        for request in requests:
            answer = quick_and_generic(client, request, answered)
        assert len(answer) < 100  # (the last ones: no records)


def test_aborted_transactions_are_listed_by_the_generic_path(
    broker_factory: Callable[..., EmbeddedBroker], answered: list[bool]
) -> None:
    broker = broker_factory()
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "quick"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(TOPIC, b"aborted", partition=0)
    assert producer.flush(30) == 0  # written, then aborted
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(TOPIC, b"committed", partition=0)
    producer.commit_transaction(30)
    with WireClient(broker.bootstrap) as client:
        quick, generic = both_ways(client, fetch(0))
        assert quick == generic
        assert b"aborted" in quick and b"committed" in quick
        # an aborted transaction to list: not the quick way
        assert offered(answered, 2) == [False, False]
        assert b"aborted" in quick_and_generic(client, fetch(0, committed=False), answered)


def test_a_fetch_sees_the_produce_sent_before_it_on_its_connection(
    broker_factory: Callable[..., EmbeddedBroker], answered: list[bool]
) -> None:
    """acks=0: no answer to wait for, but the fetch behind it must see its records (the
    produce is still on the log writer's queue when the fetch is read)."""
    broker = broker_factory()
    with WireClient(broker.bootstrap) as client:
        assert produced(client, TOPIC, batch_of(b"first"))[0] == 0
        for n in range(50):
            # in one segment: the broker reads both frames at once
            produce = produce_request(TOPIC, batch_of(b"next-%d" % n), acks=0)
            client.send_raw(
                encode_request(RequestHeader(0, 9, 1, None), produce)
                + encode_request(RequestHeader(1, 12, 2, None), fetch(n + 1))
            )
            frame = client.recv_frame()
            assert frame is not None and b"next-%d" % n in frame


def test_a_long_poll_waits_for_the_append(
    broker_factory: Callable[..., EmbeddedBroker], answered: list[bool]
) -> None:
    broker = broker_factory()
    with WireClient(broker.bootstrap, timeout=120) as producer:
        assert produced(producer, TOPIC, batch_of(b"first"))[0] == 0
        frames: list[bytes | None] = []

        def poll() -> None:
            with WireClient(broker.bootstrap, timeout=120) as consumer:
                # a one-minute wait: only an append can answer it before the test times out
                consumer.send(fetch(1, wait_ms=60_000), 12)
                frames.append(consumer.recv_frame())

        waiter = threading.Thread(target=poll)
        waiter.start()
        wait_until(
            lambda: any(p.waiting_fetches for p in broker.broker.topics.partitions()),
            what="the fetch to wait for data",
        )
        assert produced(producer, TOPIC, batch_of(b"second"))[0] == 0
        waiter.join(timeout=60)
    (frame,) = frames
    assert frame is not None and b"second" in frame
    assert offered(answered, 1) == [False]  # nothing to send yet: the generic path waits


def test_a_long_poll_with_nothing_appended_ends_empty_at_its_deadline(
    broker_factory: Callable[..., EmbeddedBroker], answered: list[bool]
) -> None:
    broker = broker_factory()
    with WireClient(broker.bootstrap, timeout=60) as client:
        assert produced(client, TOPIC, batch_of(b"only"))[0] == 0
        for committed in (True, False):
            # 200 ms: the timer, not an append, ends it (the socket's timeout bounds a hang)
            quick, generic = both_ways(client, fetch(1, committed=committed, wait_ms=200))
            assert quick == generic
            assert b"only" not in quick
    assert offered(answered, 4) == [False] * 4
    assert not any(p.waiting_fetches for p in broker.broker.topics.partitions())
