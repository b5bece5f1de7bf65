"""Typed domain events: classes with a registered name and schema version, and upcasters.

An event class is a ``msgspec.Struct`` or a dataclass registered under the name it is
stored with and the version of its schema::

    registry = EventRegistry()

    @registry.event("Deposited", version=2)
    class Deposited(msgspec.Struct, frozen=True):
        amount: int
        currency: str

    @registry.upcaster("Deposited", from_version=1)
    def _add_currency(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "currency": "EUR"}

The schema version an event was written with is kept in its metadata under
``schema_version``. On read, upcasters are chained (1 -> 2 -> ... -> current) over the stored
data dict before it is converted to the class, so old events never have to be rewritten.
Registering a class again under a new name is a rename: new events are stored under the new
name and events stored under the old one still read as that class.

The module-level :func:`event` and :func:`upcaster` use :data:`default_registry`; an app may
keep its own registry so that its names cannot clash with another app's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from streamsource.errors import DataError, ProgrammingError, UnknownEventType
from streamsource.eventstore.events import RecordedEvent

SCHEMA_VERSION = "schema_version"
"""The metadata key holding the schema version an event was written with (1 if absent)."""

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns the data of schema version N into the data of version N + 1."""

T = TypeVar("T")
U = TypeVar("U", bound=Upcaster)


class InvalidEventData(DataError):
    """Stored event data (after upcasting) does not fit its registered class."""


@dataclass(frozen=True, slots=True)
class EventType:
    """A registered event class: the name it is stored under and its current schema version."""

    name: str
    version: int
    cls: type[Any]


class EventRegistry:
    """Maps stored event type names to classes (and back), and upcasts old schema versions."""

    def __init__(self) -> None:
        self._by_name: dict[str, EventType] = {}
        self._by_class: dict[type[Any], EventType] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    # -- registration ---------------------------------------------------------------------

    def event(self, name: str | None = None, *, version: int = 1) -> Callable[[type[T]], type[T]]:
        """Class decorator: register the class under ``name`` (default: the class name)."""

        def register(cls: type[T]) -> type[T]:
            self.register(cls, name, version=version)
            return cls

        return register

    def register(self, cls: type[Any], name: str | None = None, *, version: int = 1) -> None:
        """Register ``cls`` as the current shape of event type ``name`` at schema ``version``."""
        if not isinstance(cls, type) or not (
            issubclass(cls, msgspec.Struct) or dataclasses.is_dataclass(cls)
        ):
            raise ProgrammingError(f"event class {cls!r} must be a msgspec.Struct or a dataclass")
        name = cls.__name__ if name is None else name
        if not isinstance(name, str) or not name:
            raise ProgrammingError(f"event type name of {cls.__qualname__} must be non-empty")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ProgrammingError(
                f"schema version of {name!r} must be an int >= 1, not {version!r}"
            )
        known = self._by_name.get(name)
        if known is not None and not _same_definition(known.cls, cls):
            raise ProgrammingError(
                f"event type {name!r} is already registered to {known.cls.__module__}."
                f"{known.cls.__qualname__}"
            )
        if known is not None:  # the same class defined again (a module re-import)
            self._by_class.pop(known.cls, None)
        entry = EventType(name, version, cls)
        self._by_name[name] = entry
        self._by_class[cls] = entry

    def upcaster(self, name: str, *, from_version: int) -> Callable[[U], U]:
        """Function decorator: register an upcaster of ``name`` data from ``from_version``."""

        def register(fn: U) -> U:
            self.add_upcaster(name, from_version, fn)
            return fn

        return register

    def add_upcaster(self, name: str, from_version: int, fn: Upcaster) -> None:
        """Register ``fn`` turning ``name`` data of ``from_version`` into ``from_version + 1``."""
        if isinstance(from_version, bool) or not isinstance(from_version, int) or from_version < 1:
            raise ProgrammingError(f"upcaster of {name!r}: from_version must be an int >= 1")
        key = (name, from_version)
        known = self._upcasters.get(key)
        if known is not None and not _same_definition(known, fn):
            raise ProgrammingError(f"{name!r} already has an upcaster from version {from_version}")
        self._upcasters[key] = fn

    # -- lookup ---------------------------------------------------------------------------

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        """The registered event type names, sorted."""
        return sorted(self._by_name)

    def type_of(self, event: object) -> EventType:
        """The registration of ``event``'s class; UnknownEventType if it has none."""
        entry = self._by_class.get(type(event))
        if entry is None:
            raise UnknownEventType(
                f"{type(event).__qualname__} is not a registered event class "
                "(decorate it with @event(...) in the aggregate's registry)"
            )
        return entry

    def type_for(self, cls: type[Any]) -> EventType:
        """The registration of the class ``cls``; UnknownEventType if it has none."""
        entry = self._by_class.get(cls)
        if entry is None:
            raise UnknownEventType(
                f"{cls.__qualname__} is not a registered event class "
                "(decorate it with @event(...) in the aggregate's registry)"
            )
        return entry

    def type_named(self, name: str) -> EventType:
        """The registration of the stored type ``name``; UnknownEventType if there is none."""
        entry = self._by_name.get(name)
        if entry is None:
            raise UnknownEventType(f"stored event type {name!r} has no registered class")
        return entry

    # -- encoding -------------------------------------------------------------------------

    def encode(self, event: object) -> tuple[str, dict[str, Any], int]:
        """``(type name, JSON-ready data, schema version)`` of a registered event object."""
        entry = self.type_of(event)
        data = msgspec.to_builtins(event)
        if not isinstance(data, dict):
            raise ProgrammingError(f"event {entry.name!r} must encode to a JSON object")
        return entry.name, data, entry.version

    def decode(self, name: str, data: Any, schema_version: int = 1, *, where: str = "") -> Any:
        """Upcast stored ``data`` of ``schema_version`` to the current class and build it."""
        entry = self.type_named(name)
        at = f" ({where})" if where else ""
        if schema_version > entry.version:
            raise UnknownEventType(
                f"stored {name!r} has schema version {schema_version}, newer than the "
                f"registered class's version {entry.version}{at}"
            )
        if schema_version < entry.version:
            if not isinstance(data, Mapping):
                raise InvalidEventData(f"stored {name!r} data is not a JSON object{at}")
            data = dict(data)
            for version in range(schema_version, entry.version):
                step = self._upcasters.get((name, version))
                if step is None:
                    raise UnknownEventType(
                        f"no upcaster for {name!r} from schema version {version} to "
                        f"{version + 1}{at}"
                    )
                data = step(data)
        try:
            return msgspec.convert(data, entry.cls)
        except msgspec.ValidationError as exc:
            raise InvalidEventData(
                f"stored {name!r} (schema version {schema_version}) does not fit "
                f"{entry.cls.__qualname__}: {exc}{at}"
            ) from exc

    def decode_recorded(self, recorded: RecordedEvent) -> Any:
        """The typed event object of a stored event (upcast from its stored schema version)."""
        version = recorded.metadata.get(SCHEMA_VERSION, 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidEventData(
                f"event {recorded.stream}@{recorded.version}: bad {SCHEMA_VERSION} {version!r}"
            )
        return self.decode(
            recorded.type,
            recorded.data,
            version,
            where=f"stream {recorded.stream!r} version {recorded.version}",
        )


def _same_definition(a: object, b: object) -> bool:
    """True when ``a`` and ``b`` are the same definition, possibly from a re-imported module."""
    if a is b:
        return True
    return bool(
        getattr(a, "__module__", None) == getattr(b, "__module__", None)
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
    )


default_registry = EventRegistry()
"""The registry used by :func:`event`, :func:`upcaster` and aggregates that name no other."""


def event(name: str | None = None, *, version: int = 1) -> Callable[[type[T]], type[T]]:
    """Register an event class in :data:`default_registry` (see :meth:`EventRegistry.event`)."""
    return default_registry.event(name, version=version)


def upcaster(name: str, *, from_version: int) -> Callable[[U], U]:
    """Register an upcaster in :data:`default_registry` (see :meth:`EventRegistry.upcaster`)."""
    return default_registry.upcaster(name, from_version=from_version)
