"""``streamsource sagas``: see sagas and act on stuck ones.

    streamsource sagas --store sqlite:///orders.db list [--status stuck] [--name N] [--json]
    streamsource sagas --store ... show SAGA_ID [--json]
    streamsource sagas --store ... resume SAGA_ID
    streamsource sagas --store ... abort SAGA_ID [--reason TEXT]

``resume`` and ``abort`` are carried out by the service that runs the saga (its
``SagaEngine`` builds the commands), as soon as its deadline thread next looks: the
command records the request and returns. Errors print one ``error:`` line on stderr.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click
import msgspec

from streamsource.cli.store import open_store_from, reporting_errors
from streamsource.sagas.admin import list_sagas, load_saga, request
from streamsource.sagas.core import SagaState

STATUSES = ("running", "compensating", "completed", "compensated", "stuck", "aborted")


@click.group()
@click.option(
    "--store",
    "store_url",
    envvar="STREAMSOURCE_STORE",
    default=None,
    metavar="URL",
    help="Store URL of the service running the sagas [env: STREAMSOURCE_STORE]",
)
@click.pass_context
def command(ctx: click.Context, store_url: str | None) -> None:
    """List sagas, show one's history, resume or abort a stuck one."""
    ctx.find_root().meta["streamsource.store_url"] = store_url


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _step(state: SagaState) -> str:
    history = [h.step for h in state.history if h.step is not None]
    return history[-1] if history else "-"


def _summary(state: SagaState) -> dict[str, Any]:
    return {
        "saga_id": state.saga_id,
        "name": state.name,
        "key": state.key,
        "status": state.status,
        "step": _step(state),
        "reason": state.reason,
        "updated": _when(state.history[-1].at) if state.history else None,
    }


@command.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None)
@click.option("--name", default=None, help="Only sagas of this name.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
@reporting_errors
def list_command(
    ctx: click.Context, status: str | None, name: str | None, limit: int, as_json: bool
) -> None:
    """Sagas, most recently changed first."""
    with open_store_from(ctx, must_exist=True) as store:
        sagas = list_sagas(store, status=status, name=name, limit=limit)
    for state in sagas:
        summary = _summary(state)
        if as_json:
            click.echo(json.dumps(summary))
        else:
            reason = f"  {state.reason}" if state.reason else ""
            click.echo(
                f"{state.saga_id}  {state.name}  {state.key}  {state.status}"
                f"  step {summary['step']}{reason}"
            )


@command.command("show")
@click.argument("saga_id")
@click.option("--json", "as_json", is_flag=True, help="The whole state as JSON.")
@click.pass_context
@reporting_errors
def show_command(ctx: click.Context, saga_id: str, as_json: bool) -> None:
    """One saga: its status, data and the history of its decisions."""
    with open_store_from(ctx, must_exist=True) as store:
        state = load_saga(store, saga_id)
    if as_json:
        click.echo(json.dumps(msgspec.to_builtins(state), indent=2))
        return
    click.echo(f"saga {state.saga_id}: {state.name} for {state.key}, {state.status}")
    if state.reason:
        click.echo(f"reason: {state.reason}")
    click.echo(f"data: {json.dumps(state.data, sort_keys=True)}")
    for entry in state.history:
        where = f" [{entry.step}]" if entry.step else ""
        detail = f": {entry.detail}" if entry.detail else ""
        click.echo(f"  {_when(entry.at)}  {entry.event}{where}{detail}")


@command.command("resume")
@click.argument("saga_id")
@click.pass_context
@reporting_errors
def resume_command(ctx: click.Context, saga_id: str) -> None:
    """Start a stuck saga's compensation again (its service carries it out)."""
    with open_store_from(ctx, must_exist=True) as store:
        state = request(store, saga_id, "resume")
    click.echo(f"resume of saga {saga_id} ({state.name} for {state.key}) requested")


@command.command("abort")
@click.argument("saga_id")
@click.option("--reason", default="aborted by an operator", show_default=True)
@click.pass_context
@reporting_errors
def abort_command(ctx: click.Context, saga_id: str, reason: str) -> None:
    """Give a saga up: a running one compensates, a stuck one is left as it is."""
    with open_store_from(ctx, must_exist=True) as store:
        state = request(store, saga_id, "abort", reason)
    click.echo(f"abort of saga {saga_id} ({state.name} for {state.key}) requested")
