"""Cross-check with independent implementations: their readers parse what we write.

For every API and version, a message with every field of that version populated (every
array holding one element) is encoded by our codec and must be read, consuming exactly
all the bytes, by kio (generated from Kafka's current JSON definitions; it lacks the
oldest versions) and by kafka-python's hand-written legacy schemas (``kafka.protocol.old``,
which has the old versions).
"""

from __future__ import annotations

import importlib
import io
import re
import uuid
from typing import Any

import pytest

from streamsource.kafka.protocol import REQUESTS, RESPONSES, SUPPORTED_VERSIONS
from streamsource.kafka.protocol.compiler import codec
from streamsource.kafka.protocol.schema import (
    BOOL,
    BYTES,
    FLOAT64,
    RECORDS,
    STRING,
    STRUCT,
    UUID,
    Array,
    Kind,
    Message,
    Struct,
)

kio_serial: Any
try:
    from kio import serial as kio_serial
except ImportError:  # each kio test skips instead; a full run (conftest.py) fails on the skip
    kio_serial = None


@pytest.fixture
def kio() -> Any:
    if kio_serial is None:
        pytest.skip("kio is not installed")
    return kio_serial


def _scalar(kind: Kind, name: str) -> Any:
    if kind is STRING:
        return f"{name}-x"
    if kind in (BYTES, RECORDS):
        return b"\x01\x02\x03"
    if kind is BOOL:
        return True
    if kind is FLOAT64:
        return 1.5
    if kind is UUID:
        return uuid.UUID(int=0x1234)
    return 0 if name.endswith("error_code") else 7  # kio maps error codes to an enum


def populated(cls: type[Struct], version: int) -> Any:
    """An instance with every field of ``version`` set to a non-default value."""
    values: dict[str, Any] = {}
    for spec in cls.FIELDS:
        if version not in spec.versions:
            continue
        kind = spec.kind
        if kind is STRUCT:
            values[spec.name] = populated(spec.element_class(), version)
        elif isinstance(kind, Array):
            element = kind.element
            item = (
                populated(spec.element_class(), version)
                if element is None
                else _scalar(element, spec.name)
            )
            values[spec.name] = [item]
        else:
            values[spec.name] = _scalar(kind, spec.name)
    return cls(**values)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _kio_cases() -> list[tuple[type[Message], int, Any]]:
    cases: list[tuple[type[Message], int, Any]] = []
    if kio_serial is None:
        return cases
    for api_key, (low, high) in sorted(SUPPORTED_VERSIONS.items()):
        for kind, table in (("request", REQUESTS), ("response", RESPONSES)):
            cls = table[api_key]
            api = _snake(cls.__name__[: -len(kind)])
            for version in range(low, high + 1):
                try:
                    module = importlib.import_module(f"kio.schema.{api}.v{version}.{kind}")
                except ImportError:
                    continue
                cases.append((cls, version, getattr(module, cls.__name__)))
    return cases


CASES = _kio_cases()


@pytest.mark.parametrize(
    ("cls", "version", "kio_cls"), CASES, ids=[f"{c.__name__}-v{v}" for c, v, _ in CASES]
)
def test_kio_reads_what_we_write(kio: Any, cls: type[Message], version: int, kio_cls: Any) -> None:
    message = populated(cls, version)
    _, encode = codec(cls, version, version in cls.FLEXIBLE)
    out = bytearray()
    encode(message, out, None)

    entity, size = kio.entity_reader(kio_cls)(bytes(out), 0)

    assert size == len(out)
    for spec in cls.FIELDS:
        if version in spec.versions and spec.kind.fmt is not None:
            theirs = getattr(entity, spec.name, None)
            if isinstance(theirs, int | bool | float):  # kio renames a few (throttle_time)
                assert theirs == getattr(message, spec.name), spec.name


def test_kio_covers_most_versions(kio: Any) -> None:
    assert len(CASES) > 200


_KAFKA_PYTHON_MODULES = [
    "produce",
    "fetch",
    "list_offsets",
    "commit",
    "admin",
    "metadata",
    "group",
    "find_coordinator",
    "api_versions",
    "init_producer_id",
]


# kafka-python's legacy schemas that are wrong, checked against kio (Kafka's JSON):
# DescribeAcls v2 "enables flexible versions" in a comment but reuses v1's schema;
# DescribeLogDirs v0 declares a topic's partitions as one int32 instead of an array of them
_KAFKA_PYTHON_WRONG = {
    "DescribeAclsRequest_v2",
    "DescribeAclsResponse_v2",
    "DescribeLogDirsRequest_v0",
}


def _kafka_python_cases() -> list[tuple[type[Message], int, Any]]:
    modules = []
    for name in _KAFKA_PYTHON_MODULES:
        try:
            modules.append(importlib.import_module(f"kafka.protocol.old.{name}"))
        except ImportError:
            continue
    cases = []
    for api_key, (low, high) in sorted(SUPPORTED_VERSIONS.items()):
        for table in (REQUESTS, RESPONSES):
            cls = table[api_key]
            for version in range(low, high + 1):
                name = f"{cls.__name__}_v{version}"
                if name in _KAFKA_PYTHON_WRONG:
                    continue
                for module in modules:
                    if hasattr(module, name):
                        cases.append((cls, version, getattr(module, name)))
                        break
    return cases


OLD_CASES = _kafka_python_cases()


@pytest.mark.parametrize(
    ("cls", "version", "theirs"),
    OLD_CASES,
    ids=[f"{c.__name__}-v{v}" for c, v, _ in OLD_CASES],
)
def test_kafka_python_reads_what_we_write(cls: type[Message], version: int, theirs: Any) -> None:
    _, encode = codec(cls, version, version in cls.FLEXIBLE)
    out = bytearray()
    encode(populated(cls, version), out, None)
    data = io.BytesIO(bytes(out))

    theirs.SCHEMA.decode(data)

    assert data.tell() == len(out)


# Versions whose bytes Kafka's JSON defines as another version's, with no reference of their
# own: (API key, version, request?) -> the version they equal. DescribeLogDirs request v0
# ("Version 1 is the same as version 0"): kio starts at v1, kafka-python's v0 is wrong.
_SAME_BYTES_AS = {(35, 0, True): 1}


@pytest.mark.parametrize(("key", "twin"), list(_SAME_BYTES_AS.items()))
def test_versions_without_a_reference_encode_as_their_twin(
    key: tuple[int, int, bool], twin: int
) -> None:
    api_key, version, is_request = key
    cls = (REQUESTS if is_request else RESPONSES)[api_key]
    message = populated(cls, version)
    ours, theirs = bytearray(), bytearray()
    codec(cls, version, version in cls.FLEXIBLE)[1](message, ours, None)
    codec(cls, twin, twin in cls.FLEXIBLE)[1](message, theirs, None)
    assert ours == theirs


def test_every_version_has_an_independent_reference() -> None:
    covered = {(c.API_KEY, v, c in REQUESTS.values()) for c, v, _ in CASES + OLD_CASES}
    covered |= {
        (api_key, version, is_request)
        for (api_key, version, is_request), twin in _SAME_BYTES_AS.items()
        if (api_key, twin, is_request) in covered
    }
    for api_key, (low, high) in SUPPORTED_VERSIONS.items():
        for version in range(low, high + 1):
            assert (api_key, version, True) in covered
            assert (api_key, version, False) in covered
