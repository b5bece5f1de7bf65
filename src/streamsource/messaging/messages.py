"""Message classes: integration events, commands and replies, typed like domain events.

A message class is a ``msgspec.Struct`` subclass of :class:`IntegrationEvent`,
:class:`Command` or :class:`Reply`, registered in an
:class:`~streamsource.eventstore.domain.EventRegistry` (the same registry, schema versions and
upcasters as events; the kind comes from the base class)::

    registry = EventRegistry()

    @registry.event("CreateShoppingList", version=1)
    class CreateShoppingList(Command, frozen=True):
        order_id: str
        items: list[str]

Replies: a command handler answers with its own :class:`Reply` subclass, or with
:class:`Success` by default; a refusal or a fault comes back as :class:`Failure`, which says
whether it was a business refusal (``refused``: do not retry, compensate) or a fault that may
pass (``retriable``).

Data is JSON by default (what the store keeps); :class:`MessageCodec` is the hook for
another encoding (``Service(codec=...)``).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import msgspec

from streamsource.errors import ProgrammingError
from streamsource.eventstore.domain.typed_events import EventRegistry

Kind = Literal["command", "event", "reply"]


class Message(msgspec.Struct, frozen=True):
    """Base of every message class (use one of the three kinds below)."""


class IntegrationEvent(Message, frozen=True):
    """A fact one service publishes for others (to its events channel)."""


class Command(Message, frozen=True):
    """A request to one service (to its commands channel); it is answered with a Reply."""


class Reply(Message, frozen=True):
    """The answer to a command (to the reply channel the command named)."""


class Success(Reply, frozen=True):
    """The reply of a command handler that returned without choosing a reply of its own."""


class Failure(Reply, frozen=True):
    """A command was not carried out. ``refused``: a business refusal (final; compensate);
    otherwise a fault (the handler failed past its retries: trying later may succeed)."""

    reason: str
    refused: bool

    @property
    def retriable(self) -> bool:
        return not self.refused


BUILTIN_NAMES: dict[type[Message], str] = {
    Success: "streamsource.Success",
    Failure: "streamsource.Failure",
}


def kind_of(cls: type[Any]) -> Kind:
    """The kind of a message class; ProgrammingError if it derives from none of the three."""
    if isinstance(cls, type):
        if issubclass(cls, Command):
            return "command"
        if issubclass(cls, IntegrationEvent):
            return "event"
        if issubclass(cls, Reply):
            return "reply"
    raise ProgrammingError(
        f"{getattr(cls, '__qualname__', cls)!r} is not a message class"
        " (derive it from IntegrationEvent, Command or Reply)"
    )


class MessageCodec(Protocol):
    """Turns message objects into ``(name, JSON-ready data, schema version)`` and back."""

    def encode(self, message: object) -> tuple[str, dict[str, Any], int]: ...

    def name_of(self, message_type: type[Any]) -> str:
        """The name messages of this class travel under."""
        ...

    def decode(self, name: str, data: Any, schema_version: int) -> Any: ...


class RegistryCodec:
    """The default codec: the registry's names, versions and upcasters, data as JSON."""

    def __init__(self, registry: EventRegistry) -> None:
        self.registry = registry
        for cls, name in BUILTIN_NAMES.items():
            registry.register(cls, name)

    def encode(self, message: object) -> tuple[str, dict[str, Any], int]:
        kind_of(type(message))
        return self.registry.encode(message)

    def name_of(self, message_type: type[Any]) -> str:
        return self.registry.type_for(message_type).name

    def decode(self, name: str, data: Any, schema_version: int) -> Any:
        return self.registry.decode(name, data, schema_version)
