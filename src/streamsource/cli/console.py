"""``streamsource console``: serve the operator's web console; ``console users``: its users.

    streamsource console --store sqlite:///bank.db --bootstrap 127.0.0.1:9092
    streamsource console users --file users.json set alice --role admin

The console listens on 127.0.0.1:8081 by default and refuses a non-loopback ``--host``
unless ``--auth`` names a users file. It prints its URL on stdout once it accepts
connections (``--port 0`` picks a free port).
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

import click

from streamsource.cli.kafka_security import (
    kafka_security_options,
    pop_security_options,
    resolve,
)
from streamsource.cli.listener import tcp_listener
from streamsource.cli.metrics_option import metrics_options, start_metrics
from streamsource.cli.store import BadInput, reporting_errors
from streamsource.eventstore.backends import scheme_of
from streamsource.eventstore.backends.sqlite import parse_url
from streamsource.extras import require


@click.group(invoke_without_command=True)
@click.option(
    "--store",
    "store_url",
    envvar="STREAMSOURCE_STORE",
    metavar="URL",
    default=None,
    help="The event store URL [env: STREAMSOURCE_STORE].",
)
@click.option(
    "--bootstrap",
    default=None,
    metavar="HOST:PORT",
    help="A Kafka cluster's bootstrap address (any Kafka, not only ours).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; a non-loopback one needs --auth.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8081, show_default=True)
@click.option(
    "--auth",
    "users_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Users file (see `console users`): log in, viewer/admin roles.",
)
@click.option(
    "--mask-values", is_flag=True, help="Hide event data and message values from viewers."
)
@click.option(
    "--projections",
    default=None,
    metavar="MODULE:ATTR",
    help="The application's projections (status, lag, rebuild).",
)
@click.option(
    "--aggregate",
    "aggregates",
    multiple=True,
    metavar="MODULE:CLASS",
    help="An aggregate type whose state time travel shows (repeatable).",
)
@click.option(
    "--certfile",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Serve HTTPS with this certificate (PEM).",
)
@click.option(
    "--keyfile",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="The certificate's private key (PEM).",
)
@kafka_security_options
@metrics_options
@click.pass_context
@reporting_errors
def command(
    ctx: click.Context,
    /,
    store_url: str | None,
    bootstrap: str | None,
    host: str,
    port: int,
    users_file: Path | None,
    mask_values: bool,
    projections: str | None,
    aggregates: tuple[str, ...],
    certfile: str | None,
    keyfile: str | None,
    metrics_port: int | None,
    metrics_host: str,
    **security_options: Any,
) -> None:
    """Serve the web console over an event store and/or a Kafka cluster.

    ``--bootstrap`` takes ``HOST:PORT`` or ``kafka://user:password@host:port?...``; the
    Kafka client security options (or ``STREAMSOURCE_KAFKA_*``) secure its connection.
    The console's own ``/metrics`` needs a login with ``--auth``; ``--metrics-port`` serves
    them where Prometheus can scrape, as the other commands do."""
    if ctx.invoked_subcommand is not None:
        return
    require("fastapi", "web", "the console")
    from streamsource.console import ConsoleConfig, create_app
    from streamsource.console.config import is_loopback

    if not is_loopback(host) and users_file is None:
        raise BadInput(f"refusing to listen on {host} without --auth: anyone there could use it")
    if (certfile is None) != (keyfile is None):
        raise BadInput("--certfile and --keyfile go together")
    if store_url is None and bootstrap is None:
        raise BadInput("nothing to show: give --store URL and/or --bootstrap HOST:PORT")
    if store_url is not None and scheme_of(store_url) == "sqlite":
        path, _ = parse_url(store_url)
        if not os.path.exists(path):
            raise BadInput(f"no store at {path}")
    kafka_config: dict[str, str] = {}
    if bootstrap is not None:
        bootstrap, kafka_config = resolve(bootstrap, pop_security_options(security_options))
    config = ConsoleConfig(
        store_url=store_url,
        bootstrap=bootstrap,
        kafka_config=kafka_config,
        users_file=users_file,
        mask_values=mask_values,
        projections=projections,
        aggregates=aggregates,
    )
    app = create_app(config)
    if not is_loopback(host) and certfile is None:
        click.echo(
            f"warning: on {host} the session cookie is Secure: browsers send it over HTTPS only;"
            " give --certfile/--keyfile or put a TLS proxy in front",
            err=True,
        )
    if store_url is not None:
        app.state.console.store.head_position()  # a wrong URL fails here, not on first page
    start_metrics(metrics_port, metrics_host)
    serve(app, host, port, certfile, keyfile)


def serve(app: object, host: str, port: int, certfile: str | None, keyfile: str | None) -> None:
    """Run uvicorn on a socket bound here, so the URL printed has the real port."""
    import uvicorn

    try:
        sock = tcp_listener(host, port)
    except OSError as exc:
        raise BadInput(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound = sock.getsockname()[1]
    scheme = "https" if certfile else "http"
    shown = f"[{host}]" if sock.family == socket.AF_INET6 else host
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        log_level="warning",
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)

    original_startup = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await original_startup(sockets)
        click.echo(f"console at {scheme}://{shown}:{bound}/")
        sys.stdout.flush()

    server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[sock])


# -- users --------------------------------------------------------------------------------


@command.group()
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("console-users.json"),
    show_default=True,
    help="The users file.",
)
@click.pass_context
def users(ctx: click.Context, path: Path) -> None:
    """Create and change the users of ``console --auth FILE``."""
    require("argon2", "web", "console users")
    ctx.obj = path


def _load(path: Path) -> object:
    from streamsource.console.auth import Users

    return Users.load(path) if path.exists() else Users({}, path)


@users.command("set")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "admin"]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.pass_obj
@reporting_errors
def set_user(path: Path, name: str, role: str, password_stdin: bool) -> None:
    """Add NAME or change their role and password (asked for, or read from stdin)."""
    from streamsource.console.auth import MAX_PASSWORD_CHARS, Users

    if password_stdin:
        password = sys.stdin.read(MAX_PASSWORD_CHARS + 2).rstrip("\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    table = _load(path)
    assert isinstance(table, Users)
    table.set(name, role, password)
    table.save(path)
    click.echo(f"{name} is now {'an admin' if role == 'admin' else 'a viewer'} in {path}")


@users.command("remove")
@click.argument("name")
@click.pass_obj
@reporting_errors
def remove_user(path: Path, name: str) -> None:
    """Remove NAME from the users file."""
    from streamsource.console.auth import Users

    table = _load(path)
    assert isinstance(table, Users)
    if not table.remove(name):
        raise BadInput(f"no user {name!r} in {path}")
    table.save(path)
    click.echo(f"removed {name} from {path}")


@users.command("list")
@click.pass_obj
@reporting_errors
def list_users(path: Path) -> None:
    """The users and their roles."""
    from streamsource.console.auth import Users

    table = _load(path)
    assert isinstance(table, Users)
    for user in sorted(table.users.values(), key=lambda u: u.name):
        click.echo(f"{user.name}  {user.role}")
