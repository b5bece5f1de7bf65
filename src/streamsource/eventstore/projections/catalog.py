"""The bookkeeping tables of projections, kept in the read-model database itself.

``ss_projections`` has one row per projection: the generation served to readers and the one
being rebuilt, if any. ``ss_projection_checkpoints`` has one row per generation: the last
position handled, how many events took effect, and when the last one was recorded. Every
function here runs inside a transaction the caller opened, so a generation switch (views
re-pointed, old tables dropped, the served generation changed) is one atomic commit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from streamsource.eventstore.projections.database import Connection
from streamsource.eventstore.projections.projection import (
    Projection,
    ProjectionContext,
    ProjectionFailed,
    physical_table,
)

CATALOG_TABLES = (
    "CREATE TABLE IF NOT EXISTS ss_projections ("
    " name TEXT PRIMARY KEY,"
    " current_generation INTEGER NOT NULL,"
    " building_generation INTEGER)",
    "CREATE TABLE IF NOT EXISTS ss_projection_checkpoints ("
    " name TEXT NOT NULL,"
    " generation INTEGER NOT NULL,"
    " position BIGINT,"  # last position handled; NULL before the first event
    " events BIGINT NOT NULL,"  # events that took effect in this generation
    " last_event_at BIGINT,"  # recorded_at of the last event handled, microseconds
    " updated_at BIGINT NOT NULL,"
    " PRIMARY KEY (name, generation))",
    # why a runner stopped feeding a projection, for status readers in other processes
    # (the console); cleared when a runner starts feeding it again
    "CREATE TABLE IF NOT EXISTS ss_projection_errors ("
    " name TEXT PRIMARY KEY,"
    " error TEXT NOT NULL,"
    " at BIGINT NOT NULL)",
)
MAX_ERROR_CHARS = 4000


@dataclass(frozen=True, slots=True)
class Generations:
    """Which generation readers see, and which one a rebuild is filling (if any)."""

    current: int
    building: int | None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How far one generation of a projection got."""

    position: int | None
    events: int
    last_event_at: int | None  # microseconds since the epoch
    updated_at: int


def now_micros() -> int:
    """Wall-clock time in microseconds since the epoch."""
    return time.time_ns() // 1000


def ensure_catalog(conn: Connection) -> None:
    """Create the bookkeeping tables if missing (serialised: concurrent runners are fine)."""
    with conn.transaction("$catalog"):
        for statement in CATALOG_TABLES:
            conn.execute(statement)


def generations(conn: Connection, name: str) -> Generations | None:
    """The projection's generations; None if it was never set up."""
    row = conn.execute(
        "SELECT current_generation, building_generation FROM ss_projections WHERE name = ?",
        (name,),
    ).fetchone()
    return None if row is None else Generations(int(row[0]), row[1])


def read_checkpoint(conn: Connection, name: str, generation: int) -> Checkpoint | None:
    """The checkpoint of one generation (None if that generation does not exist)."""
    row = conn.execute(
        "SELECT position, events, last_event_at, updated_at FROM ss_projection_checkpoints"
        " WHERE name = ? AND generation = ?",
        (name, generation),
    ).fetchone()
    if row is None:
        return None
    return Checkpoint(row[0], int(row[1]), row[2], int(row[3]))


def write_checkpoint(
    conn: Connection,
    name: str,
    generation: int,
    position: int,
    events: int,
    last_event_at: int | None,
) -> None:
    """Advance a generation's checkpoint (in the transaction of the events it covers)."""
    conn.execute(
        "UPDATE ss_projection_checkpoints SET position = ?, events = ?, last_event_at = ?,"
        " updated_at = ? WHERE name = ? AND generation = ?",
        (position, events, last_event_at, now_micros(), name, generation),
    )


def record_error(conn: Connection, name: str, error: str) -> None:
    """Keep why feeding ``name`` stopped (bounded), replacing an older reason."""
    conn.execute(
        "INSERT INTO ss_projection_errors (name, error, at) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET error = excluded.error, at = excluded.at",
        (name, error[:MAX_ERROR_CHARS], now_micros()),
    )


def clear_error(conn: Connection, name: str) -> None:
    conn.execute("DELETE FROM ss_projection_errors WHERE name = ?", (name,))


def read_error(conn: Connection, name: str) -> str | None:
    """The reason a runner last stopped feeding ``name``, if it did and none resumed since."""
    row = conn.execute("SELECT error FROM ss_projection_errors WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def create_generation(conn: Connection, projection: Projection, generation: int) -> None:
    """Create the tables of a new generation and its empty checkpoint."""
    context = ProjectionContext(conn, projection.tables, generation)
    for table in projection.tables:  # leftovers of a generation that crashed half-made
        conn.execute(f"DROP TABLE IF EXISTS {physical_table(table, generation)}")
    try:
        projection.create(context)
    except Exception as exc:
        raise ProjectionFailed(projection.name, None, exc) from exc
    conn.execute(
        "DELETE FROM ss_projection_checkpoints WHERE name = ? AND generation = ?",
        (projection.name, generation),
    )
    conn.execute(
        "INSERT INTO ss_projection_checkpoints"
        " (name, generation, position, events, last_event_at, updated_at)"
        " VALUES (?, ?, NULL, 0, NULL, ?)",
        (projection.name, generation, now_micros()),
    )


def serve(conn: Connection, projection: Projection, generation: int) -> None:
    """Point each view at ``generation``'s table."""
    for table in projection.tables:
        conn.execute(f"DROP VIEW IF EXISTS {table}")
        conn.execute(f"CREATE VIEW {table} AS SELECT * FROM {physical_table(table, generation)}")


def drop_generation(conn: Connection, projection: Projection, generation: int) -> None:
    """Drop a generation's tables and checkpoint (after the views stopped using them)."""
    for table in projection.tables:
        conn.execute(f"DROP TABLE IF EXISTS {physical_table(table, generation)}")
    conn.execute(
        "DELETE FROM ss_projection_checkpoints WHERE name = ? AND generation = ?",
        (projection.name, generation),
    )


def set_up(conn: Connection, projection: Projection) -> Generations:
    """Create generation 1 and its views the first time a projection is seen."""
    with conn.transaction(projection.name):
        found = generations(conn, projection.name)
        if found is not None:
            return found
        create_generation(conn, projection, 1)
        serve(conn, projection, 1)
        conn.execute(
            "INSERT INTO ss_projections (name, current_generation, building_generation)"
            " VALUES (?, 1, NULL)",
            (projection.name,),
        )
        return Generations(1, None)


def start_rebuild(conn: Connection, projection: Projection) -> int:
    """The generation a rebuild fills: the unfinished one, or a new one created now."""
    with conn.transaction(projection.name):
        found = generations(conn, projection.name)
        if found is None:
            raise ProjectionFailed(projection.name, None, LookupError("it was never set up"))
        if found.building is not None and read_checkpoint(conn, projection.name, found.building):
            return found.building  # resume a rebuild that was interrupted
        generation = found.current + 1
        create_generation(conn, projection, generation)
        conn.execute(
            "UPDATE ss_projections SET building_generation = ? WHERE name = ?",
            (generation, projection.name),
        )
        return generation


def switch_to(conn: Connection, projection: Projection, generation: int) -> None:
    """Serve ``generation`` and drop the old one; call inside the caller's transaction."""
    found = generations(conn, projection.name)
    assert found is not None
    serve(conn, projection, generation)
    if found.current != generation:
        drop_generation(conn, projection, found.current)
    conn.execute(
        "UPDATE ss_projections SET current_generation = ?, building_generation = NULL"
        " WHERE name = ?",
        (generation, projection.name),
    )
