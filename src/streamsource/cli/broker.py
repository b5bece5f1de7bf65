"""``streamsource broker``: run the Kafka-compatible broker until SIGINT/SIGTERM;
``streamsource broker users ...``: manage its SASL/SCRAM users (also while it runs)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from streamsource.cli.metrics_option import metrics_options, start_metrics
from streamsource.errors import BrokerError, CorruptStoreError
from streamsource.kafka.broker.config import DEFAULT_DATA_DIR, BrokerConfig
from streamsource.kafka.security.listeners import Listener, TlsFiles
from streamsource.kafka.security.scram import ScramCredential
from streamsource.kafka.storage import StorageError
from streamsource.kafka.storage.security import Users, UserStore

T = TypeVar("T")


@click.group(name="broker", invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=9092,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port; the one chosen is printed).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Where topics, logs, offsets and producer state are kept.",
)
@click.option(
    "--partitions",
    default=1,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Partitions of an auto-created topic.",
)
@click.option(
    "--fsync",
    type=click.Choice(["always", "interval"]),
    default="interval",
    show_default=True,
    help="always: acks=all is answered only once the data is on disk; "
    "interval: logs are flushed every --flush-interval-ms.",
)
@click.option("--flush-interval-ms", default=1000, show_default=True, type=click.IntRange(1))
@click.option(
    "--auto-create/--no-auto-create",
    default=True,
    show_default=True,
    help="Create a topic the first time a client names it.",
)
@click.option(
    "--group-initial-rebalance-delay-ms",
    default=3000,
    show_default=True,
    type=click.IntRange(0),
    help="How long the first rebalance of an empty group waits for more members "
    "(Kafka's group.initial.rebalance.delay.ms).",
)
@click.option(
    "--offsets-retention-minutes",
    default=7 * 24 * 60,
    show_default=True,
    type=click.IntRange(1),
    help="Committed offsets of a group without members expire this long after the later of "
    "their commit and the group becoming empty (Kafka's offsets.retention.minutes).",
)
@click.option("--advertised-host", default=None, help="Host given to clients (default: --host).")
@click.option("--advertised-port", default=None, type=click.IntRange(1, 65535))
@click.option(
    "--listener",
    "listener_specs",
    multiple=True,
    metavar="PROTOCOL://HOST:PORT",
    help="A listener (repeatable; PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL); replaces "
    "--host/--port.",
)
@click.option(
    "--advertised-listener",
    "advertised_specs",
    multiple=True,
    metavar="PROTOCOL://HOST:PORT",
    help="What clients of that listener are told to connect to, where it differs.",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The broker's certificate chain (PEM), for SSL and SASL_SSL listeners.",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The private key of --tls-cert (PEM).",
)
@click.option(
    "--tls-ca",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="CA of client certificates: SSL listeners then require one (mTLS), and the "
    "principal is its subject (User:CN=...).",
)
@click.option(
    "--allow-plaintext",
    is_flag=True,
    help="Allow a PLAINTEXT or SASL_PLAINTEXT listener on an address other machines reach.",
)
@click.option(
    "--log-cleaner-backoff-ms",
    default=15_000,
    show_default=True,
    type=click.IntRange(1),
    help="How often the log cleaner looks for compacted topics to clean.",
)
@click.option(
    "--log-cleaner-dedupe-buffer-size",
    default=128 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(1024 * 1024),
    help="Bytes of key -> offset map one cleaning pass may use; more keys take more passes.",
)
@metrics_options
@click.option(
    "--sasl-mechanisms",
    default="PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
    show_default=True,
    help="SASL mechanisms SASL listeners offer (comma-separated).",
)
@click.option(
    "--sasl-session-lifetime-ms",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="SASL clients must re-authenticate within this long (KIP-368; Kafka's "
    "connections.max.reauth.ms); 0: never.",
)
@click.option(
    "--authorizer",
    is_flag=True,
    help="Enforce ACLs (CreateAcls/DescribeAcls/DeleteAcls, kept in the data dir): a "
    "resource no ACL names is then refused.",
)
@click.option(
    "--super-users",
    default="",
    metavar="User:NAME[;User:NAME...]",
    help="Principals the authorizer lets do anything (Kafka's super.users).",
)
@click.option(
    "--allow-everyone-if-no-acl",
    is_flag=True,
    help="With --authorizer, allow a resource no ACL names (Kafka's allow.everyone.if.no.acl.found).",
)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
)
@click.pass_context
def command(
    ctx: click.Context,
    host: str,
    port: int,
    data_dir: Path,
    partitions: int,
    fsync: str,
    flush_interval_ms: int,
    auto_create: bool,
    group_initial_rebalance_delay_ms: int,
    offsets_retention_minutes: int,
    advertised_host: str | None,
    advertised_port: int | None,
    listener_specs: tuple[str, ...],
    advertised_specs: tuple[str, ...],
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_ca: Path | None,
    allow_plaintext: bool,
    sasl_mechanisms: str,
    sasl_session_lifetime_ms: int,
    authorizer: bool,
    super_users: str,
    allow_everyone_if_no_acl: bool,
    log_cleaner_backoff_ms: int,
    log_cleaner_dedupe_buffer_size: int,
    metrics_port: int | None,
    metrics_host: str,
    log_level: str,
) -> None:
    """Run a Kafka-compatible broker; serves until SIGINT/SIGTERM, then shuts down cleanly."""
    if ctx.invoked_subcommand is not None:
        return  # `broker users ...`: the subcommand does the work
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        listeners = _listeners(listener_specs, advertised_specs)
    except BrokerError as exc:
        raise click.BadParameter(str(exc), param_hint="--listener") from exc
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    tls = TlsFiles(tls_cert, tls_key, tls_ca) if tls_cert and tls_key else None
    if tls is None and tls_ca is not None:
        raise click.UsageError("--tls-ca needs --tls-cert and --tls-key")
    try:
        config = BrokerConfig(
            host=host,
            port=port,
            data_dir=data_dir,
            default_partitions=partitions,
            fsync="always" if fsync == "always" else "interval",
            flush_interval_ms=flush_interval_ms,
            auto_create_topics=auto_create,
            group_initial_rebalance_delay_ms=group_initial_rebalance_delay_ms,
            offsets_retention_ms=offsets_retention_minutes * 60_000,
            advertised_host=advertised_host,
            advertised_port=advertised_port,
            log_cleaner_backoff_ms=log_cleaner_backoff_ms,
            log_cleaner_dedupe_buffer_bytes=log_cleaner_dedupe_buffer_size,
            listeners=listeners,
            tls=tls,
            allow_plaintext=allow_plaintext,
            sasl_mechanisms=tuple(m.strip().upper() for m in sasl_mechanisms.split(",") if m),
            sasl_session_lifetime_ms=sasl_session_lifetime_ms,
            authorizer=authorizer,
            super_users=tuple(u.strip() for u in super_users.split(";") if u.strip()),
            allow_everyone_if_no_acl=allow_everyone_if_no_acl,
        )
    except BrokerError as exc:
        raise click.UsageError(str(exc)) from exc
    start_metrics(metrics_port, metrics_host)
    try:
        _run_loop(_serve(config))
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop's event loop where it is installed, else on asyncio's.

    uvloop (libuv, in C) does per callback, socket read and thread wake-up what asyncio's
    loop does in Python; a produce request costs the loop a few of each, so the loop's
    share of the broker's CPU per message shrinks. The broker uses only the public
    protocol and transport API, which both loops implement.
    """
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


async def _serve(config: BrokerConfig) -> None:
    # imported here so that `streamsource broker --help` does not load the whole broker
    from streamsource.kafka.broker.allocator import keep_large_buffers
    from streamsource.kafka.broker.app import Broker

    keep_large_buffers()  # this process is only the broker (see the module)
    broker = Broker(config)
    host, port = await broker.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    for entry in broker.listeners:
        # one line per listener, before the line BrokerProcess waits for
        click.echo(f"listener {entry.listener.protocol} on {entry.host}:{entry.port}")
    click.echo(f"listening on {host}:{port}, data in {config.data_dir}", err=False)
    try:
        await stop.wait()
    finally:
        click.echo("shutting down")
        await broker.stop()
        click.echo("stopped cleanly")


def _listeners(specs: tuple[str, ...], advertised: tuple[str, ...]) -> tuple[Listener, ...]:
    listeners = {listener.protocol: listener for listener in map(Listener.parse, specs)}
    if len(listeners) != len(specs):
        raise BrokerError("one --listener per security protocol")
    for spec in advertised:
        protocol = spec.partition("://")[0].strip().upper()
        if protocol not in listeners:
            raise BrokerError(f"--advertised-listener {spec!r} names no --listener")
        listeners[protocol] = listeners[protocol].advertise(spec)
    return tuple(listeners.values())


_data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="The broker's data dir (its users are kept in users.json there).",
)


@command.group(name="users")
def users() -> None:
    """SASL/SCRAM users: salted, iterated keys only, never a password. A running broker
    picks up changes at the next authentication."""


@users.command(name="set")
@click.argument("name")
@click.option(
    "--mechanism",
    type=click.Choice(["SCRAM-SHA-256", "SCRAM-SHA-512"]),
    default="SCRAM-SHA-256",
    show_default=True,
)
@click.option("--iterations", default=8192, show_default=True, type=click.IntRange(4096, 16384))
@_data_dir_option
def users_set(name: str, mechanism: str, iterations: int, data_dir: Path) -> None:
    """Create NAME or change its password, read from stdin (one line)."""
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.UsageError("no password on stdin")
    credential = ScramCredential.derive(mechanism, password, iterations=iterations)
    _edit_users(data_dir, lambda u: u.setdefault(name, {}).__setitem__(mechanism, credential))
    click.echo(f"user {name}: {mechanism} set")


@users.command(name="list")
@_data_dir_option
def users_list(data_dir: Path) -> None:
    """Each user and its mechanisms (never a key)."""
    store = UserStore(data_dir)
    for name, mechanisms in sorted(_load(store).items()):
        described = ", ".join(
            f"{m} ({c.iterations} iterations)" for m, c in sorted(mechanisms.items())
        )
        click.echo(f"{name}: {described}")


@users.command(name="delete")
@click.argument("name")
@click.option(
    "--mechanism",
    type=click.Choice(["SCRAM-SHA-256", "SCRAM-SHA-512"]),
    default=None,
    help="Delete only this credential (default: the user).",
)
@_data_dir_option
def users_delete(name: str, mechanism: str | None, data_dir: Path) -> None:
    """Delete NAME (or one of its credentials)."""

    def delete(users: Users) -> bool:
        if name not in users or (mechanism and mechanism not in users[name]):
            return False
        if mechanism:
            del users[name][mechanism]
        else:
            del users[name]
        return True

    if not _edit_users(data_dir, delete):
        raise click.ClickException(f"no user {name}" + (f" with {mechanism}" if mechanism else ""))
    click.echo(f"user {name}: deleted" + (f" {mechanism}" if mechanism else ""))


def _load(store: UserStore) -> Users:
    try:
        return store.reload_if_changed()
    except CorruptStoreError as exc:
        raise click.ClickException(str(exc)) from exc


def _edit_users(data_dir: Path, change: Callable[[Users], T]) -> T:
    try:
        return UserStore(data_dir).edit(change)
    except (CorruptStoreError, StorageError) as exc:
        raise click.ClickException(str(exc)) from exc
