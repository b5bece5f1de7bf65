"""The SQL a projection writes, as each database receives it."""

from __future__ import annotations

import pytest

import streamsource as ss
from streamsource.eventstore.projections import ProjectionRunner
from streamsource.eventstore.projections.database import connect, to_format_style

from .ledger import Ledger


def test_question_marks_become_psycopg_placeholders_outside_string_literals() -> None:
    assert to_format_style("INSERT INTO t VALUES (?, ?)") == "INSERT INTO t VALUES (%s, %s)"
    assert to_format_style("SELECT '?', x % 2 FROM t WHERE y = ?") == (
        "SELECT '?', x %% 2 FROM t WHERE y = %s"
    )
    assert to_format_style("SELECT 'it''s 5%' WHERE a = ?") == "SELECT 'it''s 5%%' WHERE a = %s"


def test_a_read_model_url_must_name_a_database() -> None:
    with pytest.raises(ss.InterfaceError, match="memory:// store needs a separate"):
        connect("memory://")


def test_batch_sizes_are_bounded() -> None:
    with ss.open_store("memory://") as store:
        for bad in (0, 10_001, -1, "5"):
            with pytest.raises(ss.ProgrammingError, match="batch_size"):
                ProjectionRunner(store, [Ledger()], read_model="sqlite:///x.db", batch_size=bad)  # type: ignore[arg-type]
