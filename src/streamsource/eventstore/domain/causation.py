"""Correlation and causation ids for events caused by another event or by a command.

``causation_id`` is the id of the message that directly caused an event; ``correlation_id``
is the id of the first message of the whole chain, so every event of one business
conversation shares it. A repository fills both in from the ``caused_by=`` argument of
``save`` or, failing that, from the innermost ``with caused_by(...):`` block::

    with caused_by(order_placed_event):      # a RecordedEvent that triggered this handler
        repository.save(invoice)             # invoice events: causation = that event's id
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeAlias

from streamsource.errors import ProgrammingError
from streamsource.eventstore.events import CAUSATION_ID, CORRELATION_ID, RecordedEvent


@dataclass(frozen=True, slots=True)
class Causation:
    """What caused the events about to be saved."""

    correlation_id: str
    causation_id: str

    @classmethod
    def from_event(cls, event: RecordedEvent) -> Causation:
        """Caused by a stored event: keep its correlation (or start one at its id)."""
        own = str(event.id)
        return cls(correlation_id=event.correlation_id or own, causation_id=own)

    @classmethod
    def from_command(
        cls, command_id: str | uuid.UUID, correlation_id: str | uuid.UUID | None = None
    ) -> Causation:
        """Caused by a command: the command starts the correlation unless one is given."""
        own = str(command_id)
        return cls(
            correlation_id=own if correlation_id is None else str(correlation_id),
            causation_id=own,
        )

    def metadata(self) -> dict[str, str]:
        """The metadata entries this causation adds to each event."""
        return {CORRELATION_ID: self.correlation_id, CAUSATION_ID: self.causation_id}


Cause: TypeAlias = RecordedEvent | Causation | str | uuid.UUID
"""A stored event, an explicit Causation, or a command id."""

_current: ContextVar[Causation | None] = ContextVar("streamsource_causation", default=None)


def as_causation(cause: Cause, correlation_id: str | uuid.UUID | None = None) -> Causation:
    """Normalise any accepted cause to a :class:`Causation`."""
    if isinstance(cause, Causation):
        return cause
    if isinstance(cause, RecordedEvent):
        return Causation.from_event(cause)
    if isinstance(cause, str | uuid.UUID) and str(cause):
        return Causation.from_command(cause, correlation_id)
    raise ProgrammingError(f"a cause must be a RecordedEvent, Causation or id, not {cause!r}")


@contextmanager
def caused_by(
    cause: Cause, *, correlation_id: str | uuid.UUID | None = None
) -> Iterator[Causation]:
    """Within the block, events saved by any repository are marked as caused by ``cause``."""
    causation = as_causation(cause, correlation_id)
    token = _current.set(causation)
    try:
        yield causation
    finally:
        _current.reset(token)


def current_causation() -> Causation | None:
    """The causation of the innermost ``caused_by`` block, if any."""
    return _current.get()
