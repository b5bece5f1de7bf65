"""How the mall puts a service together: its own store, its routers, its consumers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import APIRouter

import streamsource as ss

from .messaging import Consumer, Handler
from .storage import ServiceStore


class Background(Protocol):
    def start(self) -> None: ...

    def stop(self, timeout: float = 5.0) -> None: ...


@dataclass
class Wiring:
    """What a service gets from the process it runs in."""

    own: ServiceStore
    # another service's store, to follow its log, and how often to poll it (None: the store's
    # default, for a store this process appends to and so wakes its subscribers)
    source_of: Callable[[str], tuple[ss.EventStore, float | None]]
    step_timeout: float = 30.0  # seconds a saga step waits for its reply
    consumers: list[Consumer] = field(default_factory=list)
    background: list[Background] = field(default_factory=list)  # other threads to run

    def follow(self, service: str, handle: Handler) -> Consumer:
        """Consume ``service``'s messages with ``handle`` (checkpoint named after both)."""
        name = f"{self.own.service}.from.{service}"
        source, poll_interval = self.source_of(service)
        consumer = Consumer(name, self.own, source, handle, poll_interval)
        self.consumers.append(consumer)
        return consumer


@dataclass(frozen=True)
class Service:
    name: str
    tables: Sequence[str]
    build: Callable[[Wiring], APIRouter]  # registers consumers on the wiring, returns routes
