"""Dead letters: the messages a service parked, listed and replayed.

A dead letter is an event of the service's outbox stream ``messages.{service}-{dead-letters
channel}`` (so the Kafka transport also publishes it to the dead-letter topic): the parked
message's name and data, its envelope, and under ``dead_letter`` the error, the number of
attempts and when it failed.

:func:`replay` sends the message again to the channel it had arrived on, as a new message
(a new id, ``replay_of`` naming the old one; correlation, reply channel and saga kept) from
the service's own outbox, so either transport delivers it to the service once more. The
replay and a marker stream ``dead-letters.{service}-{dead letter id}`` (appended with
``NO_STREAM``) commit together: a dead letter is replayed at most once, even by two
operators at the same time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from streamsource.errors import WrongExpectedVersion
from streamsource.eventstore.event_ids import new_event_id
from streamsource.eventstore.events import ANY, NO_STREAM, NewEvent, RecordedEvent
from streamsource.eventstore.store import EventStore
from streamsource.messaging.context import OUTBOX_PREFIX, outbox_category, outbox_stream
from streamsource.messaging.envelope import CHANNEL, DEAD_LETTER
from streamsource.messaging.errors import AlreadyReplayed, InvalidMessage, UnknownDeadLetter

REPLAY_OF = "replay_of"
MARKER_PREFIX = "dead-letters."


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One parked message. ``id`` is the dead letter's own id, ``message_id`` the parked
    message's."""

    id: str
    message_id: str
    service: str
    name: str
    channel: str | None
    error: str
    error_type: str
    attempts: int
    failed_at: str
    replayed_as: str | None
    record: RecordedEvent

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "message_id": self.message_id,
            "service": self.service,
            "name": self.name,
            "channel": self.channel,
            "error": self.error,
            "error_type": self.error_type,
            "attempts": self.attempts,
            "failed_at": self.failed_at,
            "replayed_as": self.replayed_as,
        }


def _marker(service: str, letter_id: str) -> str:
    return f"{MARKER_PREFIX}{service}-{letter_id}"


def _as_letter(store: EventStore, record: RecordedEvent) -> DeadLetter | None:
    details = record.metadata.get(DEAD_LETTER)
    if not isinstance(details, dict):
        return None
    service = str(details.get("service", ""))
    letter_id = str(record.id)
    replayed_as = None
    for marker in store.read_stream(_marker(service, letter_id), limit=1):
        replayed_as = str(marker.data.get("replayed_as"))
    channel = record.metadata.get(CHANNEL)
    return DeadLetter(
        id=letter_id,
        message_id=str(details.get("message_id", "")),
        service=service,
        name=record.type,
        channel=channel if isinstance(channel, str) else None,
        error=str(details.get("error", "")),
        error_type=str(details.get("error_type", "")),
        attempts=int(details.get("attempts", 0)),
        failed_at=str(details.get("failed_at", "")),
        replayed_as=replayed_as,
        record=record,
    )


def dead_letters(store: EventStore, service: str | None = None) -> Iterator[DeadLetter]:
    """The dead letters in ``store`` (of one service, or all), oldest first; streamed."""
    if service is not None:
        records = store.read_category(outbox_category(service))
    else:
        records = store.read_all()
    for record in records:
        if record.stream.startswith(OUTBOX_PREFIX) and DEAD_LETTER in record.metadata:
            letter = _as_letter(store, record)
            if letter is not None:
                yield letter


def find(store: EventStore, id: str, service: str | None = None) -> DeadLetter:
    """The dead letter whose own id or parked message's id is ``id``."""
    try:
        wanted = str(uuid.UUID(id))
    except ValueError:
        raise UnknownDeadLetter(f"{id!r} is not a message id (a UUID)") from None
    for letter in dead_letters(store, service):
        if wanted in (letter.id, letter.message_id):
            return letter
    raise UnknownDeadLetter(f"no dead letter {wanted} in the store")


def replay(store: EventStore, letter: DeadLetter) -> str:
    """Send the parked message again (see the module docstring); the new message's id."""
    if letter.channel is None:
        raise InvalidMessage(f"dead letter {letter.id} has no envelope: it cannot be routed")
    message_id = new_event_id()
    metadata = {k: v for k, v in letter.record.metadata.items() if k != DEAD_LETTER}
    metadata[REPLAY_OF] = letter.message_id
    again = NewEvent(letter.name, letter.record.data, metadata=metadata, id=message_id)
    marker = NewEvent("DeadLetterReplayed", {"replayed_as": str(message_id)})
    try:
        with store.transaction() as tx:
            tx.append_many(
                [
                    (_marker(letter.service, letter.id), [marker], NO_STREAM),
                    (outbox_stream(letter.service, letter.channel), [again], ANY),
                ]
            )
    except WrongExpectedVersion:
        raise AlreadyReplayed(f"dead letter {letter.id} was replayed already") from None
    return str(message_id)
