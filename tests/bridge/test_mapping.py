"""Topic names, event selection and the message format, without a broker."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import streamsource as ss
from streamsource.bridge import InvalidBridgeMessage, TopicMapping, event_from_message, message_for
from streamsource.bridge.mapping import MAX_TOPIC_LENGTH, check_topic, sanitize_topic
from streamsource.eventstore.recorder import ReadAllFilter


def test_legal_categories_are_their_own_topic() -> None:
    assert sanitize_topic("account") == "account"
    assert sanitize_topic("bank.Account_2") == "bank.Account_2"


def test_illegal_characters_become_underscores() -> None:
    assert sanitize_topic("kontō é/x") == "kont____x"
    assert sanitize_topic("order items") == "order_items"
    assert sanitize_topic("a/b:c") == "a_b_c"
    assert sanitize_topic(".") == "_."
    assert sanitize_topic("..") == "_.."
    assert sanitize_topic("") == "_"


def test_long_names_are_cut_but_stay_distinct() -> None:
    first = sanitize_topic("x" * 300 + "1")
    second = sanitize_topic("x" * 300 + "2")
    assert len(first) == len(second) == MAX_TOPIC_LENGTH
    assert first != second


@given(st.text(max_size=400))
def test_every_sanitized_name_is_legal(name: str) -> None:
    assert check_topic(sanitize_topic(name))


def test_mapping_selects_categories_and_types() -> None:
    mapping = TopicMapping.of(["account", "product"], ["Deposited"])
    assert mapping.selects("account", "Deposited")
    assert not mapping.selects("account", "Withdrawn")
    assert not mapping.selects("order", "Deposited")
    assert TopicMapping().selects("anything", "Any")
    assert TopicMapping.of([], []).selects("anything", "Any")  # empty choice: no filter


def test_topics_per_category_with_prefix_or_a_single_topic() -> None:
    assert TopicMapping(topic_prefix="bank.").topic_for("account") == "bank.account"
    assert TopicMapping(topic="all-events").topic_for("account") == "all-events"
    assert TopicMapping.of(["b", "a"]).topics() == ["a", "b"]
    assert TopicMapping().topics() is None


def test_an_illegal_fixed_topic_is_refused() -> None:
    with pytest.raises(ss.ProgrammingError):
        TopicMapping(topic="no spaces")


def test_a_message_carries_the_event_and_decodes_to_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with ss.open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        store.append(
            "account-7",
            [ss.NewEvent("Deposited", {"amount": 5, "note": "é"}, metadata={"who": "ann"})],
        )
        recorded = next(store.read_all())
        raw = next(store.recorder.read_all(filter=ReadAllFilter()))
    message = message_for(raw)
    headers = dict(message.headers)
    assert message.key == b"account-7"
    assert headers["event-id"] == str(recorded.id).encode()
    assert headers["event-type"] == b"Deposited"
    assert headers["version"] == b"0"
    assert headers["position"] == str(recorded.position).encode()
    assert headers["content-type"] == b"application/json"
    decoded = event_from_message(message.key, message.value, message.headers)
    assert decoded == recorded


def test_each_message_carries_its_own_append_time(tmp_path: Path) -> None:
    with ss.open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        store.append("account-1", [ss.NewEvent("Deposited", {"n": n}) for n in range(3)])
        time.sleep(0.002)  # a later append gets a later recorded_at
        store.append("account-2", [ss.NewEvent("Deposited", {"n": 3})])
        recorded = list(store.read_all())
        raw = list(store.recorder.read_all())
    stamps = [dict(message_for(record).headers)["recorded-at"] for record in raw]
    assert stamps == [event.recorded_at.isoformat().encode() for event in recorded]
    assert stamps[0] == stamps[2] != stamps[3]


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("event-id", b"not-a-uuid")],
        [
            ("event-id", str(uuid.uuid4()).encode()),
            ("event-type", b"T"),
            ("version", b"-1"),
            ("position", b"1"),
            ("recorded-at", b"2024-01-01T00:00:00+00:00"),
        ],
        [
            ("event-id", str(uuid.uuid4()).encode()),
            ("event-type", b"T"),
            ("version", b"1" * 40),
            ("position", b"1"),
            ("recorded-at", b"2024-01-01T00:00:00+00:00"),
        ],
        [
            ("event-id", str(uuid.uuid4()).encode()),
            ("event-type", b"\xff"),
            ("version", b"0"),
            ("position", b"1"),
            ("recorded-at", b"yesterday"),
        ],
    ],
)
def test_a_foreign_message_is_refused_clearly(headers: list[tuple[str, bytes]]) -> None:
    with pytest.raises(InvalidBridgeMessage, match=r"topic\[0\]@5"):
        event_from_message(b"s-1", b"{}", headers, where="topic[0]@5")


def test_a_value_that_is_not_json_is_refused() -> None:
    headers = [
        ("event-id", str(uuid.uuid4()).encode()),
        ("event-type", b"T"),
        ("version", b"0"),
        ("position", b"1"),
        ("recorded-at", b"2024-01-01T00:00:00+00:00"),
    ]
    with pytest.raises(InvalidBridgeMessage):
        event_from_message(b"s-1", b"{not json", headers)
