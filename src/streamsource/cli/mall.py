"""``streamsource mall``: the reference mall (``examples/mall``) as a server and a load driver.

``serve`` runs the chosen services (all by default) in one process behind one HTTP port, their
messages through streamsource's broker, which it starts as a child process ending with it
(``mall broker``, hidden; or the Kafka cluster
``--bootstrap`` names, or with ``--transport local`` the services' stores). Several ``serve``
processes with different ``--services`` and one ``--data-dir`` (or one ``--store
postgresql://...``) make the mall a set of cooperating processes: the first one runs the
broker and prints its address, the others get it as ``--bootstrap``. ``load`` drives a running
mall like shoppers and prints what it measured.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from types import ModuleType

import click

import streamsource as ss
from streamsource.cli.listener import tcp_listener
from streamsource.extras import require


class MallNotFound(ss.StreamsourceError):
    """The mall's package is neither installed with streamsource nor next to its source."""


def mall_module(name: str) -> ModuleType:
    """``<mall package>.<name>``: the copy the wheel carries, else the repository's."""
    require("fastapi", "web", "the mall")
    require("uvicorn", "web", "the mall")
    try:
        return importlib.import_module(f"streamsource._examples.mall.{name}")
    except ModuleNotFoundError as missing:
        if not (missing.name or "").startswith("streamsource._examples"):
            raise
    root = Path(__file__).resolve().parents[3]
    if not (root / "examples" / "mall" / "app.py").is_file():
        raise MallNotFound(f"the mall's package is not installed, nor under {root / 'examples'}")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"examples.mall.{name}")


@click.group(name="mall")
def command() -> None:
    """The reference mall: Intelli-Mall's services on streamsource."""


@command.command(name="serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("mall-data"),
    show_default=True,
    help="Where each service keeps its SQLite store (<service>.db).",
)
@click.option(
    "--store",
    default=None,
    help="postgresql://... : one database, a schema per service (default: SQLite files).",
)
@click.option(
    "--services",
    default=None,
    help="Comma-separated services to run here (default: all of them). Several processes"
    " share one broker: start the first without --bootstrap (it prints 'mall: broker at"
    " HOST:PORT') and give that address to the others with --bootstrap.",
)
@click.option(
    "--transport",
    type=click.Choice(["broker", "local"]),
    default="broker",
    show_default=True,
    help="broker: messages through Kafka (the embedded broker, or --bootstrap);"
    " local: through the services' stores, no broker at all.",
)
@click.option(
    "--bootstrap",
    default=None,
    help="HOST:PORT of a Kafka cluster (or of another mall serve's broker) to carry the"
    " messages (default: start streamsource's broker as a child process that ends with"
    " this one, data under DATA_DIR/broker).",
)
@click.option(
    "--broker-port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the embedded broker on 127.0.0.1 (0: a free one, printed at start).",
)
@click.option(
    "--step-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Seconds a saga step waits for its reply before it is sent again or compensated.",
)
@click.option(
    "--proxy-headers/--no-proxy-headers",
    default=False,
    show_default=True,
    help="Take clients' addresses and scheme from the X-Forwarded-* headers of a proxy on"
    " 127.0.0.1 (off: mall serve is not behind a proxy by default, and reading them costs"
    " CPU per request).",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log every request (a line per request costs the server CPU under load).",
)
def serve(
    host: str,
    port: int,
    data_dir: Path,
    store: str | None,
    services: str | None,
    transport: str,
    bootstrap: str | None,
    broker_port: int,
    step_timeout: float,
    proxy_headers: bool,
    access_log: bool,
) -> None:
    """Run the mall's services and their HTTP API (OpenAPI at /openapi.json, docs at /docs)."""
    try:
        app_module = mall_module("app")
        server_module = mall_module("platform.server")
        names = [s.strip() for s in services.split(",") if s.strip()] if services else None
        kwargs = {} if names is None else {"services": names}
        mall = app_module.Mall(
            data_dir,
            store=store,
            step_timeout=step_timeout,
            transport=transport,
            bootstrap=bootstrap,
            broker_port=broker_port,
            **kwargs,
        )
    except ss.StreamsourceError as error:
        raise click.ClickException(str(error)) from None
    if mall.broker_address is not None:
        click.echo(f"mall: broker at {mall.broker_address}", err=True)
    import uvicorn

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        listener = tcp_listener(host, port)
    except OSError as exc:
        mall.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound = listener.getsockname()[1]
    # uvloop and httptools (both in the web extra): the event loop and the HTTP parser in C,
    # which is most of the server's own CPU per request; a response in one write
    config = uvicorn.Config(
        mall.asgi,
        loop="uvloop",
        http=server_module.OneWriteHttpTools,
        proxy_headers=proxy_headers,
        log_level="info" if access_log else "warning",
        access_log=access_log,
    )
    server = uvicorn.Server(config)
    click.echo(f"mall: {', '.join(mall.names)} on http://{host}:{bound}", err=True)
    server.run(sockets=[listener])


@command.command(name="broker", hidden=True)
@click.option("--data-dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=0, type=click.IntRange(0, 65535))
def broker(data_dir: Path, host: str, port: int) -> None:
    """The broker of a ``mall serve``, which starts this as its child: serves until its
    standard input ends (the parent gone or done), then stops cleanly."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        broker_module = mall_module("platform.broker")
    except ss.StreamsourceError as error:
        raise click.ClickException(str(error)) from None
    broker_module.serve_child(data_dir, host, port)


@command.command(name="load")
@click.option(
    "--url",
    "urls",
    multiple=True,
    default=["http://127.0.0.1:8080"],
    show_default=True,
    help="The mall; repeat it for each process of a mall split with --services (each"
    " request goes to the process that serves its path).",
)
@click.option("--clients", default=8, show_default=True, type=click.IntRange(1, 1000))
@click.option("--duration", default=10.0, show_default=True, type=click.FloatRange(0.1, 86400))
@click.option(
    "--rate",
    default=None,
    type=click.FloatRange(0.01, 100_000),
    help="Orders started per second, all shoppers together (default: as fast as they can).",
)
def load(urls: tuple[str, ...], clients: int, duration: float, rate: float | None) -> None:
    """Drive a running mall like shoppers; print completed orders/s and checkout-to-approved
    p50/p99."""
    try:
        load_module = mall_module("load")
    except ss.StreamsourceError as error:
        raise click.ClickException(str(error)) from None
    try:
        result = load_module.run_load(list(urls), clients, duration, rate)
    except (OSError, load_module.LoadError) as error:
        raise click.ClickException(f"{', '.join(urls)}: {error}") from None
    click.echo(
        f"orders: {result.started} started, {result.completed} completed, {result.failed} failed"
        f" in {result.elapsed:.1f} s"
    )
    click.echo(f"completed orders/s: {result.completed_per_second:.1f}")
    if result.completed:
        click.echo(
            f"HTTP requests per order: {result.requests / result.completed:.1f}"
            f" ({result.polls / result.completed:.1f} of them polls)"
        )
    click.echo(
        f"checkout to approved: p50 {result.percentile(50) * 1000:.0f} ms,"
        f" p99 {result.percentile(99) * 1000:.0f} ms"
    )
    for failure in result.errors:
        click.echo(f"  failed: {failure}", err=True)
    if result.failed:
        raise SystemExit(1)
