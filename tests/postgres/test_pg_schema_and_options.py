"""Migrations, schemas shared in one database, options and the ``store migrate`` command."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest
from click.testing import CliRunner

import streamsource as ss
from streamsource.cli import cli
from streamsource.eventstore.backends.postgres import parse
from streamsource.eventstore.backends.postgres.schema import latest_version

pytestmark = pytest.mark.postgres


def _schema_url(server_url: str, schema: str, **extra: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"schema": schema, **extra}.items())
    return f"{server_url}?{query}"


def _new_schema() -> str:
    return f"m_{uuid.uuid4().hex[:16]}"


def _migrations(server_url: str, schema: str) -> list[tuple[int, str]]:
    with psycopg.connect(server_url) as conn:
        rows = conn.execute(
            f"SELECT version, name FROM {schema}.schema_migrations ORDER BY version"
        ).fetchall()
    return [(int(v), str(n)) for v, n in rows]


def test_concurrent_first_opens_migrate_once(pg_server_url: str) -> None:
    schema = _new_schema()
    url = _schema_url(pg_server_url, schema)
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def open_and_append(n: int) -> None:
        try:
            barrier.wait()
            with ss.open_store(url, pool_size=1) as store:
                store.append(f"opener-{n}", [ss.NewEvent("Opened", {"n": n})])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_and_append, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [v for v, _ in _migrations(pg_server_url, schema)] == list(
        range(1, latest_version() + 1)
    )
    with ss.open_store(url) as store:
        assert len(list(store.read_all())) == 6


def test_applications_in_separate_schemas_do_not_see_each_other(pg_server_url: str) -> None:
    one, two = _new_schema(), _new_schema()
    with (
        ss.open_store(_schema_url(pg_server_url, one)) as first,
        ss.open_store(pg_server_url, schema=two) as second,  # the keyword form
    ):
        first.append("account-1", [ss.NewEvent("A", {})])
        second.append("account-1", [ss.NewEvent("B", {})], ss.NO_STREAM)
        assert [e.type for e in first.read_all()] == ["A"]
        assert [e.type for e in second.read_all()] == ["B"]
        assert first.stats()["schema"] == one
        assert second.stats()["schema"] == two


def test_migrate_false_refuses_an_unmigrated_schema(pg_server_url: str) -> None:
    url = _schema_url(pg_server_url, _new_schema(), migrate="false")
    with pytest.raises(ss.ProgrammingError, match="store migrate"):
        ss.open_store(url)


def test_migrate_false_opens_a_migrated_schema(pg_server_url: str) -> None:
    schema = _new_schema()
    ss.open_store(_schema_url(pg_server_url, schema)).close()
    with ss.open_store(_schema_url(pg_server_url, schema), migrate=False) as store:
        assert store.append("s-1", [ss.NewEvent("A", {})]).version == 0


def test_a_schema_with_someone_elses_events_table_is_refused(pg_server_url: str) -> None:
    schema = _new_schema()
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.events (id int)")
    with pytest.raises(ss.CorruptStoreError, match="not a streamsource store"):
        ss.open_store(_schema_url(pg_server_url, schema))


def test_a_schema_from_a_newer_streamsource_is_refused(pg_server_url: str) -> None:
    schema = _new_schema()
    ss.open_store(_schema_url(pg_server_url, schema)).close()
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {schema}.schema_migrations (version, name) VALUES (999, 'x')")
    with pytest.raises(ss.NotSupportedError, match="upgrade streamsource"):
        ss.open_store(_schema_url(pg_server_url, schema))


def test_events_restored_from_another_cluster_are_repaired_by_migrate(
    pg_server_url: str,
) -> None:
    schema = _new_schema()
    url = _schema_url(pg_server_url, schema)
    with ss.open_store(url) as store:
        store.append("s-1", [ss.NewEvent("A", {}), ss.NewEvent("B", {})])
    with psycopg.connect(
        pg_server_url, autocommit=True
    ) as conn:  # as a logical restore leaves them
        conn.execute(f"UPDATE {schema}.events SET tx_id = '9000000000000'::xid8")
    with pytest.raises(ss.CorruptStoreError, match="store migrate"):
        ss.open_store(url, migrate=False)
    with ss.open_store(url) as store:  # migrating on open repairs them
        assert [e.type for e in store.read_all()] == ["A", "B"]
        store.append("s-1", [ss.NewEvent("C", {})])
        assert [e.type for e in store.read_all()] == ["A", "B", "C"]


def test_store_migrate_command(pg_server_url: str) -> None:
    url = _schema_url(pg_server_url, _new_schema())
    first = CliRunner().invoke(cli, ["store", "migrate", "--store", url])
    assert first.exit_code == 0, first.output
    assert "applied 0001_initial" in first.stdout
    again = CliRunner().invoke(cli, ["store", "--store", url, "migrate"])
    assert again.exit_code == 0, again.output
    assert "applied" not in again.stdout
    assert "up to date" in again.stdout
    with ss.open_store(url, migrate=False) as store:
        assert store.head_position() == 0


def test_store_migrate_command_reports_an_unreachable_server() -> None:
    from pg_server import free_port

    port = free_port()
    result = CliRunner().invoke(
        cli, ["store", "migrate", "--url", f"postgresql://u:pw@127.0.0.1:{port}/db"]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: CannotConnect")
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"schema": "Bad-Name"}, "schema"),
        ({"pool_size": 0}, "pool_size"),
        ({"pool_timeout": "soon"}, "pool_timeout"),
        ({"migrate": "maybe"}, "migrate"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_options_are_refused_before_connecting(
    options: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ss.ProgrammingError, match=fragment):
        parse("postgresql://u:secret@nowhere.invalid/db", dict(options))


def test_settings_keep_libpq_parameters_and_hide_the_password() -> None:
    settings = parse(
        "postgresql://u:secret@db.example:6543/app?schema=app1&sslmode=disable&pool_size=3", {}
    )
    assert settings.where == "postgresql://u@db.example:6543/app?schema=app1"
    assert "sslmode=disable" in settings.conninfo
    assert "search_path=app1" in settings.conninfo
    assert "pool_size" not in settings.conninfo
    assert settings.pool_size == 3


def test_the_store_command_works_on_postgresql(pg_url: str) -> None:
    appended = CliRunner().invoke(
        cli, ["store", "--store", pg_url, "append", "account-1", "Deposited", '{"amount": 5}']
    )
    assert appended.exit_code == 0, appended.output
    read = CliRunner().invoke(cli, ["store", "--store", pg_url, "read", "account-1", "--json"])
    assert read.exit_code == 0, read.output
    assert '"amount":5' in read.stdout.replace(" ", "")
    stats = CliRunner().invoke(cli, ["store", "--store", pg_url, "stats"])
    assert stats.exit_code == 0, stats.output
    assert "postgresql" in stats.stdout


def test_a_version_1_store_is_upgraded_by_migrate_and_keeps_its_events(
    pg_server_url: str,
) -> None:
    from streamsource.eventstore.backends.postgres.schema import migrations

    schema = _new_schema()
    url = _schema_url(pg_server_url, schema)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:  # as streamsource 1 left it
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path TO {schema}")
        conn.execute(migrations()[0].sql.encode())
        conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (1, 'initial')")
        conn.execute(
            "SELECT append_events('old-1', -1, ARRAY[gen_random_uuid()], ARRAY['A'],"
            " ARRAY['{}'::bytea], ARRAY['{}'::bytea])"
        )
    with pytest.raises(ss.ProgrammingError, match=r"missing migrations \[2, 3\]"):
        ss.open_store(url, migrate=False)
    upgraded = CliRunner().invoke(cli, ["store", "migrate", "--store", url])
    assert upgraded.exit_code == 0, upgraded.output
    assert "applied 0002_append_without_subtransaction" in upgraded.stdout
    assert "0003_append_batch" in upgraded.stdout
    with ss.open_store(url, migrate=False) as store:
        assert store.append("old-1", [ss.NewEvent("B", {})], 0).version == 1
        assert store.append("new-1", [ss.NewEvent("C", {}), ss.NewEvent("D", {})]).version == 1
        assert [e.type for e in store.read_all()] == ["A", "B", "C", "D"]
    assert _migrations(pg_server_url, schema) == [
        (1, "initial"),
        (2, "append_without_subtransaction"),
        (3, "append_batch"),
    ]
