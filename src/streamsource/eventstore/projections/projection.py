"""What a user writes: a :class:`Projection` (a read model built from events).

A projection names the tables it owns (``tables``), creates them in :meth:`Projection.create`
and updates them in :meth:`Projection.handle`, one event at a time. Both receive a
:class:`ProjectionContext` whose ``execute`` runs SQL inside the transaction that also
advances the projection's checkpoint: a handled event and its checkpoint commit together,
so each event takes effect exactly once, even across ``kill -9``.

Tables are written through ``{name}`` placeholders: during a rebuild the same handler writes
a new *generation* of the tables (``balances__g2``) while readers keep querying the view
``balances``, which points at the generation being served until the new one has caught up.

>>> class Balances(Projection):
...     name = "balances"
...     tables = ("balances",)
...     category = "account"
...     def create(self, db):
...         db.execute("CREATE TABLE {balances} (account TEXT PRIMARY KEY, balance INT)")
...     def handle(self, event, db):
...         db.execute("INSERT INTO {balances} VALUES (?, ?) ON CONFLICT (account)"
...                    " DO UPDATE SET balance = balance + excluded.balance",
...                    (event.stream, event.data["amount"]))
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from streamsource.errors import ProgrammingError, StreamsourceError
from streamsource.eventstore.events import RecordedEvent
from streamsource.eventstore.projections.database import Connection, Dialect, Rows

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ProjectionFailed(StreamsourceError):
    """A projection's handler (or its batch's commit) failed; nothing of the batch was
    committed. The runner stops feeding that projection until it is restarted."""

    def __init__(
        self, name: str, position: int | None, cause: BaseException, *, batch: bool = False
    ) -> None:
        self.name = name
        self.position = position  # of the event that failed (of the batch's last, if batch)
        if position is None:
            where = "creating its tables"
        elif batch:  # a write sent in bulk failed at commit: which event's is not known
            where = f"the batch of events ending at position {position}"
        else:
            where = f"the event at position {position}"
        super().__init__(f"projection {name!r} failed on {where}: {cause}")


class Projection:
    """A read model kept up to date from the events of the store.

    Subclass it and set ``name`` (unique in the read-model database), ``tables`` (the table
    names it owns, each exposed to readers as a view of that name), and optionally
    ``category`` and ``types`` to receive only those events. Without a category it gets
    every event but those of system streams (``$parked-<group>``, ...), unless
    ``include_system``. Override :meth:`create` and :meth:`handle`. Handlers must only write
    through the context they are given.
    """

    name: ClassVar[str] = ""
    tables: ClassVar[Sequence[str]] = ()
    category: ClassVar[str | None] = None
    types: ClassVar[Iterable[str] | None] = None
    include_system: ClassVar[bool] = False

    def create(self, db: ProjectionContext) -> None:
        """Create the tables (and indexes) of a new generation, e.g. ``CREATE TABLE {t} ...``."""

    def handle(self, event: RecordedEvent, db: ProjectionContext) -> None:
        """Apply one event to the read model."""
        raise NotImplementedError


def check_projection(projection: object) -> Projection:
    """Return ``projection`` if it is a well-formed Projection, else raise ProgrammingError."""
    if not isinstance(projection, Projection):
        raise ProgrammingError(f"expected a Projection, got {type(projection).__name__}")
    kind = type(projection).__name__
    if not isinstance(projection.name, str) or not _IDENTIFIER.fullmatch(projection.name):
        raise ProgrammingError(
            f"{kind}.name must be a name of letters, digits and _ (up to 41), got"
            f" {projection.name!r}"
        )
    for table in projection.tables:
        if not isinstance(table, str) or not _IDENTIFIER.fullmatch(table):
            raise ProgrammingError(f"{kind}.tables: {table!r} is not a valid table name")
    if len(set(projection.tables)) != len(projection.tables):
        raise ProgrammingError(f"{kind}.tables names a table twice")
    return projection


def physical_table(table: str, generation: int) -> str:
    """The real table behind ``table`` in ``generation`` (the view ``table`` serves one)."""
    return f"{table}__g{generation}"


class ProjectionContext:
    """The handle a projection writes through: SQL in the batch's transaction.

    ``{table}`` in SQL names the generation being written; ``?`` is the placeholder in both
    SQLite and PostgreSQL.
    """

    def __init__(self, connection: Connection, tables: Sequence[str], generation: int) -> None:
        self._connection = connection
        self.generation = generation
        self._names: Mapping[str, str] = {t: physical_table(t, generation) for t in tables}
        self._sql: dict[str, str] = {}

    @property
    def dialect(self) -> Dialect:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._connection.dialect

    def table(self, name: str) -> str:
        """The physical table that ``{name}`` stands for in this generation."""
        try:
            return self._names[name]
        except KeyError:
            raise ProgrammingError(f"{name!r} is not one of this projection's tables") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """Run ``sql`` (``{table}`` placeholders filled in) inside the current transaction."""
        resolved = self._sql.get(sql)
        if resolved is None:
            resolved = self._sql[sql] = _PLACEHOLDER.sub(lambda m: self.table(m.group(1)), sql)
        return self._connection.execute(resolved, params)
