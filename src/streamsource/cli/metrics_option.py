"""``--metrics-port`` / ``--metrics-host``: the same two options on every long-running command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def metrics_options(command: F) -> F:
    """Add ``--metrics-port`` and ``--metrics-host`` (passed as ``metrics_port``/``metrics_host``)."""
    command = click.option(
        "--metrics-host",
        default="127.0.0.1",
        show_default=True,
        help="Address the /metrics endpoint listens on.",
    )(command)
    return click.option(
        "--metrics-port",
        type=click.IntRange(0, 65535),
        default=None,
        help="Serve Prometheus metrics at http://HOST:PORT/metrics (0: any free port; the one "
        "chosen is printed). Needs the 'metrics' extra.",
    )(command)


def start_metrics(port: int | None, host: str) -> Any | None:
    """Serve /metrics if asked; returns the server (None if not asked)."""
    if port is None:
        return None
    from streamsource.observability import serve_metrics

    try:
        server, bound = serve_metrics(port, host)
    except OSError as exc:
        raise click.ClickException(f"cannot serve metrics on {host}:{port}: {exc}") from exc
    click.echo(f"metrics on http://{host}:{bound}/metrics")
    return server
