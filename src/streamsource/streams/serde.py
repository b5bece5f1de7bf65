"""Serializers: how keys and values become bytes on a topic and in a state store.

A serializer is any object with ``dumps(value) -> bytes`` and ``loads(data) -> value``.
:func:`serializer_for` picks the default for a declared type: JSON through msgspec, which
encodes and decodes msgspec structs, dataclasses and plain dicts/lists natively and
validates what it decodes against the type (a bad record raises :class:`BadRecord` naming
the type instead of handing a half-typed value to user code). ``str`` keys are UTF-8, and
``bytes`` pass through untouched.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from streamsource.streams.errors import BadRecord


class Serializer(Protocol):
    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class Json:
    """JSON through msgspec; ``type`` (a struct, dataclass, dict, ...) validates decoding."""

    def __init__(self, type: Any = Any) -> None:
        self.type = type
        self._encode = msgspec.json.Encoder().encode
        self._decoder = msgspec.json.Decoder(type)

    def dumps(self, value: Any) -> bytes:
        return self._encode(value)

    def loads(self, data: bytes) -> Any:
        try:
            return self._decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise BadRecord(f"not a JSON {_type_name(self.type)}: {exc}") from None


class Text:
    """UTF-8 strings (the usual key)."""

    def dumps(self, value: Any) -> bytes:
        return str(value).encode()

    def loads(self, data: bytes) -> Any:
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            raise BadRecord(f"not UTF-8 text: {exc}") from None


class Raw:
    """Bytes as they are."""

    def dumps(self, value: Any) -> bytes:
        return bytes(value)

    def loads(self, data: bytes) -> Any:
        return data


def serializer_for(spec: Any) -> Serializer:
    """``spec`` is a serializer already, ``str``, ``bytes``, or a type to read as JSON."""
    if hasattr(spec, "dumps") and hasattr(spec, "loads") and not isinstance(spec, type):
        return spec  # type: ignore[no-any-return]
    if spec is str:
        return Text()
    if spec is bytes:
        return Raw()
    return Json(spec)


def _type_name(type: Any) -> str:
    return getattr(type, "__name__", None) or str(type)
