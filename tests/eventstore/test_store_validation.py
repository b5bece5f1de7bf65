"""The argument checks, as pure functions (the conformance suite checks them through stores)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

import streamsource as ss
from streamsource.eventstore.events import ExpectedVersion
from streamsource.eventstore.validation import (
    MAX_STREAM_NAME_LENGTH,
    check_expected_version,
    check_stream_name,
    check_types,
    check_version_matches,
)

control = st.characters(categories=["Cc"])
ordinary = st.text(
    st.characters(exclude_categories=["Cc", "Cs"]), min_size=1, max_size=MAX_STREAM_NAME_LENGTH
)


@given(ordinary)
def test_names_without_control_characters_are_accepted(name: str) -> None:
    assert check_stream_name(name) == name


@given(ordinary, control, st.integers(0, 10))
def test_any_control_character_is_refused(name: str, bad: str, where: int) -> None:
    spoiled = (name[:where] + bad + name[where:])[:MAX_STREAM_NAME_LENGTH]
    if not any(unicodedata.category(c) == "Cc" for c in spoiled):
        return  # the cut removed it
    with pytest.raises(ss.InvalidStreamName, match="control character"):
        check_stream_name(spoiled)


@given(st.integers(0, 2**62))
def test_every_non_negative_int_is_an_expected_version(version: int) -> None:
    assert check_expected_version(version) == version


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        (ss.ANY, None, True),
        (ss.ANY, 4, True),
        (ss.NO_STREAM, None, True),
        (ss.NO_STREAM, 0, False),
        (ss.STREAM_EXISTS, None, False),
        (ss.STREAM_EXISTS, 0, True),
        (3, 3, True),
        (3, 2, False),
        (0, None, False),
    ],
)
def test_version_matching(expected: ExpectedVersion, actual: int | None, ok: bool) -> None:
    if ok:
        check_version_matches("s-1", expected, actual)
    else:
        with pytest.raises(ss.WrongExpectedVersion) as caught:
            check_version_matches("s-1", expected, actual)
        assert (caught.value.expected, caught.value.actual) == (expected, actual)


def test_a_single_type_name_is_not_split_into_letters() -> None:
    assert check_types("Deposited") == frozenset({"Deposited"})
    assert check_types(["A", "B", "A"]) == frozenset({"A", "B"})
    assert check_types(None) is None
