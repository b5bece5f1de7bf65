"""The errors of sagas and process managers, in the store's PEP 249 families."""

from __future__ import annotations

from streamsource.errors import DataError, IntegrityError, ProgrammingError, StreamsourceError


class SagaError(StreamsourceError):
    """Base class of saga errors."""


class SagaAlreadyStarted(SagaError, IntegrityError):
    """A saga of this name already runs (or ran) for this correlation key."""

    def __init__(self, name: str, key: str, saga_id: str) -> None:
        self.name, self.key, self.saga_id = name, key, saga_id
        super().__init__(f"saga {name!r} for key {key!r} already exists (id {saga_id})")


class SagaNotFound(SagaError, ProgrammingError):
    """No saga has this id."""

    def __init__(self, saga_id: str) -> None:
        self.saga_id = saga_id
        super().__init__(f"no saga with id {saga_id!r}")


class SagaConflict(SagaError, IntegrityError):
    """Another transition of the same saga committed first; reload and try again."""

    retriable = True

    def __init__(self, saga_id: str, expected_version: int) -> None:
        self.saga_id, self.expected_version = saga_id, expected_version
        super().__init__(
            f"saga {saga_id} moved past version {expected_version} meanwhile (a concurrent"
            " reply or deadline advanced it)"
        )


class InvalidSagaInput(SagaError, ProgrammingError):
    """The input does not apply to the saga in its state (resume a running saga, abort a
    finished one) or the saga definition is malformed."""


class SagaDataNotSerializable(SagaError, DataError):
    """A saga's data (as started, or as a reply handler left it) is not JSON."""
