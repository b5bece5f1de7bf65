"""The ``Aggregate`` base class: commands record events, state changes only by applying them.

A subclass holds its state as plain attributes, validates in command methods and records
events; ``@applies(EventClass)`` marks the method that changes state for that event::

    class Account(Aggregate):
        registry = bank_events            # where its event classes are registered

        def __init__(self, id: str) -> None:
            super().__init__(id)
            self.balance = 0

        def deposit(self, amount: int) -> None:
            if amount <= 0:
                raise InvalidAmount(amount)
            self.record(Deposited(amount=amount))

        @applies(Deposited)
        def _deposited(self, event: Deposited) -> None:
            self.balance += event.amount

``record`` applies the event at once (so later checks in the same command see it) and keeps
it pending until a :class:`~streamsource.Repository` saves it. Rebuilding an aggregate is
applying its stored events in order: the same ``@applies`` methods, no other code path.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from streamsource.errors import NotSupportedError, ProgrammingError
from streamsource.eventstore.domain.typed_events import EventRegistry, default_registry
from streamsource.eventstore.event_ids import new_event_id

F = TypeVar("F", bound=Callable[..., None])

_APPLIES_ATTR = "__streamsource_applies__"


def applies(*event_types: type[Any]) -> Callable[[F], F]:
    """Mark an aggregate method as the one that applies events of ``event_types``."""
    if not event_types:
        raise ProgrammingError("@applies needs at least one event class")

    def mark(method: F) -> F:
        setattr(method, _APPLIES_ATTR, event_types)
        return method

    return mark


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event recorded by a command and not saved yet. ``id`` stays the same on retries."""

    event: Any
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: uuid.UUID = field(default_factory=new_event_id)


class Aggregate:
    """Base class of event-sourced aggregates (see the module docstring).

    A subclass's ``__init__`` takes the aggregate id only (repositories build empty
    aggregates with ``cls(id)`` before applying events or a snapshot) and sets the initial
    state. Class settings a subclass may override:

    * ``registry``: the :class:`EventRegistry` its events are registered in.
    * ``category``: the stream name prefix (default: the class name, lowercased); the
      stream of aggregate ``id`` is ``f"{category}-{id}"`` (override :meth:`stream_name`
      for another scheme).
    * ``snapshot_every``: take a snapshot every N events (``None`` or 0: never); needs
      :meth:`snapshot_state` and :meth:`restore_snapshot`. A repository may override it.
    * ``snapshot_schema``: bump it when the snapshot state's shape changes; snapshots of
      another schema are ignored (the aggregate is rebuilt from events instead).
    """

    registry: ClassVar[EventRegistry] = default_registry
    category: ClassVar[str] = ""
    snapshot_every: ClassVar[int | None] = None
    snapshot_schema: ClassVar[int] = 1

    _appliers: ClassVar[dict[type[Any], str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        appliers: dict[type[Any], str] = {}
        for klass in reversed(cls.__mro__):  # subclasses override their bases' appliers
            for name, member in vars(klass).items():
                for event_type in getattr(member, _APPLIES_ATTR, ()):
                    appliers[event_type] = name
        cls._appliers = appliers

    def __init__(self, id: str) -> None:
        self.id = id
        self.version: int | None = None  # last applied version; None: no event yet
        self._saved_version: int | None = None  # the stream's version when loaded/saved
        self._pending: list[PendingEvent] = []

    # -- naming ---------------------------------------------------------------------------

    @classmethod
    def stream_category(cls) -> str:
        """The category (stream name prefix) of this aggregate type's streams."""
        return cls.category or cls.__name__.lower()

    @classmethod
    def stream_name(cls, id: str) -> str:
        """The name of the stream holding the events of aggregate ``id``."""
        return f"{cls.stream_category()}-{id}"

    @property
    def stream(self) -> str:
        """The name of this aggregate's stream."""
        return self.stream_name(self.id)

    # -- recording and applying -----------------------------------------------------------

    def record(self, event: object, *, metadata: Mapping[str, Any] | None = None) -> None:
        """Apply ``event`` now and keep it pending until the aggregate is saved."""
        self.registry.type_of(event)  # refuse unregistered classes before changing state
        self.apply(event)
        self.version = 0 if self.version is None else self.version + 1
        self._pending.append(PendingEvent(event, dict(metadata or {})))

    def apply(self, event: object) -> None:
        """Change state for one event, via the method marked ``@applies(type(event))``."""
        name = self._appliers.get(type(event))
        if name is None:
            raise ProgrammingError(
                f"{type(self).__qualname__} has no @applies method for {type(event).__qualname__}"
            )
        getattr(self, name)(event)

    @property
    def pending_events(self) -> tuple[Any, ...]:
        """The events recorded since the aggregate was loaded or last saved."""
        return tuple(pending.event for pending in self._pending)

    @property
    def saved_version(self) -> int | None:
        """The stream's version when the aggregate was loaded or last saved (None: new)."""
        return self._saved_version

    # -- snapshot hooks -------------------------------------------------------------------

    def snapshot_state(self) -> Any:
        """The aggregate's state as JSON-ready data; override to enable snapshots."""
        raise NotSupportedError(
            f"{type(self).__qualname__} does not implement snapshot_state()/restore_snapshot()"
        )

    def restore_snapshot(self, state: Any) -> None:
        """Set the state from what :meth:`snapshot_state` returned; override with it."""
        raise NotSupportedError(
            f"{type(self).__qualname__} does not implement snapshot_state()/restore_snapshot()"
        )

    # -- used by repositories -------------------------------------------------------------

    def _replay(self, event: object, version: int) -> None:
        """Apply a stored event (no pending entry): rebuilding is applying in order."""
        self.apply(event)
        self.version = version
        self._saved_version = version

    def _restored_at(self, version: int) -> None:
        self.version = version
        self._saved_version = version

    def _pending_list(self) -> list[PendingEvent]:
        return list(self._pending)

    def _mark_saved(self, version: int) -> None:
        self._pending.clear()
        self.version = version
        self._saved_version = version

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} {self.id!r} version={self.version}>"
