"""The envelope and channel names (no I/O): bad fields are refused by name, a malformed
traceparent is dropped as W3C says, headers carry every field."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from streamsource.errors import ProgrammingError
from streamsource.eventstore.events import RecordedEvent
from streamsource.messaging import Channels, Envelope, InvalidMessage
from streamsource.messaging.envelope import kafka_headers

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _event(**metadata: Any) -> RecordedEvent:
    base = {"kind": "command", "channel": "mall.payments.commands", "source": "ordering",
            "correlation_id": "c-1"}  # fmt: skip
    return RecordedEvent(
        uuid.UUID(int=7), "s", 0, 1, "Charge", {}, {**base, **metadata}, datetime.now(UTC)
    )


def test_an_envelope_goes_into_metadata_and_back() -> None:
    sent = Envelope(
        message_id=str(uuid.UUID(int=7)),
        name="Charge",
        kind="command",
        channel="mall.payments.commands",
        source="ordering",
        correlation_id="c-1",
        causation_id="m-0",
        reply_to="mall.cosec.replies.CreateOrder",
        saga_id="s-1",
        saga_name="CreateOrder",
        sent_at=datetime(2026, 12, 5, tzinfo=UTC),
        traceparent=TRACEPARENT,
        key="order-1",
        schema_version=3,
    )
    event = RecordedEvent(
        uuid.UUID(int=7), "s", 0, 1, "Charge", {}, sent.metadata(), datetime.now(UTC)
    )
    assert Envelope.of(event) == sent
    headers = dict(kafka_headers(sent))
    assert headers["reply-to"] == b"mall.cosec.replies.CreateOrder"
    assert headers["saga-name"] == b"CreateOrder"
    assert headers["traceparent"] == TRACEPARENT.encode()
    assert headers["schema-version"] == b"3"
    assert headers["sent-at"] == b"2026-12-05T00:00:00+00:00"


@pytest.mark.parametrize(
    ("metadata", "named"),
    [
        ({"kind": "gossip"}, "kind 'gossip'"),
        ({"kind": None}, "field kind is missing"),
        ({"kind": ["command"]}, "field kind is not a string"),
        ({"saga_id": {"id": 1}}, "field saga_id is not a string"),
        ({"channel": 5}, "field channel is not a string"),
        ({"correlation_id": ""}, "field correlation_id is missing"),
        ({"reply_to": "x" * 2000}, "field reply_to is not a string of at most 1024"),
        ({"sent_at": "yesterday"}, "sent_at 'yesterday' is not ISO 8601"),
        ({"schema_version": 0}, "schema_version 0 is not an int >= 1"),
        ({"schema_version": True}, "schema_version True"),
    ],
)
def test_a_bad_envelope_is_refused_naming_the_field(metadata: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidMessage, match=named.replace("(", r"\(")):
        Envelope.of(_event(**metadata))


def test_a_malformed_traceparent_is_ignored() -> None:
    assert Envelope.of(_event(traceparent="not-a-trace")).traceparent is None
    assert Envelope.of(_event(traceparent=TRACEPARENT)).traceparent == TRACEPARENT


def test_channel_names() -> None:
    mall = Channels("mall")
    assert mall.commands("ordering") == "mall.ordering.commands"
    assert mall.events("stores") == "mall.stores.events"
    assert mall.replies("cosec") == "mall.cosec.replies"
    assert mall.replies("cosec", "CreateOrder") == "mall.cosec.replies.CreateOrder"
    assert mall.dead_letters("payments") == "mall.payments.dead-letters"
    assert Channels().commands("ordering") == "ordering.commands"
    custom = Channels("mall", commands_pattern="{namespace}cmd.{service}")
    assert custom.commands("depot") == "mall.cmd.depot"
    with pytest.raises(ProgrammingError, match="not a legal Kafka topic name"):
        Channels("mall").replies("cosec", "Create Order")
