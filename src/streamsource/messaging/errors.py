"""Errors of the messaging toolkit (all are :class:`~streamsource.errors.StreamsourceError`).

A handler signals how its failure should be treated by what it raises:

* :class:`Refused` (or any :class:`~streamsource.errors.DomainError`, which aggregates raise
  for a broken business rule): a business refusal. Nothing of the handler is kept; a command
  is answered with a :class:`~streamsource.messaging.messages.Failure` reply that says so.
  Never retried.
* :class:`TransientFault`, or any error whose ``retriable`` is true (a busy database, a
  conflicting concurrent update): retried with bounded exponential backoff, then dead-lettered.
* anything else (a bug): dead-lettered at once, since trying again cannot help.
"""

from __future__ import annotations

from streamsource.errors import DataError, DomainError, ProgrammingError, StreamsourceError


class MessagingError(StreamsourceError):
    """Base class of the messaging toolkit's own errors."""


class Refused(DomainError):
    """A handler's business refusal (e.g. "customer is disabled"): answered, not retried."""


class TransientFault(MessagingError):
    """A handler met a fault worth retrying (a partner service briefly away)."""

    retriable = True


class InvalidMessage(MessagingError, DataError):
    """A message's envelope or data is malformed, or names a message type nobody registered."""


class HandlerConflict(MessagingError, ProgrammingError):
    """A handler registration clashes with another (same message twice, wrong message kind)."""


class AlreadyReplayed(MessagingError):
    """A dead letter was replayed before; replaying it again would apply it twice."""


class UnknownDeadLetter(MessagingError, LookupError):
    """No dead letter with that message id is parked in the store."""
