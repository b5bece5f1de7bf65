"""Property tests: data round-trips, and every combination of read options matches a model.

The models are plain list filtering over the full stream or log, so a backend's paging,
bounds and limits, and the facade's metadata and time-travel rules are checked together.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamsource as ss

PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_names = itertools.count()


@PROPERTY_SETTINGS
@given(data=json_values, metadata=st.dictionaries(st.text(max_size=8), json_values, max_size=3))
def test_any_json_data_and_metadata_round_trip(store: Any, data: Any, metadata: Any) -> None:
    stream = f"json-{next(_names)}"
    event = ss.NewEvent("Anything", data, metadata=metadata)
    store.append(stream, [event], ss.NO_STREAM)
    (recorded,) = store.read_stream(stream)
    assert recorded.data == data
    assert recorded.metadata == metadata
    assert store.append(stream, [event], ss.NO_STREAM).version == 0  # still an exact retry


TYPES = ["A", "B", "C"]


@pytest.fixture
def long_stream(store: Any) -> tuple[Any, list[Any]]:
    """A 30-event stream written in a few appends (so recorded_at values repeat and differ)."""
    for chunk in range(6):
        store.append("long-1", [ss.NewEvent(TYPES[(chunk + n) % 3], {"n": n}) for n in range(5)])
        store.append(f"other-{chunk}", [ss.NewEvent("A", {})])  # other streams in between
    return store, list(store.read_stream("long-1"))


optional_count = st.none() | st.integers(0, 33)


@PROPERTY_SETTINGS
@given(
    from_version=optional_count,
    backwards=st.booleans(),
    limit=optional_count,
    as_of_version=optional_count,
    time_index=st.none() | st.integers(0, 29),
    types=st.none() | st.sets(st.sampled_from(TYPES)),
)
def test_read_stream_options_match_the_model(
    long_stream: tuple[Any, list[Any]],
    from_version: int | None,
    backwards: bool,
    limit: int | None,
    as_of_version: int | None,
    time_index: int | None,
    types: set[str] | None,
) -> None:
    store, everything = long_stream
    as_of_time = None if time_index is None else everything[time_index].recorded_at
    expected = [
        e
        for e in everything
        if (as_of_version is None or e.version <= as_of_version)
        and (as_of_time is None or e.recorded_at <= as_of_time)
        and (types is None or e.type in types)
    ]
    if backwards:
        expected = [
            e for e in reversed(expected) if from_version is None or e.version <= from_version
        ]
    else:
        expected = [e for e in expected if from_version is None or e.version >= from_version]
    if limit is not None:
        expected = expected[:limit]
    got = store.read_stream(
        "long-1",
        from_version=from_version,
        backwards=backwards,
        limit=limit,
        as_of_version=as_of_version,
        as_of_time=as_of_time,
        types=types,
    )
    assert [e.version for e in got] == [e.version for e in expected]


@PROPERTY_SETTINGS
@given(
    from_index=st.none() | st.integers(0, 37),
    backwards=st.booleans(),
    limit=optional_count,
    category=st.none() | st.sampled_from(["long", "other", "nothing"]),
    types=st.none() | st.sets(st.sampled_from(TYPES)),
)
def test_read_all_options_match_the_model(
    long_stream: tuple[Any, list[Any]],
    from_index: int | None,
    backwards: bool,
    limit: int | None,
    category: str | None,
    types: set[str] | None,
) -> None:
    store, _ = long_stream
    log = list(store.read_all())
    positions = [e.position for e in log]
    # a bound at a position that exists, or one past the end
    bound = None
    if from_index is not None:
        bound = positions[from_index] if from_index < len(log) else positions[-1] + 1
    expected = [
        e
        for e in log
        if (category is None or e.category == category) and (types is None or e.type in types)
    ]
    if backwards:
        expected = [e for e in reversed(expected) if bound is None or e.position < bound]
    else:
        expected = [e for e in expected if bound is None or e.position > bound]
    if limit is not None:
        expected = expected[:limit]
    got = store.read_all(
        after=None if backwards else bound,
        before=bound if backwards else None,
        backwards=backwards,
        limit=limit,
        category=category,
        types=types,
    )
    assert [e.position for e in got] == [e.position for e in expected]


@PROPERTY_SETTINGS
@given(
    truncate_before=st.none() | st.integers(0, 32),
    max_count=st.none() | st.integers(0, 32),
    backwards=st.booleans(),
    as_of_version=optional_count,
)
def test_stream_metadata_matches_the_model(
    long_stream: tuple[Any, list[Any]],
    truncate_before: int | None,
    max_count: int | None,
    backwards: bool,
    as_of_version: int | None,
) -> None:
    store, everything = long_stream
    store.set_stream_metadata(
        "long-1", ss.StreamMetadata(max_count=max_count, truncate_before=truncate_before)
    )
    head = everything[-1].version
    lowest = max(truncate_before or 0, 0 if max_count is None else head - max_count + 1)
    expected = [
        e.version
        for e in everything
        if e.version >= lowest and (as_of_version is None or e.version <= as_of_version)
    ]
    got = store.read_stream("long-1", backwards=backwards, as_of_version=as_of_version)
    assert [e.version for e in got] == (expected[::-1] if backwards else expected)
