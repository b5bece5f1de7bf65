"""The declarative schema layer: wire types, version ranges, fields, structs and messages.

A message is declared once, as a class whose annotated attributes are ``field(...)`` calls
naming the field's wire type and the versions it exists in, the way Apache Kafka's JSON
message definitions do::

    class ProduceRequest(Message, api_key=0, versions="0-9", flexible="9+"):
        class PartitionProduceData(Struct):
            index: int = field(INT32)
            records: Records | None = field(RECORDS, nullable="0+")
        ...
        acks: int = field(INT16)

Classes become keyword-only dataclasses whose fields are the union over all versions; a
field absent from the version being decoded keeps its default. The codec for one
(class, version) is compiled on first use by ``streamsource.kafka.protocol.compiler``.
Arrays of structs and struct fields take their element class from the annotation
(``list[ProduceRequest.PartitionProduceData]``), so nested classes can refer to each other.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import typing
import uuid
from collections.abc import Callable
from typing import Any, ClassVar, dataclass_transform

MAX_VERSION = 0x7FFF


class OpaqueChunk(typing.Protocol):
    """Record data the encoder passes on as a chunk of its own without looking inside (the
    broker's file regions, which its connection sends with ``sendfile``)."""

    def __len__(self) -> int: ...


#: Record data as carried by Produce requests and Fetch responses. Decoding yields a
#: ``memoryview`` into the frame (no copy); encoding also accepts a list of chunks, which
#: are written one after the other without being joined.
Records = bytes | bytearray | memoryview | list[bytes | bytearray | memoryview | OpaqueChunk]

ZERO_UUID = uuid.UUID(int=0)


class Versions:
    """An inclusive range of versions, parsed from Kafka's notation: ``"3+"``, ``"0-2"``, ``"none"``."""

    __slots__ = ("high", "low")

    def __init__(self, spec: str) -> None:
        spec = spec.strip()
        if spec == "none":
            self.low, self.high = 1, 0
        elif spec.endswith("+"):
            self.low, self.high = int(spec[:-1]), MAX_VERSION
        elif "-" in spec:
            low, high = spec.split("-")
            self.low, self.high = int(low), int(high)
        else:
            self.low = self.high = int(spec)

    def __contains__(self, version: int) -> bool:
        return self.low <= version <= self.high

    def __repr__(self) -> str:
        if self.low > self.high:
            return "Versions('none')"
        if self.high == MAX_VERSION:
            return f"Versions('{self.low}+')"
        return f"Versions('{self.low}-{self.high}')"


class Kind:
    """A wire type. ``fmt`` is the ``struct`` code of fixed-size types; ``min_size`` bounds arrays."""

    __slots__ = ("default", "fmt", "min_size", "name")

    def __init__(self, name: str, fmt: str | None, min_size: int, default: Any) -> None:
        self.name = name
        self.fmt = fmt
        self.min_size = min_size
        self.default = default

    def __repr__(self) -> str:
        return self.name


INT8 = Kind("int8", "b", 1, 0)
INT16 = Kind("int16", "h", 2, 0)
INT32 = Kind("int32", "i", 4, 0)
INT64 = Kind("int64", "q", 8, 0)
UINT16 = Kind("uint16", "H", 2, 0)
UINT32 = Kind("uint32", "I", 4, 0)
FLOAT64 = Kind("float64", "d", 8, 0.0)
BOOL = Kind("bool", "?", 1, False)
VARINT = Kind("varint", None, 1, 0)  # zigzag int32
VARLONG = Kind("varlong", None, 1, 0)  # zigzag int64
UVARINT = Kind("uvarint", None, 1, 0)
UUID = Kind("uuid", None, 16, ZERO_UUID)
STRING = Kind("string", None, 1, "")
BYTES = Kind("bytes", None, 1, b"")
RECORDS = Kind("records", None, 1, None)
STRUCT = Kind("struct", None, 1, None)  # element class taken from the annotation


class Array(Kind):
    """An array of ``element``; ``Array()`` means an array of structs (class from the annotation)."""

    __slots__ = ("element",)

    def __init__(self, element: Kind | None = None) -> None:
        super().__init__(f"[]{element.name if element else 'struct'}", None, 1, None)
        self.element = element


ARRAY = Array()


class FieldSpec:
    """One declared field: name, wire type, versions, nullability, tag and default."""

    __slots__ = (
        "default",
        "default_factory",
        "kind",
        "name",
        "nullable",
        "owner",
        "struct",
        "tag",
        "versions",
    )

    def __init__(
        self,
        kind: Kind,
        versions: str,
        nullable: str,
        tag: int | None,
        default: Any,
        default_factory: Callable[[], Any] | None,
    ) -> None:
        self.kind = kind
        self.versions = Versions(versions)
        self.nullable = Versions(nullable)
        self.tag = tag
        self.default = default
        self.default_factory = default_factory
        self.name = ""
        self.owner: type[Struct] | None = None
        self.struct: type[Struct] | None = None  # resolved element class of struct fields

    def element_class(self) -> type[Struct]:
        """The struct class of a struct or array-of-struct field, resolved from the annotation."""
        if self.struct is None:
            assert self.owner is not None
            module = sys.modules[self.owner.__module__]
            hint = eval(self.owner.__annotations__[self.name], vars(module))
            self.struct = _struct_in(hint)
        return self.struct

    def make_default(self) -> Any:
        """A fresh default value (new list/struct each time)."""
        if self.default_factory is not None:
            return self.default_factory()
        return self.default

    def __repr__(self) -> str:
        return f"<field {self.name}: {self.kind} {self.versions}>"


def _struct_in(hint: Any) -> type[Struct]:
    """Find the Struct subclass inside ``X``, ``list[X]``, ``X | None``."""
    if isinstance(hint, type) and issubclass(hint, Struct):
        return hint
    for arg in typing.get_args(hint):
        if arg is not type(None):
            try:
                return _struct_in(arg)
            except TypeError:
                continue
    raise TypeError(f"no Struct class in annotation {hint!r}")


_UNSET: Any = object()


def field(
    kind: Kind,
    versions: str = "0+",
    *,
    nullable: str = "none",
    tag: int | None = None,
    default: Any = _UNSET,
) -> Any:
    """Declare a field of wire type ``kind`` existing in ``versions``.

    ``nullable``: versions in which null is allowed. ``tag``: the tag of a tagged field (only
    written in flexible versions, and only when it differs from its default). ``default``:
    the value when the field is absent from a version (else 0, "", b"", [] or a default struct).
    """
    factory: Callable[[], Any] | None = None
    if default is _UNSET:
        if isinstance(kind, Array):
            default, factory = None, list
        elif kind is STRUCT:
            default = None
        else:
            default = kind.default
    return FieldSpec(kind, versions, nullable, tag, default, factory)


@dataclass_transform(kw_only_default=True)
class Struct:
    """Base of every message and nested struct: a keyword-only dataclass with a field table."""

    FIELDS: ClassVar[tuple[FieldSpec, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        specs: list[FieldSpec] = []
        for name in inspect.get_annotations(cls):
            spec = cls.__dict__.get(name)
            if not isinstance(spec, FieldSpec):
                continue
            spec.name = name
            spec.owner = cls
            if spec.kind is STRUCT and spec.default_factory is None and spec.default is None:
                spec.default_factory = _lazy_struct(spec)
            if spec.default_factory is not None:
                setattr(cls, name, dataclasses.field(default_factory=spec.default_factory))
            else:
                setattr(cls, name, spec.default)
            specs.append(spec)
        cls.FIELDS = tuple(specs)
        dataclasses.dataclass(kw_only=True)(cls)


def _lazy_struct(spec: FieldSpec) -> Callable[[], Any]:
    def make() -> Any:
        return spec.element_class()()

    return make


class Message(Struct):
    """A request or response body of one API. Class keywords: api_key, versions, flexible."""

    API_KEY: ClassVar[int] = -1
    VERSIONS: ClassVar[Versions] = Versions("none")
    FLEXIBLE: ClassVar[Versions] = Versions("none")

    def __init_subclass__(
        cls,
        api_key: int = -1,
        versions: str = "none",
        flexible: str = "none",
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.API_KEY = api_key
        cls.VERSIONS = Versions(versions)
        cls.FLEXIBLE = Versions(flexible)
