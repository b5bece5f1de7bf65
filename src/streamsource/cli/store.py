"""``streamsource store``: append to, read and inspect an event store from the shell.

Every subcommand opens the store at ``--store`` (default: ``$STREAMSOURCE_STORE``, else
``sqlite:///streamsource.db``), does one thing and closes it. Errors print one line,
``error: ...``, on stderr: exit code 2 for bad input on the command line (JSON, versions,
times), 1 when the store refused or failed the operation.

More subcommands (e.g. ``migrate`` for PostgreSQL) plug in as modules listed in
:data:`EXTRA_COMMANDS`, each exposing a click command named ``command``; the helpers
:func:`open_store_from` and :func:`reporting_errors` are theirs to use.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn, ParamSpec, TypeVar

import click
import msgspec

import streamsource as ss
from streamsource.eventstore import default_url
from streamsource.eventstore.backends import scheme_of
from streamsource.eventstore.backends.sqlite import parse_url
from streamsource.eventstore.events import ExpectedVersion

EXTRA_COMMANDS: dict[str, str] = {"migrate": "streamsource.cli.store_migrate"}
"""Subcommand name -> module with a click ``command``; skipped while the module is absent."""

MAX_JSON_INPUT = 16 * 1024 * 1024
"""The largest JSON argument or stdin input accepted (the store's own event bound)."""

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

P = ParamSpec("P")
R = TypeVar("R")


class BadInput(Exception):
    """A command-line value that cannot be used (reported as one line, exit code 2)."""


def reporting_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn streamsource errors and bad input into one ``error:`` line and an exit code."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except BadInput as exc:
            _fail(str(exc), EXIT_BAD_INPUT)
        except ss.StreamsourceError as exc:
            _fail(f"{type(exc).__name__}: {exc}", EXIT_FAILED)

    return run


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class StoreNotFound(ss.InterfaceError):
    """A command that only reads names a SQLite file that does not exist."""


@contextmanager
def open_store_from(ctx: click.Context, *, must_exist: bool = False) -> Iterator[ss.EventStore]:
    """The store named by the group's ``--store``, closed when the block ends.

    ``must_exist``: refuse a SQLite file that is not there rather than create an empty store
    (a typo in a path would otherwise read as "no events").
    """
    url = ctx.find_root().meta.get("streamsource.store_url") or default_url()
    if must_exist and scheme_of(url) == "sqlite":
        path, _ = parse_url(url)
        if not os.path.exists(path):
            raise StoreNotFound(f"no store at {path} (an append creates one)")
    store = ss.open_store(url)
    try:
        yield store
    finally:
        store.close()


class _StoreGroup(click.Group):
    """The built-in subcommands plus the plug-in ones whose modules are installed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        extra = [name for name in EXTRA_COMMANDS if self._extra(name) is not None]
        return sorted([*super().list_commands(ctx), *extra])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._extra(cmd_name)

    @staticmethod
    def _extra(name: str) -> click.Command | None:
        module_name = EXTRA_COMMANDS.get(name)
        if module_name is None:
            return None
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        found = getattr(module, "command", None)
        return found if isinstance(found, click.Command) else None


@click.group(cls=_StoreGroup)
@click.option(
    "--store",
    "store_url",
    envvar="STREAMSOURCE_STORE",
    default=None,
    metavar="URL",
    help="Store URL: sqlite:///PATH, memory://, postgresql://... [env: STREAMSOURCE_STORE]",
)
@click.option("--url", "old_url", default=None, hidden=True)  # the name before --store
@click.pass_context
def command(ctx: click.Context, store_url: str | None, old_url: str | None) -> None:
    """Append to, read and inspect an event store."""
    ctx.find_root().meta["streamsource.store_url"] = old_url or store_url


# -- parsing command-line values ----------------------------------------------------------

_STATES: dict[str, ExpectedVersion] = {
    "any": ss.ANY,
    "no-stream": ss.NO_STREAM,
    "stream-exists": ss.STREAM_EXISTS,
}


def parse_expected_version(text: str) -> ExpectedVersion:
    """``any``, ``no-stream``, ``stream-exists`` (or with ``_``) or a version >= 0."""
    key = text.strip().lower().replace("_", "-")
    if key in _STATES:
        return _STATES[key]
    if re.fullmatch(r"[0-9]+", key):
        return int(key)
    raise BadInput(
        f"invalid expected version {text!r}: use any, no-stream, stream-exists or a version >= 0"
    )


def parse_json(text: str, what: str) -> Any:
    """Decode a JSON argument (``-`` reads it from stdin), bounded in size."""
    if text == "-":
        text = sys.stdin.read(MAX_JSON_INPUT + 1)
    if len(text) > MAX_JSON_INPUT:
        raise BadInput(f"{what} is larger than {MAX_JSON_INPUT} characters")
    try:
        return msgspec.json.decode(text.encode())
    except msgspec.DecodeError as exc:
        raise BadInput(f"{what} is not valid JSON: {exc}") from None


def parse_as_of(text: str) -> tuple[int | None, datetime | None]:
    """A version number or an ISO-8601 time (a time without offset is taken as UTC)."""
    if re.fullmatch(r"[0-9]+", text.strip()):
        return int(text), None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(
            f"invalid --as-of {text!r}: use a version number or an ISO-8601 time "
            "such as 2024-05-01T12:00:00Z"
        ) from None
    return None, when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _json_line(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _event_json(event: ss.RecordedEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "stream": event.stream,
        "version": event.version,
        "position": event.position,
        "type": event.type,
        "data": event.data,
        "metadata": dict(event.metadata),
        "recorded_at": event.recorded_at.isoformat(),
    }


# -- subcommands --------------------------------------------------------------------------


@command.command()
@click.argument("stream")
@click.argument("event_type", metavar="TYPE")
@click.argument("data", metavar="JSON")
@click.option(
    "--expected-version",
    "expected",
    default="any",
    show_default=True,
    metavar="V",
    help="any, no-stream, stream-exists, or the stream's current version.",
)
@click.option("--metadata", default=None, metavar="JSON", help="Event metadata (a JSON object).")
@click.pass_context
@reporting_errors
def append(
    ctx: click.Context,
    stream: str,
    event_type: str,
    data: str,
    expected: str,
    metadata: str | None,
) -> None:
    """Append one event of TYPE with data JSON ("-": read it from stdin) to STREAM."""
    expected_version = parse_expected_version(expected)
    parsed_data = parse_json(data, "event data")
    parsed_metadata = {} if metadata is None else parse_json(metadata, "--metadata")
    if not isinstance(parsed_metadata, dict):
        raise BadInput('--metadata must be a JSON object, e.g. \'{"reason": "salary"}\'')
    event = ss.NewEvent(event_type, parsed_data, metadata=parsed_metadata)
    with open_store_from(ctx) as store:
        result = store.append(stream, [event], expected_version=expected_version)
    click.echo(
        f"appended {event_type} to {stream}: version {result.version}, position {result.position}"
    )


@command.command()
@click.argument("stream")
@click.option("--backward", is_flag=True, help="Newest event first.")
@click.option(
    "--as-of", "as_of", default=None, metavar="VERSION|ISO-TIME", help="The stream as it was then."
)
@click.option("--limit", type=click.IntRange(min=0), default=None, help="At most N events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
@reporting_errors
def read(
    ctx: click.Context,
    stream: str,
    backward: bool,
    as_of: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Print the events of STREAM."""
    as_of_version, as_of_time = (None, None) if as_of is None else parse_as_of(as_of)
    with open_store_from(ctx, must_exist=True) as store:
        events = store.read_stream(
            stream,
            backwards=backward,
            limit=limit,
            as_of_version=as_of_version,
            as_of_time=as_of_time,
        )
        count = 0
        for event in events:
            count += 1
            if as_json:
                click.echo(_json_line(_event_json(event)))
            else:
                metadata = f"  {_json_line(dict(event.metadata))}" if event.metadata else ""
                click.echo(
                    f"{event.version:>6}  {event.recorded_at.isoformat(timespec='milliseconds')}"
                    f"  {event.type}  {_json_line(event.data)}{metadata}"
                )
    if count == 0 and not as_json:
        click.echo(f"no events in {stream}", err=True)


@command.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
@reporting_errors
def streams(ctx: click.Context, as_json: bool) -> None:
    """List the streams and their last version."""
    with open_store_from(ctx, must_exist=True) as store:
        for summary in store.list_streams():
            soft_deleted = _soft_deleted(summary)
            if as_json:
                click.echo(
                    _json_line(
                        {
                            "stream": summary.stream,
                            "version": summary.version,
                            "hard_deleted": summary.hard_deleted,
                            "soft_deleted": soft_deleted,
                        }
                    )
                )
            else:
                deleted = "  (deleted)" if summary.hard_deleted else ""
                deleted = "  (soft-deleted)" if soft_deleted else deleted
                version = "-" if summary.version is None else summary.version
                click.echo(f"{summary.stream}  {version}{deleted}")


def _soft_deleted(summary: ss.StreamSummary) -> bool:
    """Whether every event of the stream is hidden by a soft delete (it reads as empty)."""
    hidden_below = None if summary.metadata is None else summary.metadata.truncate_before
    return (
        not summary.hard_deleted
        and summary.version is not None
        and hidden_below is not None
        and hidden_below > summary.version
    )


@command.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_context
@reporting_errors
def stats(ctx: click.Context, as_json: bool) -> None:
    """Print the store's figures (events, streams, head position, backend...)."""
    with open_store_from(ctx, must_exist=True) as store:
        figures = store.stats()
    if as_json:
        click.echo(_json_line(figures))
        return
    width = max((len(key) for key in figures), default=0)
    for key, value in figures.items():
        click.echo(f"{key:<{width}}  {value}")


@command.command()
@click.option(
    "--vacuum",
    is_flag=True,
    help="SQLite: also shrink the file (rewrites it; blocks writers while it runs).",
)
@click.pass_context
@reporting_errors
def scavenge(ctx: click.Context, vacuum: bool) -> None:
    """Remove for good the events that stream metadata and deletes hide.

    Every other event keeps its position; a live stream keeps its last event, and the
    newest event of the log stays until something is appended after it. Safe beside running
    applications; if interrupted, run it again.
    """

    def progress(report: ss.ScavengeReport) -> None:
        click.echo(
            f"checked {report.streams_checked} streams, removed {report.events_removed} events"
            f" from {report.streams_scavenged}",
            err=True,
        )

    with open_store_from(ctx, must_exist=True) as store:
        report = store.scavenge(vacuum=vacuum, progress=progress)
    click.echo(
        f"scavenged: removed {report.events_removed} events from {report.streams_scavenged}"
        f" of {report.streams_checked} streams in {report.seconds:.1f}s"
    )
