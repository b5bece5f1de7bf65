"""``streamsource streams run module:app``: run a stream-processing app as one member of its
consumer group until SIGINT/SIGTERM, printing progress (records/s, lag per partition).

``module:app`` names an :class:`~streamsource.streams.App`, or a function returning one, as
uvicorn names its apps; the current directory is on the import path. Start more processes
with the same app to scale out: the group shares the partitions and state follows them.
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import threading
from types import FrameType
from typing import Any

import click

import streamsource as ss


def load_app(spec: str) -> Any:
    """The app ``module:attribute`` names (called first if it is a function)."""
    from streamsource.streams import App

    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise click.BadParameter(f"{spec!r} is not MODULE:APP", param_hint="APP")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name}: {exc}", param_hint="APP") from None
    target = getattr(module, attribute, None)
    if target is None:
        raise click.BadParameter(f"{module_name} has no {attribute}", param_hint="APP")
    app = target() if callable(target) and not isinstance(target, App) else target
    if not isinstance(app, App):
        raise click.BadParameter(f"{spec} is not a streamsource.streams.App", param_hint="APP")
    return app


def describe(progress: Any) -> str:
    lag = " ".join(f"{name}={n}" for name, n in sorted(progress.lag.items())) or "-"
    return (
        f"{progress.records_per_second:,.0f} records/s, {progress.records:,} processed, lag {lag}"
    )


@click.group(name="streams")
def command() -> None:
    """Stream-processing apps (streamsource.streams)."""


@command.command(name="run")
@click.argument("app_spec", metavar="MODULE:APP")
@click.option(
    "--progress-interval", default=5.0, show_default=True, help="Seconds between progress lines."
)
@click.option(
    "--log-level",
    default="WARNING",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
)
def run(app_spec: str, progress_interval: float, log_level: str) -> None:
    """Run MODULE:APP as one member of its group until SIGINT/SIGTERM."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = load_app(app_spec)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    click.echo(f"running {app_spec}: group {app.group} on {app.bootstrap}", err=True)
    try:
        app.run(
            stop=stop,
            progress=lambda p: click.echo(describe(p), err=True),
            progress_interval=progress_interval,
        )
    except ss.StreamsourceError as exc:
        click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo(f"stopped after {app.processed:,} records", err=True)
