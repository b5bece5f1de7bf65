"""``streamsource projections``: run, inspect and rebuild the read models of an application.

    streamsource projections --store sqlite:///bank.db \\
        --app examples.bank.read_model:projections run [--until-caught-up]
    streamsource projections --store ... --app ... status [--json]
    streamsource projections --store ... --app ... rebuild account_balances

``--app module:attr`` names the application's projections: a list of :class:`Projection`
objects (or one, or a function returning them). The read model lives in ``--read-model``
(default: the store's own database). Errors print one ``error:`` line on stderr.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from types import FrameType
from typing import Any

import click

import streamsource as ss
from streamsource.cli.metrics_option import metrics_options, start_metrics
from streamsource.cli.store import BadInput, reporting_errors
from streamsource.eventstore.projections import (
    Projection,
    ProjectionRunner,
    ProjectionStatus,
    RebuildProgress,
)


def load_projections(spec: str) -> list[Projection]:
    """The projections named by ``module:attr`` (the current directory is importable)."""
    module_name, separator, attribute = spec.partition(":")
    if not separator or not module_name or not attribute:
        raise BadInput(f"--app must look like module:attribute, not {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BadInput(f"cannot import {module_name!r} (from --app {spec}): {exc}") from None
    try:
        found: Any = getattr(module, attribute)
    except AttributeError:
        raise BadInput(f"{module_name!r} has no attribute {attribute!r}") from None
    if callable(found) and not isinstance(found, Projection):  # a class or a factory
        found = found()
    items: Iterable[Any] = [found] if isinstance(found, Projection) else found
    try:
        projections = list(items)
    except TypeError:
        raise BadInput(f"{spec} is not a list of projections") from None
    for item in projections:
        if not isinstance(item, Projection):
            raise BadInput(f"{spec} holds {type(item).__name__}, not a Projection")
    return projections


@click.group()
@click.option("--store", "store_url", envvar="STREAMSOURCE_STORE", help="The event store URL.")
@click.option("--app", "app", required=True, help="module:attr naming the projections.")
@click.option("--read-model", default=None, help="Where read models live (default: the store).")
@click.option("--batch-size", default=500, show_default=True, help="Events per transaction.")
@click.pass_context
def command(
    ctx: click.Context, store_url: str | None, app: str, read_model: str | None, batch_size: int
) -> None:
    """Keep read models (projections) up to date, show their lag, rebuild one."""
    ctx.obj = {"store": store_url, "app": app, "read_model": read_model, "batch": batch_size}


def _runner(ctx: click.Context) -> tuple[ss.EventStore, ProjectionRunner]:
    options = ctx.obj
    projections = load_projections(options["app"])
    store = ss.open_store(options["store"])
    try:
        runner = ProjectionRunner(
            store, projections, read_model=options["read_model"], batch_size=options["batch"]
        )
    except BaseException:
        store.close()
        raise
    return store, runner


@command.command()
@click.option("--until-caught-up", is_flag=True, help="Stop when no event is waiting.")
@metrics_options
@click.pass_context
@reporting_errors
def run(
    ctx: click.Context, until_caught_up: bool, metrics_port: int | None, metrics_host: str
) -> None:
    """Feed the projections (until Ctrl-C / SIGTERM, or until caught up)."""
    start_metrics(metrics_port, metrics_host)
    store, runner = _runner(ctx)
    with store, runner:
        if until_caught_up:
            runner.run_until_caught_up()
        else:
            stop = threading.Event()

            def request_stop(signum: int, frame: FrameType | None) -> None:
                stop.set()
                runner.stop()

            signal.signal(signal.SIGTERM, request_stop)
            signal.signal(signal.SIGINT, request_stop)
            names = ", ".join(runner.projections)
            click.echo(f"running projections {names} (Ctrl-C to stop)", err=True)
            runner.run_forever(stop)
            if runner.errors:
                raise next(iter(runner.errors.values()))
        _print_status(runner.status(), as_json=False)


@command.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per projection.")
@click.pass_context
@reporting_errors
def status(ctx: click.Context, as_json: bool) -> None:
    """Each projection's generation, position and lag in events and seconds."""
    store, runner = _runner(ctx)
    with store, runner:
        _print_status(runner.status(), as_json=as_json)


@command.command()
@click.argument("name")
@click.option(
    "--progress-interval",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="How often to print progress (0: after every batch).",
)
@click.pass_context
@reporting_errors
def rebuild(ctx: click.Context, name: str, progress_interval: float) -> None:
    """Rebuild NAME from the first event; the old read model serves until it caught up.

    Prints progress on stderr while it runs (events handled, position of the head, rate)
    and a summary at the end.
    """
    store, runner = _runner(ctx)
    meter = RebuildMeter(progress_interval)
    with store, runner:
        generation = runner.rebuild(name, progress=meter.update)
        click.echo(f"rebuilt {name}: generation {generation} is now served; {meter.summary()}")
        _print_status([s for s in runner.status() if s.name == name], as_json=False)


class RebuildMeter:
    """Prints a rebuild's progress at most every ``interval`` seconds, and its summary."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._started = time.monotonic()
        self._printed = self._started - interval  # the first batch is shown at once
        self.events = 0

    def update(self, progress: RebuildProgress) -> None:
        self.events = progress.events
        now = time.monotonic()
        if now - self._printed < self._interval:
            return
        self._printed = now
        share = 100.0 if progress.head == 0 else 100.0 * progress.position / progress.head
        click.echo(
            f"rebuilding {progress.projection}: {progress.events} events,"
            f" position {progress.position} of {progress.head} ({share:.0f}%),"
            f" {self._rate(now):.0f} events/s",
            err=True,
        )

    def summary(self) -> str:
        elapsed = time.monotonic() - self._started
        return (
            f"{self.events} events in {elapsed:.1f}s ({self._rate(time.monotonic()):.0f} events/s)"
        )

    def _rate(self, now: float) -> float:
        return self.events / max(now - self._started, 1e-6)


def _print_status(statuses: list[ProjectionStatus], *, as_json: bool) -> None:
    if as_json:
        for s in statuses:
            click.echo(
                json.dumps(
                    {
                        "name": s.name,
                        "generation": s.generation,
                        "position": s.position,
                        "events": s.events,
                        "lag_events": s.lag_events,
                        "lag_seconds": round(s.lag_seconds, 3),
                        "last_event_at": None
                        if s.last_event_at is None
                        else s.last_event_at.isoformat(),
                        "rebuilding": s.rebuilding,
                        "rebuild_position": s.rebuild_position,
                        "error": s.error,
                    }
                )
            )
        return
    header = ("projection", "generation", "position", "events", "lag (events)", "lag (s)", "note")
    rows = [header]
    for s in statuses:
        note = s.error or (
            f"rebuilding as generation {s.rebuilding} (at {s.rebuild_position})"
            if s.rebuilding
            else ""
        )
        rows.append(
            (
                s.name,
                str(s.generation),
                "-" if s.position is None else str(s.position),
                str(s.events),
                str(s.lag_events),
                f"{s.lag_seconds:.1f}",
                note,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
