"""``streamsource store migrate --store URL``: create or upgrade a store's schema.

For PostgreSQL it applies the missing numbered migrations (what opening a store does unless
``migrate=False``), so a deployment can migrate once, before the applications start, and
open their stores with ``?migrate=false``. SQLite and memory stores migrate when opened:
for them the command just opens and closes the store.
"""

from __future__ import annotations

import click

import streamsource as ss
from streamsource.cli.store import BadInput, reporting_errors
from streamsource.eventstore.backends import scheme_of


@click.command()
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    help="Store URL, e.g. postgresql://user@host/db?schema=app1 (default: the group's --store).",
)
@click.option("--url", "old_url", default=None, hidden=True)  # the name before --store
@click.pass_context
@reporting_errors
def command(ctx: click.Context, store_url: str | None, old_url: str | None) -> None:
    """Create or upgrade the store's schema (versioned migrations)."""
    url = store_url or old_url or ctx.find_root().meta.get("streamsource.store_url")
    if not url:
        raise BadInput("no store URL: pass --store URL (or set STREAMSOURCE_STORE)")
    if scheme_of(url) not in ("postgresql", "postgres"):
        ss.open_store(url).close()
        click.echo(f"{scheme_of(url)} store is up to date (it migrates when opened)")
        return
    from streamsource.eventstore.backends.postgres import faults, recorder, schema, settings

    parsed = settings.parse(url, {})
    with recorder.connect(parsed) as conn, faults.map_exceptions(parsed.where):
        applied = schema.migrate(conn, parsed.schema, parsed.where)
    for name in applied:
        click.echo(f"applied {name}")
    click.echo(f"{parsed.where}: schema version {schema.latest_version()}, up to date")
