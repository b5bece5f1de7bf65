"""Partition sizes in bytes, asked of every broker with DescribeLogDirs (Kafka API 35).

confluent-kafka (librdkafka) has no admin call that sends DescribeLogDirs; kafka-python, a
maintained pure-Python client, has one (``KafkaAdminClient.describe_log_dirs``) and takes
the console's ``ClientSecurity`` (TLS, SASL PLAIN and SCRAM) as keyword arguments, so the
console uses it for this one request rather than a hand-written client. Its connections
are its own: one admin client per console, opened on first use, thread-safe.

A cluster that cannot say (a broker without API 35 such as Tansu, an ACL refusing DESCRIBE
on the cluster, a broker away, kafka-python not installed) gives no sizes: the pages show
the size as unknown instead of failing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from streamsource.extras import available
from streamsource.kafka.client_security import ClientSecurity

log = logging.getLogger("streamsource.console.kafka")

Sizes = dict[tuple[str, int], dict[int, int]]
"""(topic, partition) -> {broker id: bytes of that broker's copy}."""


class _NoConfiguration(logging.Filter):
    """kafka-python logs its whole configuration, password included, at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Starting KafkaAdminClient with configuration")


logging.getLogger("kafka.admin.client").addFilter(_NoConfiguration())


class LogDirs:
    """Asks the cluster at ``bootstrap`` for partition sizes, with ``security``."""

    def __init__(self, bootstrap: str, security: ClientSecurity, timeout_s: float) -> None:
        self._bootstrap = bootstrap
        self._security = security
        self._timeout_ms = int(timeout_s * 1000)
        self._admin: Any = None
        self._lock = threading.Lock()

    def sizes(self, wanted: Mapping[str, Sequence[int]]) -> Sizes | None:
        """The size of each copy of the ``wanted`` partitions (topic -> partition numbers)
        on each broker, or None when the cluster does not say."""
        if not wanted or not available("kafka"):
            return None if wanted else {}
        import kafka.errors

        try:
            answers = self._client().describe_log_dirs({t: list(p) for t, p in wanted.items()})
        except (kafka.errors.KafkaError, OSError) as exc:
            log.debug("no partition sizes from %s: %s", self._bootstrap, exc)
            return None
        found: Sizes = {}
        for answer in answers:
            broker = int(answer["broker"])
            for log_dir in answer["log_dirs"]:
                if log_dir["error_code"] != 0:
                    continue  # an offline log dir: its partitions stay unknown
                for topic in log_dir["topics"]:
                    for partition in topic["partitions"]:
                        if partition["is_future_key"]:
                            continue  # a copy being moved between log dirs, not the log
                        copies = found.setdefault((topic["name"], partition["partition_index"]), {})
                        copies[broker] = copies.get(broker, 0) + int(partition["partition_size"])
        return found

    def _client(self) -> Any:
        with self._lock:
            if self._admin is None:
                from kafka import KafkaAdminClient

                self._admin = KafkaAdminClient(  # type: ignore[no-untyped-call]
                    bootstrap_servers=self._bootstrap,
                    client_id="streamsource-console",
                    request_timeout_ms=self._timeout_ms,
                    bootstrap_timeout_ms=self._timeout_ms,
                    **self._security.kafka_python(),
                )
            return self._admin

    def close(self) -> None:
        with self._lock:
            admin, self._admin = self._admin, None
        if admin is not None:
            admin.close()
