"""Reading topics back with a plain confluent-kafka consumer (what any user would do)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer

import deadline


def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[Any]:
    """The first ``count`` messages of ``topic`` (all partitions), read by a fresh group."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < count and time.monotonic() < deadline:
            for message in consumer.consume(count - len(messages), 0.2):
                if message.error() is None:
                    messages.append(message)
    finally:
        consumer.close()
    return messages


def wait_until(predicate: Any, timeout: float = 30.0) -> bool:
    """The shared ``deadline.wait_until``: true once ``predicate`` is, AssertionError after
    ``timeout`` (a hang made a failure, not a timing assertion)."""
    return bool(deadline.wait_until(predicate, timeout, getattr(predicate, "__name__", "")))
