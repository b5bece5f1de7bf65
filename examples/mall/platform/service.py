"""How the mall puts a service together: its own store, its routes, its handlers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import APIRouter

from .storage import ServiceStore


class Background(Protocol):
    def start(self) -> object: ...

    def stop(self) -> None: ...


@dataclass
class Wiring:
    """What a service gets from the process it runs in."""

    own: ServiceStore
    step_timeout: float = 30.0  # seconds a saga step waits for its reply
    background: list[Background] = field(default_factory=list)  # threads to run


@dataclass(frozen=True)
class Service:
    name: str
    tables: Sequence[str]
    build: Callable[[Wiring], APIRouter]  # registers handlers on wiring.own.messages
