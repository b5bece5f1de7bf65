"""The broker's settings: one frozen dataclass, defaults chosen for a developer's machine.

Defaults follow Apache Kafka's broker defaults where a client could notice the difference
(1 partition per auto-created topic, 7-day retention, 1 GiB segments, 100 MiB max request),
and depart from them where Kafka's default only makes sense in a cluster (loopback listener).
Kafka's 3 s ``group.initial.rebalance.delay.ms`` is kept: members started together then
land in one generation instead of rebalancing once per arrival.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from streamsource.errors import BrokerError
from streamsource.kafka.log.config import LogConfig
from streamsource.kafka.security.listeners import Listener, TlsFiles, is_loopback

FsyncPolicy = Literal["always", "interval"]

DEFAULT_DATA_DIR = Path("streamsource-data") / "broker"

_DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class BrokerConfig:
    """Everything the broker needs to run. ``port=0`` picks a free port (tests)."""

    host: str = "127.0.0.1"
    port: int = 9092
    advertised_host: str | None = None  # what Metadata tells clients; default: host
    advertised_port: int | None = None  # default: the port actually bound
    # every listener; empty: one PLAINTEXT listener on host:port (the shorthand above)
    listeners: tuple[Listener, ...] = ()
    tls: TlsFiles | None = None  # needed by SSL and SASL_SSL listeners
    # a PLAINTEXT or SASL_PLAINTEXT listener reachable from other machines sends data (and
    # PLAIN passwords) in the clear: refused unless asked for
    allow_plaintext: bool = False
    sasl_mechanisms: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    # KIP-368 (Kafka's connections.max.reauth.ms): a SASL session must re-authenticate
    # within this long or its connection is closed; 0: sessions do not expire
    sasl_session_lifetime_ms: int = 0
    # failed authentications one client address may make per minute before every further
    # attempt from it fails unchecked, until the minute has passed
    sasl_max_failures_per_minute: int = 10
    # ACLs (Kafka's authorizer.class.name, super.users, allow.everyone.if.no.acl.found):
    # with the authorizer on, a resource no ACL names is refused unless the last is set
    authorizer: bool = False
    super_users: tuple[str, ...] = ()
    allow_everyone_if_no_acl: bool = False
    data_dir: Path = DEFAULT_DATA_DIR
    node_id: int = 0
    default_partitions: int = 1
    # partitions the broker may hold in all; None: what the open-file limit allows
    # (``topics.default_max_partitions``), since every partition keeps files open
    max_partitions: int | None = None
    auto_create_topics: bool = True
    fsync: FsyncPolicy = "interval"
    flush_interval_ms: int = 1000
    max_frame_bytes: int = 100 * 1024 * 1024  # Kafka's socket.request.max.bytes
    # what a connection may send before it has authenticated (ApiVersions and SASL frames
    # only; Kafka bounds these by sasl.server.max.receive.size)
    max_unauthenticated_frame_bytes: int = 64 * 1024
    read_chunk_bytes: int = 256 * 1024  # one socket read; bounds what a connection buffers
    log_defaults: LogConfig = field(default_factory=LogConfig)  # per-topic configs override
    retention_check_interval_ms: int = 5 * 60 * 1000
    # log compaction (Kafka's log.cleaner.* settings): how often the cleaner looks for
    # compacted logs with enough dirty data, and the memory its key -> offset map may use
    log_cleaner_enable: bool = True
    log_cleaner_backoff_ms: int = 15_000
    log_cleaner_dedupe_buffer_bytes: int = 128 * 1024 * 1024
    # consumer groups (Kafka's group.* broker settings)
    group_min_session_timeout_ms: int = 6000
    group_max_session_timeout_ms: int = 30 * 60 * 1000
    group_initial_rebalance_delay_ms: int = 3000
    # the consumer protocol (KIP-848): the broker, not the client, sets these
    group_consumer_session_timeout_ms: int = 45_000
    group_consumer_heartbeat_interval_ms: int = 5_000
    # committed offsets of an empty group expire this long after its last commit or the
    # moment it became empty, whichever is later (Kafka's offsets.retention.minutes)
    offsets_retention_ms: int = 7 * _DAY_MS
    # idempotent producers idle this long are forgotten (Kafka's producer.id.expiration.ms)
    producer_id_expiration_ms: int = _DAY_MS
    # what one Fetch response may carry whatever the client asks (librdkafka asks 50 MiB):
    # the response is held in memory about twice while it is sent
    fetch_max_bytes_cap: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.fsync not in ("always", "interval"):
            raise BrokerError(f"fsync must be 'always' or 'interval', not {self.fsync!r}")
        if not 0 <= self.port <= 65535:
            raise BrokerError(f"port {self.port} is out of range")
        if self.default_partitions < 1:
            raise BrokerError("default_partitions must be at least 1")
        if self.max_partitions is not None and self.max_partitions < 1:
            raise BrokerError("max_partitions must be at least 1")
        if self.max_frame_bytes < 1024:
            raise BrokerError("max_frame_bytes must be at least 1024")
        if self.offsets_retention_ms < 1:
            raise BrokerError("offsets_retention_ms must be positive")
        if self.group_initial_rebalance_delay_ms < 0:
            raise BrokerError("group_initial_rebalance_delay_ms must not be negative")
        if self.flush_interval_ms < 1:
            raise BrokerError("flush_interval_ms must be positive")
        if self.log_cleaner_backoff_ms < 1:
            raise BrokerError("log_cleaner_backoff_ms must be positive")
        if self.log_cleaner_dedupe_buffer_bytes < 1024 * 1024:
            raise BrokerError("log_cleaner_dedupe_buffer_bytes must be at least 1 MiB")
        object.__setattr__(self, "listeners", tuple(self.listeners))
        object.__setattr__(self, "sasl_mechanisms", tuple(self.sasl_mechanisms))
        object.__setattr__(self, "super_users", tuple(self.super_users))
        for principal in self.super_users:
            if ":" not in principal:
                raise BrokerError(f"super user {principal!r} is not TYPE:NAME (User:admin)")
        unknown = set(self.sasl_mechanisms) - {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
        if unknown or not self.sasl_mechanisms:
            raise BrokerError(
                f"SASL mechanisms are PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, not {sorted(unknown)}"
            )
        if self.sasl_session_lifetime_ms < 0:
            raise BrokerError("sasl_session_lifetime_ms must not be negative")
        if self.sasl_max_failures_per_minute < 1:
            raise BrokerError("sasl_max_failures_per_minute must be at least 1")
        self._check_listeners()

    def effective_listeners(self) -> tuple[Listener, ...]:
        """The listeners to open: ``listeners``, or the ``host``/``port`` shorthand."""
        if self.listeners:
            return self.listeners
        return (
            Listener("PLAINTEXT", self.host, self.port, self.advertised_host, self.advertised_port),
        )

    def _check_listeners(self) -> None:
        seen: set[str] = set()
        for listener in self.effective_listeners():
            if listener.protocol in seen:
                raise BrokerError(f"two {listener.protocol} listeners; one per protocol")
            seen.add(listener.protocol)
            if listener.tls and self.tls is None:
                raise BrokerError(f"listener {listener} needs --tls-cert and --tls-key")
            if not listener.tls and not self.allow_plaintext and not is_loopback(listener.host):
                raise BrokerError(
                    f"listener {listener} would send data in the clear to other machines; "
                    "use an SSL or SASL_SSL listener, or pass --allow-plaintext"
                )

    def topic_log_config(self, configs: Mapping[str, str | None]) -> LogConfig:
        """The log settings of a topic created with Kafka-named ``configs``.

        Raises ``InvalidLogConfig`` (INVALID_CONFIG) for a known name with a bad value.
        """
        base = dataclasses.replace(
            self.log_defaults, fsync=self.fsync, flush_interval_ms=self.flush_interval_ms
        )
        return LogConfig.from_topic_configs(configs, base=base)
