"""Hypothesis strategies that build any message at any version, straight from its schema."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import strategies as st

from streamsource.kafka.protocol.schema import (
    BOOL,
    BYTES,
    FLOAT64,
    INT8,
    INT16,
    INT32,
    INT64,
    RECORDS,
    STRING,
    STRUCT,
    UINT16,
    UINT32,
    UUID,
    Array,
    FieldSpec,
    Kind,
    Struct,
)

_INTS = {
    INT8: (-(2**7), 2**7 - 1),
    INT16: (-(2**15), 2**15 - 1),
    INT32: (-(2**31), 2**31 - 1),
    INT64: (-(2**63), 2**63 - 1),
    UINT16: (0, 2**16 - 1),
    UINT32: (0, 2**32 - 1),
}

_text = st.text(max_size=12)


def _scalar(kind: Kind) -> st.SearchStrategy[Any]:
    if kind in _INTS:
        low, high = _INTS[kind]
        return st.integers(low, high)
    if kind is BOOL:
        return st.booleans()
    if kind is FLOAT64:
        return st.floats(allow_nan=False)
    if kind is STRING:
        return _text
    if kind is BYTES:
        return st.binary(max_size=16)
    if kind is RECORDS:
        return st.binary(max_size=40)
    if kind is UUID:
        return st.builds(uuid.UUID, int=st.integers(0, 2**128 - 1))
    raise AssertionError(kind)


def _value(spec: FieldSpec, version: int) -> st.SearchStrategy[Any]:
    kind = spec.kind
    if kind is STRUCT:
        value = message(spec.element_class(), version)
    elif isinstance(kind, Array):
        element = (
            message(spec.element_class(), version)
            if kind.element is None
            else _scalar(kind.element)
        )
        value = st.lists(element, max_size=3)
    else:
        value = _scalar(kind)
    if version in spec.nullable:
        return st.none() | value
    return value


def message(cls: type[Struct], version: int) -> st.SearchStrategy[Any]:
    """Instances of ``cls`` with every field present at ``version`` drawn at random."""
    present = {spec.name: _value(spec, version) for spec in cls.FIELDS if version in spec.versions}
    return st.builds(cls, **present)
