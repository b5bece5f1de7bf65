"""Mutated and random frames sent to a running broker, each on its own connection.

Seeds are valid requests of every API and version the broker handles (our encoder's
output); each case mutates one (flipped bytes, truncated, a lying size prefix, another
API key or version, appended or random bytes) and sends it on a fresh connection. The
broker may answer, close that connection, or keep waiting for the rest of a frame; after
each case a real client (kafka-python) on its own connections still produces and consumes,
and at the end every message it was acknowledged is still there. The broker must log no
handler failure: a decode error costs one connection, never an unexpected exception.
"""

from __future__ import annotations

import logging
import random
import socket
import struct
import time

import pytest
from interop_support import unique_topic

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.broker.handlers import HANDLERS
from streamsource.kafka.protocol import (
    SUPPORTED_VERSIONS,
    ApiKey,
    FetchRequest,
    MetadataRequest,
    ProduceRequest,
    RequestHeader,
    encode_request,
    request_class,
)
from streamsource.kafka.records import Record, build_batch

pytestmark = pytest.mark.interop

SEED = 20261126
CASES = 400
TOPIC = "fuzzed"


def seed_frames() -> list[bytes]:
    """Valid request frames (size prefix included) for every handled API and version."""
    batch = build_batch([Record(i, 1_700_000_000_000 + i, b"k", b"v%d" % i) for i in range(3)])
    rich = {
        ProduceRequest.API_KEY: ProduceRequest(
            acks=1, timeout_ms=1000,
            topic_data=[ProduceRequest.TopicProduceData(
                name=TOPIC, partition_data=[ProduceRequest.PartitionProduceData(index=0, records=batch)],
            )],
        ),
        FetchRequest.API_KEY: FetchRequest(
            max_wait_ms=0, min_bytes=1,
            topics=[FetchRequest.FetchTopic(topic=TOPIC, partitions=[
                FetchRequest.FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=65536)
            ])],
        ),
        MetadataRequest.API_KEY: MetadataRequest(
            topics=[MetadataRequest.MetadataRequestTopic(name=TOPIC)]
        ),
    }  # fmt: skip
    frames = []
    for api_key in sorted(HANDLERS):
        low, high = SUPPORTED_VERSIONS[ApiKey(api_key)]
        for version in range(low, high + 1):
            message = rich.get(api_key) or request_class(api_key)()
            header = RequestHeader(api_key, version, version + 1, "fuzz")
            try:
                frames.append(encode_request(header, message))
            except Exception:  # a rich message may not fit an old version; use the empty one
                frames.append(encode_request(header, request_class(api_key)()))
    return frames


def mutate(rng: random.Random, frames: list[bytes]) -> bytes:
    """One hostile frame derived from a valid one (or plain random bytes)."""
    frame = bytearray(rng.choice(frames))
    body = frame[4:]
    kind = rng.randrange(8)
    if kind == 0:  # flip a few bytes of the body, size prefix kept right
        for _ in range(rng.randint(1, 8)):
            body[rng.randrange(len(body))] = rng.randrange(256)
    elif kind == 1:  # truncated: the prefix promises more than is sent
        return bytes(frame[: rng.randrange(1, len(frame))])
    elif kind == 2:  # a lying size prefix: huge, negative, zero or slightly off
        size = rng.choice([0, -1, -(2**31), 2**31 - 1, 200 * 1024 * 1024, len(body) + 1])
        return struct.pack(">i", size) + bytes(body)
    elif kind == 3:  # another API key or version
        struct.pack_into(">hh", body, 0, rng.randrange(-5, 80), rng.randrange(-3, 30))
    elif kind == 4:  # trailing garbage inside the frame
        body += rng.randbytes(rng.randint(1, 64))
    elif kind == 5:  # cut short inside the frame, prefix adjusted
        body = body[: rng.randrange(8, max(9, len(body)))]
    elif kind == 6:  # nothing but random bytes with a right prefix
        body = bytearray(rng.randbytes(rng.randint(0, 256)))
    else:  # a valid frame followed by a mutated one on the same connection
        return bytes(frame) + mutate(rng, frames)
    return struct.pack(">i", len(body)) + bytes(body)


def send_hostile(bootstrap: str, data: bytes) -> None:
    """Send ``data`` on a new connection, read what comes back for a moment, close."""
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.settimeout(0.5)
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
        except (TimeoutError, ConnectionError):
            pass  # still waiting for the rest of a frame, or closed on us: both are fine


def test_broker_survives_hostile_frames(
    broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="streamsource")
    topic = unique_topic("fuzz-good")
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=0)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest")
    tp = TopicPartition(topic, 0)
    rng = random.Random(SEED)
    frames = seed_frames()
    acknowledged: list[bytes] = []
    try:
        producer.send(topic, b"warm-up").get(timeout=30)
        consumer.assign([tp])
        consumer.seek(tp, 1)
        for case in range(CASES):
            send_hostile(broker.bootstrap, mutate(rng, frames))
            value = b"after-case-%d" % case
            producer.send(topic, value).get(timeout=30)
            acknowledged.append(value)
            assert _next_value(consumer) == value, f"the good client lost its way after case {case}"
    finally:
        producer.close(timeout=10)
        consumer.close()

    reader = KafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest")
    try:
        reader.assign([tp])
        stored = [_next_value(reader) for _ in range(len(acknowledged) + 1)]
    finally:
        reader.close()
    assert stored == [b"warm-up", *acknowledged]
    failures = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("streamsource") and r.levelno >= logging.ERROR
    ]
    assert failures == [], "the broker failed on hostile input:\n" + "\n".join(failures[:5])


def _next_value(consumer: KafkaConsumer, timeout: float = 30) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200, max_records=1).values():
            return bytes(records[0].value)
    raise AssertionError("no record within the timeout")
