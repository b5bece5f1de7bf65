"""What one console serves: the store, the Kafka cluster, users, the app's own types."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ConsoleConfig:
    store_url: str | None = None
    """The event store (None: no store pages)."""
    bootstrap: str | None = None
    """A Kafka cluster's bootstrap address (None: no Kafka pages)."""
    kafka_config: dict[str, str] = field(default_factory=dict)
    """librdkafka settings for the console's clients: ``security.protocol``, ``sasl.*``,
    ``ssl.*`` (from ``ClientSecurity``); never printed."""
    users_file: Path | None = None
    """The ``--auth`` users file; None: no login, everyone on loopback is an admin."""
    mask_values: bool = False
    """Hide event data and message values from viewers."""
    projections: str | None = None
    """``module:attr`` naming the application's projections."""
    aggregates: tuple[str, ...] = field(default=())
    """``module:Class`` of each aggregate type whose state time travel shows."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
