"""``streamsource demo``: run the examples on an embedded SQLite file and print their trail.

The demo is a list of steps (:data:`STEPS`); each gets a :class:`DemoContext` (the
directory, an open store, the output) and prints what it did. New sections (the broker's
streaming example, the outbox bridge) are more :class:`DemoStep` entries: appended to
:data:`STEPS`, or kept in their own module listed in :data:`LATER_STEP_MODULES`.

The event-sourcing steps run the apps in the repository's ``examples/`` directory (or a
copy packaged as ``streamsource/_examples``), so the demo shows exactly the tested code.
Output is drawn with rich in a terminal (the ``cli`` extra) and as plain text when piped
or without rich.
"""

from __future__ import annotations

import importlib
import importlib.util
import secrets
import sys
import tempfile
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol

import click

import streamsource as ss
from streamsource.extras import available, require

# -- output -------------------------------------------------------------------------------


class Trail(Protocol):
    """Where a step prints: a heading per step, lines of text and tables."""

    def step(self, number: int, title: str, intro: str) -> None: ...

    def text(self, line: str) -> None: ...

    def table(
        self, title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
    ) -> None: ...


class PlainTrail:
    """Plain text, for pipes and logs."""

    def step(self, number: int, title: str, intro: str) -> None:
        click.echo(f"\n== {number}. {title} ==")
        click.echo(textwrap.fill(intro, width=88))

    def text(self, line: str) -> None:
        click.echo(line)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        cells = [[str(c) for c in columns], *([_cell(v) for v in row] for row in rows)]
        widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
        click.echo(f"-- {title}")
        for index, row in enumerate(cells):
            click.echo(
                "  ".join(
                    value.ljust(width) for value, width in zip(row, widths, strict=True)
                ).rstrip()
            )
            if index == 0:
                click.echo("  ".join("-" * width for width in widths))


class RichTrail:
    """Panels and tables, for a terminal."""

    def __init__(self, force: bool) -> None:
        from rich.console import Console

        self.console = Console(force_terminal=force or None, highlight=False)

    def step(self, number: int, title: str, intro: str) -> None:
        from rich.panel import Panel

        self.console.print()
        self.console.print(Panel(intro, title=f"[bold]{number}. {title}[/bold]", expand=False))

    def text(self, line: str) -> None:
        from rich.markup import escape

        self.console.print(escape(line))

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for column in columns:
            # fold, not the default ellipsis: a stream name cut to "account-4ff…" could be
            # either of two streams in an 80-column terminal
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(_cell(value) for value in row))
        self.console.print(table)


def _cell(value: object) -> str:
    return "" if value is None else str(value)


# -- steps --------------------------------------------------------------------------------


@dataclass
class DemoContext:
    """What a step gets: the demo directory, the open store, the output, a per-run id."""

    directory: Path
    store: ss.EventStore
    out: Trail
    run_id: str  # in every id a step creates, so a --dir can be reused run after run


@dataclass(frozen=True)
class DemoStep:
    """One section of the demo."""

    title: str
    intro: str
    run: Callable[[DemoContext], None]


class ExamplesNotFound(ss.StreamsourceError):
    """The examples directory is not next to this installation."""


def example_app(name: str) -> ModuleType:
    """Import ``examples/<name>/app.py`` (each app imports only the public API)."""
    module_name = f"streamsource_demo_examples.{name}"
    loaded = sys.modules.get(module_name)
    if loaded is not None:
        return loaded
    package = Path(__file__).resolve().parents[1]
    candidates = [
        package / "_examples" / name / "app.py",
        package.parents[1] / "examples" / name / "app.py",
    ]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise ExamplesNotFound(
            f"example {name!r} not found; looked in {', '.join(map(str, candidates))}"
        )
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # msgspec resolves the event classes' annotations here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _bank(ctx: DemoContext) -> None:
    example_app("bank").run_demo(ctx.store, ctx.out, account_id=ctx.run_id)


def _pricing(ctx: DemoContext) -> None:
    crud_path = ctx.directory / "crud-products.db"
    example_app("pricing").run_demo(ctx.store, ctx.out, ctx.run_id, crud_path)


def _concurrency(ctx: DemoContext) -> None:
    example_app("concurrency").run_demo(ctx.store, ctx.out, ctx.run_id)


def _mall(ctx: DemoContext) -> None:
    if not (available("fastapi") and available("uvicorn")):
        ctx.out.text("skipped: pip install 'streamsource[web]' (or '.[all]') to run the mall")
        return
    from streamsource.cli.mall import mall_module

    mall_module("demo").run_demo(ctx.directory / f"mall-{ctx.run_id}", ctx.out)


STEPS: list[DemoStep] = [
    DemoStep(
        "Bank account",
        "Deposits and withdrawals are events; the balance is rebuilt by applying them in order. "
        "An overdraft is refused with a domain error instead of being silently ignored.",
        _bank,
    ),
    DemoStep(
        "Product price history",
        "Each price change is an event with who/why metadata. A CRUD row, updated in place, "
        "keeps only the current price; the event stream answers 'what was it then, and why?'.",
        _pricing,
    ),
    DemoStep(
        "Optimistic concurrency",
        "Two clerks load the same product version and save at once: exactly one append wins; "
        "the other gets WrongExpectedVersion and retries on the fresh state.",
        _concurrency,
    ),
    DemoStep(
        "The reference mall",
        "Intelli-Mall's nine services, each with its own store, talking through messages. An "
        "order goes from basket to completed through the create-order saga; another, paid too "
        "little, is rejected and the saga undoes its shopping list.",
        _mall,
    ),
]
"""The demo's sections, in order; later sections append here."""


LATER_STEP_MODULES: tuple[str, ...] = (
    "streamsource.cli.demo_streaming",
    "streamsource.cli.demo_bridge",
)
"""Modules that add sections after :data:`STEPS`, each exposing ``STEPS: list[DemoStep]``.

Imported when the demo runs (they may import this module), skipped while absent.
"""


def _kafka_not_installed(ctx: DemoContext) -> None:
    ctx.out.text("skipped: pip install 'streamsource[kafka]' (or '.[all]') to run these sections")


KAFKA_MISSING = DemoStep(
    "Streaming and the outbox bridge",
    "These sections use the confluent-kafka client (librdkafka), an optional dependency that"
    " is not installed here.",
    _kafka_not_installed,
)


def all_steps() -> list[DemoStep]:
    """:data:`STEPS` followed by the sections of the installed :data:`LATER_STEP_MODULES`
    (all of which stream through Kafka: without the ``kafka`` extra, one note instead)."""
    steps = list(STEPS)
    if not available("confluent_kafka"):
        return [*steps, KAFKA_MISSING]
    for module_name in LATER_STEP_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        steps.extend(getattr(module, "STEPS", []))
    return steps


def run_steps(directory: Path, out: Trail, steps: Sequence[DemoStep] | None = None) -> str:
    """Run ``steps`` (default: :func:`all_steps`) on ``directory/demo.db``; return its URL."""
    steps = all_steps() if steps is None else steps
    directory.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{directory / 'demo.db'}"
    run_id = secrets.token_hex(3)
    with ss.open_store(url) as store:
        context = DemoContext(directory, store, out, run_id)
        for number, step in enumerate(steps, start=1):
            out.step(number, step.title, step.intro)
            step.run(context)
    return url


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to keep the demo's SQLite files (default: a fresh temporary directory).",
)
@click.option(
    "--style",
    type=click.Choice(["auto", "rich", "plain"]),
    default="auto",
    show_default=True,
    help="Output style: rich in a terminal (when installed), plain when piped (auto).",
)
def command(directory: Path | None, style: str) -> None:
    """Run the event-sourcing examples on an embedded SQLite store and print their trail."""
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="streamsource-demo-"))
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        click.echo(f"error: cannot create the demo directory {directory}: {exc.strerror}", err=True)
        sys.exit(1)
    if style == "rich":
        try:
            require("rich", "cli", "--style rich")
        except ss.StreamsourceError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
    use_rich = style == "rich" or (style == "auto" and sys.stdout.isatty() and available("rich"))
    out: Trail = RichTrail(force=style == "rich") if use_rich else PlainTrail()
    out.text(f"demo directory: {directory}")
    try:
        url = run_steps(directory, out)
    except ss.StreamsourceError as exc:
        click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    out.text("")
    out.text(f"done. Inspect the events with: streamsource store --store {url} streams")
