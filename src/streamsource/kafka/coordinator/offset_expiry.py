"""Which committed offsets have expired (Kafka's ``offsets.retention.minutes``), sans-I/O.

Kafka (KIP-211) keeps the offsets of a group with members however old they are: a consumer
on a quiet topic commits rarely and must not lose its place. Once the group is empty, an
offset expires ``retention_ms`` after the later of its commit and the moment the group
became empty. When that moment is unknown (the group emptied before the broker started)
the commit time alone counts, as in Kafka.
"""

from __future__ import annotations

from collections.abc import Mapping

from streamsource.kafka.coordinator.offsets import CommittedOffset, TopicPartition

DEFAULT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000  # Kafka's offsets.retention.minutes: 7 days


def expired_offsets(
    committed: Mapping[TopicPartition, CommittedOffset],
    now_ms: int,
    retention_ms: int,
    *,
    has_members: bool,
    empty_since_ms: int | None = None,
) -> list[TopicPartition]:
    """The partitions of one group whose committed offsets have expired at ``now_ms``."""
    if has_members:
        return []
    since = empty_since_ms if empty_since_ms is not None else -1
    return [
        tp
        for tp, offset in committed.items()
        if max(offset.commit_timestamp, since) + retention_ms <= now_ms
    ]
