"""The app's Kafka plumbing: internal topics, changelog restore, delivery errors.

Only confluent-kafka's public client (never the broker package): an app runs against any
Kafka cluster. Client errors are translated by the bridge's :func:`kafka_error`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from streamsource.bridge.errors import KafkaClientError, kafka_error
from streamsource.streams.errors import StreamsError
from streamsource.streams.state import StoreFile

RESTORE_BATCH = 10_000


def ensure_topics(
    admin: Any, wanted: Mapping[str, tuple[int, dict[str, str]]], timeout: float
) -> dict[str, int]:
    """Create the topics of ``wanted`` (name -> partitions, config) that do not exist; the
    partition count of every one of them."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    deadline = time.monotonic() + timeout
    while True:
        try:
            existing = admin.list_topics(timeout=max(0.1, deadline - time.monotonic())).topics
        except KafkaException as exc:
            raise kafka_error(exc.args[0], "listing topics") from None
        counts = {
            name: len(existing[name].partitions)
            for name in wanted
            if name in existing and existing[name].partitions
        }
        missing = [name for name in wanted if name not in counts]
        if not missing:
            return counts
        if time.monotonic() > deadline:
            raise StreamsError(f"topics {missing} still missing after {timeout}s")
        new = [
            NewTopic(n, num_partitions=wanted[n][0], replication_factor=-1, config=wanted[n][1])
            for n in missing
        ]
        for name, future in admin.create_topics(new, request_timeout=timeout).items():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise kafka_error(exc.args[0], f"creating topic {name}") from None
        time.sleep(0.05)  # metadata propagates; list again (bounded by the deadline)


def restore(config: Mapping[str, Any], files: Iterable[StoreFile], timeout: float) -> int:
    """Replay each file's changelog partition from its recorded offset to the end (committed
    records only); how many records were replayed."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    todo = {(f.changelog, f.partition): f for f in files}
    if not todo:
        return 0
    consumer = Consumer(
        {
            **config,
            "group.id": "streamsource-restore",  # assign() only: never joins or commits
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    replayed = 0
    pending: dict[tuple[str, int], list[tuple[bytes, bytes | None]]] = {tp: [] for tp in todo}
    next_offset = {tp: f.restore_from() for tp, f in todo.items()}
    deadline = time.monotonic() + timeout
    try:
        consumer.assign([TopicPartition(t, p, o) for (t, p), o in next_offset.items()])
        while todo:
            if time.monotonic() > deadline:
                raise StreamsError(f"restoring {sorted(todo)} took longer than {timeout}s")
            try:
                messages = consumer.consume(RESTORE_BATCH, 0.5)
            except KafkaException as exc:
                raise kafka_error(exc.args[0], "restoring state") from None
            for m in messages:
                tp: Any = (m.topic(), m.partition())
                error = m.error()
                if error is not None:
                    if error.code() == error._PARTITION_EOF and tp in todo:
                        todo.pop(tp).apply_changelog(pending[tp], next_offset[tp])
                        pending[tp] = []
                    elif error.code() != error._PARTITION_EOF:
                        raise kafka_error(error, "restoring state")
                    continue
                pending[tp].append((m.key() or b"", m.value()))
                next_offset[tp] = (m.offset() or 0) + 1
                replayed += 1
            for tp, batch in pending.items():
                if len(batch) >= RESTORE_BATCH and tp in todo:
                    todo[tp].apply_changelog(batch, next_offset[tp])
                    pending[tp] = []
    finally:
        consumer.close()
    return replayed


class DeliveryErrors:
    """Collects failed deliveries (the producer's default callback); raised at checkpoint."""

    def __init__(self) -> None:
        self.first: KafkaClientError | None = None

    def __call__(self, error: Any, message: Any) -> None:
        if error is not None and self.first is None:
            self.first = kafka_error(error, f"producing to {message.topic()}")

    def check(self) -> None:
        first, self.first = self.first, None
        if first is not None:
            raise first
