"""``streamsource messages``: the dead letters services parked, and their replay.

    streamsource messages --store sqlite:///payments.db dead-letters list [--service S] [--json]
    streamsource messages --store ... dead-letters replay ID [ID...] [--service S]
    streamsource messages --store ... dead-letters replay --all [--service S]

``ID`` is a dead letter's id or the parked message's id. A replay sends the message again to
the channel it came on (a new message id; ``replay_of`` names the old one), from the
service's outbox, so its transport delivers it once more; each dead letter is replayed at
most once. Errors print one ``error:`` line on stderr.
"""

from __future__ import annotations

import json

import click

from streamsource.cli.store import open_store_from, reporting_errors
from streamsource.messaging.dead_letters import dead_letters, find, replay


@click.group()
@click.option(
    "--store",
    "store_url",
    envvar="STREAMSOURCE_STORE",
    default=None,
    metavar="URL",
    help="Store URL of the service [env: STREAMSOURCE_STORE]",
)
@click.pass_context
def command(ctx: click.Context, store_url: str | None) -> None:
    """Messages between services: dead letters."""
    ctx.find_root().meta["streamsource.store_url"] = store_url


@command.group("dead-letters")
def dead_letters_group() -> None:
    """Messages a service parked after its handler failed, with the error."""


@dead_letters_group.command("list")
@click.option("--service", default=None, help="Only this service's dead letters.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
@reporting_errors
def list_command(ctx: click.Context, service: str | None, as_json: bool) -> None:
    """Dead letters, oldest first (replayed ones say as what)."""
    with open_store_from(ctx, must_exist=True) as store:
        for letter in dead_letters(store, service):
            if as_json:
                click.echo(json.dumps(letter.summary()))
                continue
            state = f"replayed as {letter.replayed_as}" if letter.replayed_as else "parked"
            click.echo(
                f"{letter.id}  {letter.service}  {letter.name}  from {letter.channel or '?'}"
                f"  {letter.failed_at}  {letter.attempts} attempt(s)  {state}"
                f"  {letter.error_type}: {letter.error}"
            )


@dead_letters_group.command("replay")
@click.argument("ids", nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Every dead letter not replayed yet.")
@click.option("--service", default=None, help="Only this service's dead letters.")
@click.pass_context
@reporting_errors
def replay_command(
    ctx: click.Context, ids: tuple[str, ...], replay_all: bool, service: str | None
) -> None:
    """Send dead letters again to the channel they came on."""
    if bool(ids) == replay_all:
        raise click.UsageError("name dead letters by id, or pass --all (not both)")
    with open_store_from(ctx, must_exist=True) as store:
        if replay_all:
            letters = [d for d in dead_letters(store, service) if d.replayed_as is None]
        else:
            letters = [find(store, id, service) for id in ids]
        for letter in letters:
            new_id = replay(store, letter)
            click.echo(f"{letter.id}  {letter.name}  replayed as {new_id} to {letter.channel}")
