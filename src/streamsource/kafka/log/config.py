"""``LogConfig``: the settings of one partition log, under Python and Kafka names."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from streamsource.kafka.log.errors import InvalidLogConfig

FsyncPolicy = Literal["always", "interval"]
TimestampType = Literal["CreateTime", "LogAppendTime"]

_DAY_MS = 24 * 60 * 60 * 1000
# Positions in a segment are stored as u32 in the offset index; Kafka caps segment.bytes at
# Int.MaxValue for the same reason.
MAX_SEGMENT_BYTES = 2**31 - 1
MIN_SEGMENT_BYTES = 14  # Kafka's lower bound: LOG_OVERHEAD + a tiny message


@dataclass(frozen=True)
class LogConfig:
    """Settings of a partition log; defaults are Apache Kafka's.

    ``fsync="always"`` means the caller (the broker) calls ``flush()`` before it
    acknowledges acks=all; ``"interval"`` means it calls ``flush()`` about every
    ``flush_interval_ms``. The log itself never fsyncs on append.
    """

    segment_bytes: int = 1024 * 1024 * 1024
    segment_ms: int = 7 * _DAY_MS
    retention_ms: int = 7 * _DAY_MS  # -1: keep forever
    retention_bytes: int = -1  # -1: no size limit
    index_interval_bytes: int = 4096
    max_message_bytes: int = 1024 * 1024 + 12  # Kafka's max.message.bytes (one batch)
    fsync: FsyncPolicy = "interval"
    flush_interval_ms: int = 1000
    message_timestamp_type: TimestampType = "CreateTime"

    def __post_init__(self) -> None:
        if not MIN_SEGMENT_BYTES <= self.segment_bytes <= MAX_SEGMENT_BYTES:
            raise InvalidLogConfig(
                f"segment.bytes must be in [{MIN_SEGMENT_BYTES}, {MAX_SEGMENT_BYTES}]"
            )
        if self.segment_ms < 1:
            raise InvalidLogConfig("segment.ms must be positive")
        if self.retention_ms < -1:
            raise InvalidLogConfig("retention.ms must be -1 or >= 0")
        if self.retention_bytes < -1:
            raise InvalidLogConfig("retention.bytes must be -1 or >= 0")
        if self.index_interval_bytes < 0:
            raise InvalidLogConfig("index.interval.bytes must be >= 0")
        if self.max_message_bytes < 0:
            raise InvalidLogConfig("max.message.bytes must be >= 0")
        if self.fsync not in ("always", "interval"):
            raise InvalidLogConfig(f"fsync must be 'always' or 'interval', not {self.fsync!r}")
        if self.flush_interval_ms < 1:
            raise InvalidLogConfig("flush.ms must be positive")
        if self.message_timestamp_type not in ("CreateTime", "LogAppendTime"):
            raise InvalidLogConfig("message.timestamp.type must be CreateTime or LogAppendTime")

    @classmethod
    def from_topic_configs(
        cls, configs: Mapping[str, str | None], *, base: LogConfig | None = None
    ) -> LogConfig:
        """Build from Kafka topic config names over ``base`` (default: Kafka's defaults).

        Unknown names are ignored (the broker decides whether to refuse them); a known name
        with a bad value raises ``InvalidLogConfig`` (Kafka's INVALID_CONFIG).
        """
        changes: dict[str, object] = {}
        for kafka_name, value in configs.items():
            attr = TOPIC_CONFIG_NAMES.get(kafka_name)
            if attr is None or value is None:
                continue
            if attr == "message_timestamp_type":
                changes[attr] = value
                continue
            try:
                changes[attr] = int(value)
            except ValueError:
                raise InvalidLogConfig(f"{kafka_name} must be an integer, not {value!r}") from None
        return dataclasses.replace(base if base is not None else cls(), **changes)  # type: ignore[arg-type]

    def to_topic_configs(self) -> dict[str, str]:
        """The settings under their Kafka names, as DescribeConfigs reports them."""
        return {name: str(getattr(self, attr)) for name, attr in TOPIC_CONFIG_NAMES.items()}


# Kafka topic config name -> LogConfig attribute. "flush.ms" is Kafka's per-topic flush
# interval; fsync policy has no Kafka topic name (it is a broker setting here).
TOPIC_CONFIG_NAMES: dict[str, str] = {
    "segment.bytes": "segment_bytes",
    "segment.ms": "segment_ms",
    "retention.ms": "retention_ms",
    "retention.bytes": "retention_bytes",
    "index.interval.bytes": "index_interval_bytes",
    "max.message.bytes": "max_message_bytes",
    "flush.ms": "flush_interval_ms",
    "message.timestamp.type": "message_timestamp_type",
}
