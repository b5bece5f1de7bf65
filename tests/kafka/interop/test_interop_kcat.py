"""kcat (Debian: kcat 1.7.1 on librdkafka 2.0.2) against the broker, as a subprocess.

librdkafka 2.0.2 mis-parses tagged fields that carry default values, so these tests are
also the check that the broker never writes them. kcat reads with read_committed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from interop_support import CODECS, numbered, require_tool, unique_topic

from streamsource.kafka import EmbeddedBroker
from streamsource.kafka.broker.process import BrokerProcess

pytestmark = pytest.mark.interop


def kcat(bootstrap: str, *args: str, stdin: str = "", timeout: float = 60) -> str:
    """Run kcat against ``bootstrap``; returns its stdout, fails with its stderr."""
    binary = require_tool("kcat")
    result = subprocess.run(
        [binary, "-b", bootstrap, "-X", "topic.metadata.refresh.interval.ms=1000", *args],
        input=stdin.encode(), capture_output=True, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, f"kcat {args} failed:\n{result.stderr.decode()}"
    return result.stdout.decode()


def kcat_produce(bootstrap: str, topic: str, lines: list[str], *extra: str) -> None:
    """One message per line, ``key:value`` (kcat -K:)."""
    kcat(bootstrap, "-P", "-t", topic, "-K:", *extra, stdin="".join(f"{x}\n" for x in lines))


def kcat_consume(bootstrap: str, topic: str, *extra: str) -> list[dict[str, Any]]:
    """Every message from the start (or as ``extra`` says) as kcat's JSON envelopes."""
    out = kcat(bootstrap, "-C", "-t", topic, "-e", "-J", *extra)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def as_lines(messages: list[tuple[bytes, bytes]]) -> list[str]:
    return [f"{k.decode()}:{v.decode()}" for k, v in messages]


@pytest.mark.parametrize("codec", ["none", *CODECS])
def test_produce_consume_keys_with_codec(broker: EmbeddedBroker, codec: str) -> None:
    topic = unique_topic(f"kcat-{codec}")
    messages = numbered(100)
    kcat_produce(broker.bootstrap, topic, as_lines(messages), "-z", codec)
    got = kcat_consume(broker.bootstrap, topic, "-o", "beginning")
    assert [(m["key"], m["payload"]) for m in got] == [
        (k.decode(), v.decode()) for k, v in messages
    ]
    assert [m["offset"] for m in got] == list(range(100))


def test_headers(broker: EmbeddedBroker) -> None:
    topic = unique_topic("kcat-headers")
    kcat_produce(broker.bootstrap, topic, ["k:v"], "-H", "source=kcat", "-H", "trace=abc")
    (message,) = kcat_consume(broker.bootstrap, topic)
    assert message["headers"] == ["source", "kcat", "trace", "abc"]


def test_idempotent_producer(broker: EmbeddedBroker) -> None:
    topic = unique_topic("kcat-idempotent")
    messages = numbered(500)
    kcat_produce(
        broker.bootstrap, topic, as_lines(messages), "-X", "enable.idempotence=true",
        "-X", "batch.num.messages=50",
    )  # fmt: skip
    got = kcat_consume(broker.bootstrap, topic)
    assert [m["payload"] for m in got] == [v.decode() for _, v in messages]


def test_metadata_lists_topics_and_partitions(broker: EmbeddedBroker) -> None:
    topic = unique_topic("kcat-meta")
    kcat_produce(broker.bootstrap, topic, ["k:v"])
    metadata = json.loads(kcat(broker.bootstrap, "-L", "-J"))
    topics = {t["topic"]: t for t in metadata["topics"]}
    assert len(topics[topic]["partitions"]) == 1
    assert [b["id"] for b in metadata["brokers"]] == [0]


def test_offsets_beginning_end_relative_and_by_time(broker: EmbeddedBroker) -> None:
    topic = unique_topic("kcat-offsets")
    for i in range(6):  # kcat -P stamps wall-clock time: one call per message spreads them
        kcat_produce(broker.bootstrap, topic, [f"k:v{i}"], "-p", "0")
    stamps = [m["ts"] for m in kcat_consume(broker.bootstrap, topic, "-o", "beginning")]
    assert len(stamps) == 6 and stamps == sorted(stamps)

    tail = kcat_consume(broker.bootstrap, topic, "-o", "-2")  # the last two
    assert [m["payload"] for m in tail] == ["v4", "v5"]
    assert kcat_consume(broker.bootstrap, topic, "-o", "end") == []
    first_at = stamps.index(stamps[3])  # the first message stamped at or after stamps[3]
    from_time = kcat_consume(broker.bootstrap, topic, "-o", f"s@{stamps[3]}")
    assert [m["offset"] for m in from_time] == list(range(first_at, 6))
    # -Q: the offset of the first message at or after a timestamp; none after the last
    answer = kcat(broker.bootstrap, "-Q", "-t", f"{topic}:0:{stamps[3]}")
    assert f"{topic} [0] offset {first_at}" in answer
    after_last = kcat(broker.bootstrap, "-Q", "-t", f"{topic}:0:{stamps[-1] + 60_000}")
    assert f"{topic} [0] offset -1" in after_last


def test_consumer_group_commits_and_resumes(broker: EmbeddedBroker) -> None:
    topic = unique_topic("kcat-group")
    group = unique_topic("group")
    kcat_produce(broker.bootstrap, topic, as_lines(numbered(10)))
    first = kcat(broker.bootstrap, "-G", group, "-e", "-o", "beginning", "-f", "%s\\n", "-X",
                 "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100", topic)  # fmt: skip
    assert first.split() == [v.decode() for _, v in numbered(10)]
    kcat_produce(broker.bootstrap, topic, ["k:late"])
    second = kcat(broker.bootstrap, "-G", group, "-e", "-f", "%s\\n", topic)
    assert second.split() == ["late"]


@pytest.mark.slow
def test_broker_process_restart_loses_nothing(
    broker_process: Callable[..., BrokerProcess],
) -> None:
    proc = broker_process()
    topic = unique_topic("kcat-restart")
    kcat_produce(proc.bootstrap, topic, as_lines(numbered(50, "before")), "-X", "acks=all")
    assert proc.terminate() == 0
    proc.start()
    kcat_produce(proc.bootstrap, topic, as_lines(numbered(5, "after")), "-X", "acks=all")
    got = kcat_consume(proc.bootstrap, topic)
    assert [m["payload"] for m in got] == [
        v.decode() for _, v in numbered(50, "before") + numbered(5, "after")
    ]
