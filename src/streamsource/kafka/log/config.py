"""``LogConfig``: the settings of one partition log, and the table of Kafka's topic configs.

``TOPIC_CONFIGS`` lists every topic config Apache Kafka knows, with its type, Kafka's
default, the broker setting that supplies the default (DescribeConfigs reports it as a
synonym) and, for those this broker acts on, the ``LogConfig`` attribute. Values are
checked against their type here, so a bad one is refused with INVALID_CONFIG naming the
config and the value, whether it came from CreateTopics or an AlterConfigs request.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from streamsource.kafka.log.errors import InvalidLogConfig

FsyncPolicy = Literal["always", "interval"]
TimestampType = Literal["CreateTime", "LogAppendTime"]
ConfigType = Literal["boolean", "string", "int", "long", "double", "list"]

_DAY_MS = 24 * 60 * 60 * 1000
_LONG_MAX = 2**63 - 1
_INT_MAX = 2**31 - 1
# Positions in a segment are stored as u32 in the offset index; Kafka caps segment.bytes at
# Int.MaxValue for the same reason.
MAX_SEGMENT_BYTES = 2**31 - 1
MIN_SEGMENT_BYTES = 14  # Kafka's lower bound: LOG_OVERHEAD + a tiny message
CLEANUP_POLICIES = ("delete", "compact", "compact,delete")


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
    # "delete": retention removes old segments; "compact": the cleaner keeps the latest
    # record per key and retention leaves the log alone; "compact,delete": both.
    cleanup_policy: str = "delete"
    delete_retention_ms: int = _DAY_MS  # tombstones and empty txn markers, after cleaning
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = _LONG_MAX
    min_cleanable_dirty_ratio: float = 0.5

    def __post_init__(self) -> None:
        if not MIN_SEGMENT_BYTES <= self.segment_bytes <= MAX_SEGMENT_BYTES:
            raise InvalidLogConfig(
                f"segment.bytes must be in [{MIN_SEGMENT_BYTES}, {MAX_SEGMENT_BYTES}], "
                f"not {self.segment_bytes}"
            )
        _at_least("segment.ms", self.segment_ms, 1)
        _at_least("retention.ms", self.retention_ms, -1)
        _at_least("retention.bytes", self.retention_bytes, -1)
        _at_least("index.interval.bytes", self.index_interval_bytes, 0)
        _at_least("max.message.bytes", self.max_message_bytes, 0)
        if self.fsync not in ("always", "interval"):
            raise InvalidLogConfig(f"fsync must be 'always' or 'interval', not {self.fsync!r}")
        _at_least("flush.ms", self.flush_interval_ms, 1)
        if self.message_timestamp_type not in ("CreateTime", "LogAppendTime"):
            raise InvalidLogConfig(
                "message.timestamp.type must be CreateTime or LogAppendTime, "
                f"not {self.message_timestamp_type!r}"
            )
        if self.cleanup_policy not in CLEANUP_POLICIES:
            raise InvalidLogConfig(
                f"cleanup.policy must be delete, compact or compact,delete, "
                f"not {self.cleanup_policy!r}"
            )
        _at_least("delete.retention.ms", self.delete_retention_ms, 0)
        _at_least("min.compaction.lag.ms", self.min_compaction_lag_ms, 0)
        _at_least("max.compaction.lag.ms", self.max_compaction_lag_ms, 1)
        if not 0.0 <= self.min_cleanable_dirty_ratio <= 1.0:
            raise InvalidLogConfig(
                f"min.cleanable.dirty.ratio must be in [0, 1], not {self.min_cleanable_dirty_ratio}"
            )

    @property
    def compacted(self) -> bool:
        """Whether the cleaner compacts this log (and produce needs keys)."""
        return "compact" in self.cleanup_policy

    @property
    def time_and_size_retention(self) -> bool:
        """Whether retention.ms/retention.bytes delete old segments of this log."""
        return "delete" in self.cleanup_policy

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
            definition = TOPIC_CONFIGS.get(kafka_name)
            if definition is None or value is None:
                continue
            parsed = definition.parse(value)
            if definition.attr is not None:
                changes[definition.attr] = parsed
        return dataclasses.replace(base if base is not None else cls(), **changes)  # type: ignore[arg-type]

    def to_topic_configs(self) -> dict[str, str]:
        """The settings this log acts on, under their Kafka names."""
        return {
            d.name: d.format(getattr(self, d.attr))
            for d in TOPIC_CONFIGS.values()
            if d.attr is not None
        }


@dataclass(frozen=True)
class TopicConfigDef:
    """One Kafka topic config: its type, Kafka's default and the broker-level synonym."""

    name: str
    type: ConfigType
    default: str
    broker_name: str
    attr: str | None = None  # the LogConfig attribute, if this broker acts on the config
    choices: tuple[str, ...] = ()
    minimum: float | None = None

    def parse(self, value: str) -> object:
        """The value as its type; ``InvalidLogConfig`` naming config and value if bad."""
        bad = InvalidLogConfig(f"invalid value {value!r} for {self.type} config {self.name}")
        if self.type == "boolean":
            if value.lower() not in ("true", "false"):
                raise bad
            return value.lower() == "true"
        if self.type in ("int", "long"):
            try:
                number = int(value.strip())
            except ValueError:
                raise bad from None
            limit = _INT_MAX if self.type == "int" else _LONG_MAX
            if not -limit - 1 <= number <= limit or (
                self.minimum is not None and number < self.minimum
            ):
                raise bad
            return number
        if self.type == "double":
            try:
                ratio = float(value.strip())
            except ValueError:
                raise bad from None
            if not math.isfinite(ratio) or (self.minimum is not None and ratio < self.minimum):
                raise bad
            return ratio
        if self.type == "list":
            items = [item.strip() for item in value.split(",") if item.strip()]
            if not items or any(item not in self.choices for item in items):
                raise bad
            return ",".join(sorted(set(items)))  # "delete,compact" -> "compact,delete"
        if self.choices and value not in self.choices:
            raise bad
        return value

    def format(self, value: object) -> str:
        if isinstance(value, bool):
            return str(value).lower()
        return str(value)


def _def(
    name: str,
    type_: ConfigType,
    default: object,
    broker_name: str | None = None,
    attr: str | None = None,
    choices: tuple[str, ...] = (),
    minimum: float | None = None,
) -> TopicConfigDef:
    text = str(default).lower() if isinstance(default, bool) else str(default)
    return TopicConfigDef(name, type_, text, broker_name or f"log.{name}", attr, choices, minimum)


_COMPRESSION_TYPES = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")

#: Every topic config Apache Kafka 3.9 knows, by name. Others are refused with
#: INVALID_CONFIG, as Kafka does (a misspelt "retention.ms" must not silently keep data for
#: 7 days). Those without ``attr`` (replication, tiered storage, ...) are kept as given.
TOPIC_CONFIGS: dict[str, TopicConfigDef] = {
    d.name: d
    for d in (
        _def(
            "cleanup.policy",
            "list",
            "delete",
            "log.cleanup.policy",
            "cleanup_policy",
            choices=("compact", "delete"),
        ),
        _def("compression.gzip.level", "int", -1, "compression.gzip.level"),
        _def("compression.lz4.level", "int", 9, "compression.lz4.level"),
        _def(
            "compression.type", "string", "producer", "compression.type", choices=_COMPRESSION_TYPES
        ),
        _def("compression.zstd.level", "int", 3, "compression.zstd.level"),
        _def(
            "delete.retention.ms",
            "long",
            _DAY_MS,
            "log.cleaner.delete.retention.ms",
            "delete_retention_ms",
            minimum=0,
        ),
        _def("file.delete.delay.ms", "long", 60000, "log.segment.delete.delay.ms", minimum=0),
        _def("flush.messages", "long", _LONG_MAX, "log.flush.interval.messages", minimum=1),
        _def(
            "flush.ms", "long", _LONG_MAX, "log.flush.interval.ms", "flush_interval_ms", minimum=0
        ),
        _def(
            "follower.replication.throttled.replicas",
            "list",
            "",
            "follower.replication.throttled.replicas",
        ),
        _def(
            "index.interval.bytes",
            "int",
            4096,
            "log.index.interval.bytes",
            "index_interval_bytes",
            minimum=0,
        ),
        _def(
            "leader.replication.throttled.replicas",
            "list",
            "",
            "leader.replication.throttled.replicas",
        ),
        _def("local.retention.bytes", "long", -2, "log.local.retention.bytes", minimum=-2),
        _def("local.retention.ms", "long", -2, "log.local.retention.ms", minimum=-2),
        _def(
            "max.compaction.lag.ms",
            "long",
            _LONG_MAX,
            "log.cleaner.max.compaction.lag.ms",
            "max_compaction_lag_ms",
            minimum=1,
        ),
        _def(
            "max.message.bytes", "int", 1048588, "message.max.bytes", "max_message_bytes", minimum=0
        ),
        _def("message.downconversion.enable", "boolean", True, "log.message.downconversion.enable"),
        _def("message.format.version", "string", "3.0-IV1", "log.message.format.version"),
        _def(
            "message.timestamp.after.max.ms",
            "long",
            _LONG_MAX,
            "log.message.timestamp.after.max.ms",
            minimum=0,
        ),
        _def(
            "message.timestamp.before.max.ms",
            "long",
            _LONG_MAX,
            "log.message.timestamp.before.max.ms",
            minimum=0,
        ),
        _def(
            "message.timestamp.difference.max.ms",
            "long",
            _LONG_MAX,
            "log.message.timestamp.difference.max.ms",
            minimum=0,
        ),
        _def(
            "message.timestamp.type",
            "string",
            "CreateTime",
            "log.message.timestamp.type",
            "message_timestamp_type",
            choices=("CreateTime", "LogAppendTime"),
        ),
        _def(
            "min.cleanable.dirty.ratio",
            "double",
            0.5,
            "log.cleaner.min.cleanable.ratio",
            "min_cleanable_dirty_ratio",
            minimum=0,
        ),
        _def(
            "min.compaction.lag.ms",
            "long",
            0,
            "log.cleaner.min.compaction.lag.ms",
            "min_compaction_lag_ms",
            minimum=0,
        ),
        _def("min.insync.replicas", "int", 1, "min.insync.replicas", minimum=1),
        _def("preallocate", "boolean", False, "log.preallocate"),
        _def("remote.log.copy.disable", "boolean", False, "remote.log.copy.disable"),
        _def("remote.log.delete.on.disable", "boolean", False, "remote.log.delete.on.disable"),
        _def("remote.storage.enable", "boolean", False, "remote.log.storage.system.enable"),
        _def("retention.bytes", "long", -1, "log.retention.bytes", "retention_bytes"),
        _def("retention.ms", "long", 7 * _DAY_MS, "log.retention.ms", "retention_ms", minimum=-1),
        _def(
            "segment.bytes",
            "int",
            1024**3,
            "log.segment.bytes",
            "segment_bytes",
            minimum=MIN_SEGMENT_BYTES,
        ),
        _def("segment.index.bytes", "int", 10 * 1024 * 1024, "log.index.size.max.bytes", minimum=4),
        _def("segment.jitter.ms", "long", 0, "log.roll.jitter.ms", minimum=0),
        _def("segment.ms", "long", 7 * _DAY_MS, "log.roll.ms", "segment_ms", minimum=1),
        _def("unclean.leader.election.enable", "boolean", False, "unclean.leader.election.enable"),
    )
}

# Kafka topic config name -> LogConfig attribute, for the configs this broker acts on.
# "flush.ms" is Kafka's per-topic flush interval; fsync policy has no Kafka topic name (it
# is a broker setting here).
TOPIC_CONFIG_NAMES: dict[str, str] = {
    d.name: d.attr for d in TOPIC_CONFIGS.values() if d.attr is not None
}


def check_topic_configs(configs: Mapping[str, str | None]) -> None:
    """Refuse unknown names and values that do not parse (``InvalidLogConfig``)."""
    unknown = sorted(set(configs) - set(TOPIC_CONFIGS))
    if unknown:
        raise InvalidLogConfig(f"unknown topic config name(s): {', '.join(unknown)}")
    for name, value in configs.items():
        if value is not None:
            TOPIC_CONFIGS[name].parse(value)


def _at_least(name: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise InvalidLogConfig(f"{name} must be at least {minimum}, not {value}")
