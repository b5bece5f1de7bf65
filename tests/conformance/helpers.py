"""Small helpers shared by the conformance tests."""

from __future__ import annotations

from typing import Any

import streamsource as ss


def events(*types: str, **data: Any) -> list[ss.NewEvent]:
    """New events of the given types, each with ``data`` plus its index."""
    return [ss.NewEvent(t, {**data, "n": i}) for i, t in enumerate(types)]


def log_of(store: Any) -> list[tuple[str, int, int, str]]:
    """The whole log as (stream, version, position, type) tuples: what 'nothing written' compares."""
    return [(e.stream, e.version, e.position, e.type) for e in store.read_all()]


def versions(store: Any, stream: str, **options: Any) -> list[int]:
    return [e.version for e in store.read_stream(stream, **options)]
