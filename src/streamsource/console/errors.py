"""The console's errors and how each becomes an HTTP answer (4xx with a reason, never a 500
for bad input)."""

from __future__ import annotations

import streamsource as ss
from streamsource.sagas.errors import InvalidSagaInput, SagaNotFound


class ConsoleError(ss.StreamsourceError):
    """A request the console cannot serve; ``status`` is the HTTP status it answers with."""

    status = 400


class NotFound(ConsoleError):
    status = 404


class Forbidden(ConsoleError):
    status = 403


class Unauthenticated(ConsoleError):
    status = 401


class Conflict(ConsoleError):
    status = 409


class Unavailable(ConsoleError):
    """A backend the page needs is not configured or not reachable."""

    status = 503


def status_of(error: ss.StreamsourceError) -> int:
    """The HTTP status for an error raised while serving a request."""
    if isinstance(error, ConsoleError):
        return error.status
    if isinstance(error, ss.StreamDeleted):
        return 410
    if isinstance(error, ss.AggregateNotFound | SagaNotFound):
        return 404
    if isinstance(error, InvalidSagaInput):
        return 409  # the operation does not fit the saga's status
    if isinstance(error, ss.ProgrammingError | ss.DataError):
        return 400  # bad names, versions, times: the request was wrong
    if isinstance(error, ss.MissingExtra):
        return 503
    return 503 if isinstance(error, ss.OperationalError) else 500
