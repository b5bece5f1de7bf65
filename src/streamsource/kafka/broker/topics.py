"""The topic and partition manager: which topics exist, their ids, configs and logs.

The topic list lives in ``<data_dir>/topics.json`` (rewritten atomically on every create or
delete); each partition's log lives in ``<data_dir>/logs/<topic>-<partition>/``, as in
Kafka. A delete first drops the topic from ``topics.json`` and then removes its directories,
so a crash in between leaves orphan directories that the next start removes.
"""

from __future__ import annotations

import logging
import re
import resource
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from streamsource.errors import BrokerError, CorruptStoreError
from streamsource.kafka.broker.config import BrokerConfig
from streamsource.kafka.broker.partition import Partition
from streamsource.kafka.log.config import LogConfig, check_topic_configs
from streamsource.kafka.log.errors import InvalidLogConfig, LogError
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.storage import StorageError, fsync_dir, read_json, write_json

log = logging.getLogger(__name__)

MAX_TOPIC_NAME_LENGTH = 249
MAX_PARTITIONS = 10_000  # per topic; bounds what a CreateTopics request can make us open
MAX_PARTITIONS_PER_BROKER = 100_000  # when the open-file limit is unlimited
FDS_PER_PARTITION = 3  # its active segment's log, offset index and time index stay open
_LEGAL_NAME = re.compile(r"[a-zA-Z0-9._-]+")
_TOPICS_FILE = "topics.json"
_LOGS_DIR = "logs"


class TopicError(BrokerError):
    """A topic operation was refused; ``error_code`` is the Kafka code to answer with."""

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.retriable = error_code.retriable


def validate_topic_name(name: str) -> None:
    """Raise ``TopicError(INVALID_TOPIC_EXCEPTION)`` unless Kafka would accept ``name``."""
    if not name:
        reason = "topic name is empty"
    elif name in (".", ".."):
        reason = f"topic name cannot be {name!r}"
    elif len(name) > MAX_TOPIC_NAME_LENGTH:
        reason = f"topic name is longer than {MAX_TOPIC_NAME_LENGTH} characters"
    elif not _LEGAL_NAME.fullmatch(name):
        reason = (
            f"topic name {name!r} has characters other than ASCII letters, digits, '.', '_', '-'"
        )
    else:
        return
    raise TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION, reason)


def default_max_partitions() -> int:
    """How many partitions fit under this process's open-file limit (``ulimit -n``).

    A quarter of the limit (at least 256 descriptors) is left for connections, reads of
    old segments and state files; running out of descriptors would stop the whole broker.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_PARTITIONS_PER_BROKER
    reserve = max(256, soft // 4)
    return max(1, min(MAX_PARTITIONS_PER_BROKER, (soft - reserve) // FDS_PER_PARTITION))


@dataclass
class Topic:
    """One topic: a stable id (reported by Metadata v10+), its configs and partitions."""

    name: str
    topic_id: uuid.UUID
    configs: dict[str, str]
    settings: LogConfig
    partitions: list[Partition] = field(default_factory=list)


class TopicManager:
    """Creates, opens, deletes topics and owns every partition log of the broker."""

    def __init__(self, config: BrokerConfig) -> None:
        self._config = config
        self._root = Path(config.data_dir)
        self._logs_root = self._root / _LOGS_DIR
        self.topics: dict[str, Topic] = {}
        limit = config.max_partitions
        self.max_partitions = limit if limit is not None else default_max_partitions()

    # -- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        """Load ``topics.json`` and open (recover) every partition log."""
        if not self._logs_root.exists():
            self._logs_root.mkdir(parents=True)
            fsync_dir(self._root)
        try:
            document = read_json(self._root / _TOPICS_FILE) or {"topics": {}}
            entries = dict(document["topics"])
            for name, entry in sorted(entries.items()):
                configs = {str(k): str(v) for k, v in dict(entry.get("configs", {})).items()}
                topic = Topic(
                    name=str(name),
                    topic_id=uuid.UUID(str(entry["id"])),
                    configs=configs,
                    settings=self._config.topic_log_config(configs),
                )
                count = int(entry["partitions"])
                if not 0 < count <= MAX_PARTITIONS:
                    raise ValueError(f"topic {name!r} has {count} partitions")
                self.topics[topic.name] = topic
                topic.partitions = [self._open_partition(topic, i) for i in range(count)]
        except (KeyError, TypeError, ValueError, InvalidLogConfig, CorruptStoreError) as exc:
            raise BrokerError(f"{self._root / _TOPICS_FILE} is damaged: {exc}") from exc
        self._remove_orphans()

    def close(self) -> None:
        """Close every partition log (flushing it)."""
        for partition in self.partitions():
            partition.close()

    # -- queries -------------------------------------------------------------------------

    def get(self, name: str) -> Topic | None:
        return self.topics.get(name)

    def by_id(self, topic_id: uuid.UUID) -> Topic | None:
        """The topic with this id (Metadata v10+, DeleteTopics v6+ name topics by id)."""
        for topic in self.topics.values():
            if topic.topic_id == topic_id:
                return topic
        return None

    def partition(self, name: str, index: int) -> Partition | None:
        """The partition, or ``None`` if the topic or partition does not exist."""
        topic = self.topics.get(name)
        if topic is None or not 0 <= index < len(topic.partitions):
            return None
        return topic.partitions[index]

    def partitions(self) -> Iterator[Partition]:
        for topic in list(self.topics.values()):
            yield from topic.partitions

    # -- changes -------------------------------------------------------------------------

    def check_create(self, name: str, num_partitions: int, configs: dict[str, str]) -> None:
        """Raise ``TopicError`` if ``create`` with these arguments would be refused."""
        validate_topic_name(name)
        if name in self.topics:
            raise TopicError(ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
        collision = _collision_key(name)
        for existing in self.topics:
            if _collision_key(existing) == collision:
                raise TopicError(
                    ErrorCode.INVALID_TOPIC_EXCEPTION,
                    f"topic {name!r} collides with existing topic {existing!r} "
                    "('.' and '_' are the same in metric names)",
                )
        if not 0 < num_partitions <= MAX_PARTITIONS:
            raise TopicError(
                ErrorCode.INVALID_PARTITIONS,
                f"number of partitions must be between 1 and {MAX_PARTITIONS}",
            )
        self._check_partition_budget(num_partitions)
        self.check_configs(configs)

    def check_configs(self, configs: dict[str, str]) -> LogConfig:
        """The log settings of these topic configs, or ``TopicError(INVALID_CONFIG)``."""
        try:
            check_topic_configs(configs)
            return self._config.topic_log_config(configs)
        except InvalidLogConfig as exc:
            raise TopicError(ErrorCode.INVALID_CONFIG, str(exc)) from exc

    def alter_configs(self, name: str, configs: dict[str, str]) -> Topic:
        """Replace the topic's config overrides (AlterConfigs and IncrementalAlterConfigs).

        Every partition log uses the new settings from its next operation on; the new
        overrides are saved in ``topics.json`` before this returns.
        """
        topic = self.topics.get(name)
        if topic is None:
            raise TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"no topic {name!r}")
        settings = self.check_configs(configs)
        saved = topic.configs
        topic.configs = dict(configs)
        try:
            self._save()
        except TopicError:
            topic.configs = saved  # a full disk: the old configs stay in force
            raise
        topic.settings = settings
        for partition in topic.partitions:
            partition.log.update_config(settings)
        log.info("topic %s configs changed to %s", name, configs)
        return topic

    def create(
        self, name: str, num_partitions: int | None = None, configs: dict[str, str] | None = None
    ) -> Topic:
        """Create a topic (``num_partitions`` defaults to the broker's default)."""
        count = self._config.default_partitions if num_partitions is None else num_partitions
        configs = dict(configs or {})
        self.check_create(name, count, configs)
        topic = Topic(
            name=name,
            topic_id=uuid.uuid4(),
            configs=configs,
            settings=self._config.topic_log_config(configs),
        )
        opened: list[Partition] = []
        try:
            for index in range(count):
                opened.append(self._open_partition(topic, index))
            fsync_dir(self._logs_root)  # the new partition directories survive a power loss
        except (LogError, OSError) as exc:
            for partition in opened:  # no half-made topic, no leaked descriptors
                partition.delete()
            shutil.rmtree(self._logs_root / f"{name}-{len(opened)}", ignore_errors=True)
            raise TopicError(
                ErrorCode.KAFKA_STORAGE_ERROR, f"cannot create topic {name!r}: {exc}"
            ) from exc
        topic.partitions = opened
        self.topics[name] = topic
        try:
            self._save()
        except TopicError:
            del self.topics[name]
            for partition in opened:
                partition.delete()
            raise
        log.info("created topic %s with %d partition(s)", name, count)
        return topic

    def get_or_create(self, name: str) -> Topic:
        """The topic, created with the broker's defaults if it does not exist (auto-create)."""
        topic = self.topics.get(name)
        return topic if topic is not None else self.create(name)

    def delete(self, name: str) -> None:
        """Delete a topic and its data; raises ``TopicError`` if it does not exist."""
        topic = self.topics.pop(name, None)
        if topic is None:
            raise TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"no topic {name!r}")
        try:
            self._save()
        except TopicError:
            self.topics[name] = topic  # still listed on disk: keep it
            raise
        for partition in topic.partitions:
            partition.delete()
        log.info("deleted topic %s", name)

    def check_add_partitions(self, name: str, count: int) -> Topic:
        """The topic, or ``TopicError`` if ``add_partitions(name, count)`` would be refused."""
        topic = self.topics.get(name)
        if topic is None:
            raise TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"no topic {name!r}")
        current = len(topic.partitions)
        if count == current:
            reason = f"topic {name!r} already has {current} partitions"
        elif count < current:
            reason = (
                f"topic {name!r} has {current} partitions, more than the {count} asked for: "
                "partitions cannot be removed"
            )
        elif count > MAX_PARTITIONS:
            reason = f"number of partitions must be at most {MAX_PARTITIONS}"
        else:
            self._check_partition_budget(count - current)
            return topic
        raise TopicError(ErrorCode.INVALID_PARTITIONS, reason)

    def add_partitions(self, name: str, count: int) -> Topic:
        """Grow a topic to ``count`` partitions (CreatePartitions); the new logs start empty.

        The new directories are made durable before ``topics.json`` names them, so a crash
        in between leaves orphan directories, removed by the next ``open``.
        """
        topic = self.check_add_partitions(name, count)
        current = len(topic.partitions)
        added: list[Partition] = []
        try:
            for index in range(current, count):
                added.append(self._open_partition(topic, index))
            fsync_dir(self._logs_root)
        except BaseException as exc:
            for partition in added:
                partition.delete()
            if isinstance(exc, LogError | OSError):
                raise TopicError(
                    ErrorCode.KAFKA_STORAGE_ERROR, f"cannot grow topic {name!r}: {exc}"
                ) from exc
            raise
        # a new list rather than extend: the retention thread may be iterating the old one
        before = topic.partitions
        topic.partitions = before + added
        try:
            self._save()
        except TopicError:
            topic.partitions = before
            for partition in added:
                partition.delete()
            raise
        log.info("topic %s grew from %d to %d partitions", name, current, count)
        return topic

    # -- internals -----------------------------------------------------------------------

    def _check_partition_budget(self, more: int) -> None:
        held = sum(len(t.partitions) for t in self.topics.values())
        if held + more > self.max_partitions:
            raise TopicError(
                ErrorCode.INVALID_PARTITIONS,
                f"the broker holds {held} partitions; {more} more would exceed its limit of "
                f"{self.max_partitions} (each keeps {FDS_PER_PARTITION} files open: raise "
                "`ulimit -n` to allow more)",
            )

    def _open_partition(self, topic: Topic, index: int) -> Partition:
        directory = self._logs_root / f"{topic.name}-{index}"
        return Partition.open(topic.name, index, directory, topic.settings)

    def _save(self) -> None:
        document = {
            "topics": {
                t.name: {
                    "id": str(t.topic_id),
                    "partitions": len(t.partitions),
                    "configs": t.configs,
                }
                for t in self.topics.values()
            }
        }
        try:
            write_json(self._root / _TOPICS_FILE, document)
        except StorageError as exc:
            raise TopicError(ErrorCode.KAFKA_STORAGE_ERROR, str(exc)) from exc

    def _remove_orphans(self) -> None:
        """Remove partition directories of topics deleted just before a crash."""
        wanted = {p.directory.name for p in self.partitions()}
        for child in self._logs_root.iterdir():
            if child.is_dir() and child.name not in wanted:
                log.warning("removing orphan partition directory %s", child)
                shutil.rmtree(child, ignore_errors=True)


def _collision_key(name: str) -> str:
    return name.replace(".", "_")
