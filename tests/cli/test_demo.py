"""`streamsource demo`: the three examples on a real SQLite file, plain when piped."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import streamsource as ss
from streamsource.cli import cli
from streamsource.cli.demo import DemoContext, DemoStep, PlainTrail, RichTrail, run_steps

SCRIPT = Path(sys.executable).parent / "streamsource"


def run_demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "demo", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_demo_prints_the_trail_of_the_three_examples_as_plain_text(tmp_path: Path) -> None:
    result = run_demo("--dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "\x1b[" not in out  # piped: no terminal escapes
    for heading in ("1. Bank account", "2. Product price history", "3. Optimistic concurrency"):
        assert heading in out
    assert "cannot withdraw 500, the balance is only 75" in out
    assert "final balance, rebuilt from 4 events: 75" in out
    assert "set by carol because 'black friday promotion'" in out
    assert "save refused" in out and "expected version 0, but it is at version 1" in out
    assert "final price 1150" in out

    with ss.open_store(f"sqlite:///{tmp_path / 'demo.db'}") as store:
        categories = {summary.stream.split("-")[0] for summary in store.list_streams()}
        assert categories == {"account", "product", "stockitem"}
        assert store.stats()["events"] == 7 + 4 + 3
    assert (tmp_path / "crud-products.db").exists()


@pytest.mark.slow
def test_demo_can_run_again_in_the_same_directory(tmp_path: Path) -> None:
    assert run_demo("--dir", str(tmp_path)).returncode == 0
    again = run_demo("--dir", str(tmp_path))
    assert again.returncode == 0, again.stderr
    with ss.open_store(f"sqlite:///{tmp_path / 'demo.db'}") as store:
        assert store.stats()["events"] == 2 * (7 + 4 + 3)


def test_demo_defaults_to_a_fresh_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # what $TMPDIR would set
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    first_line = result.stdout.splitlines()[0]
    assert first_line.startswith("demo directory: ")
    directory = Path(first_line.removeprefix("demo directory: "))
    assert directory.parent == tmp_path
    assert directory.name.startswith("streamsource-demo-")
    assert (directory / "demo.db").is_file()


def test_demo_draws_rich_panels_and_tables_when_asked(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path), "--style", "rich"])
    assert result.exit_code == 0, result.output
    assert "╭" in result.stdout and "┃" in result.stdout  # a panel and a table
    assert "Optimistic concurrency" in result.stdout


def test_more_steps_plug_in(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[str] = []

    def extra(ctx: DemoContext) -> None:
        ctx.store.append(f"extra-{ctx.run_id}", [ss.NewEvent("Shown", {})])
        seen.append(ctx.run_id)
        ctx.out.table("extra", ["a", "b"], [(1, None)])

    url = run_steps(tmp_path, PlainTrail(), [DemoStep("Extra", "A later section.", extra)])
    assert url == f"sqlite:///{tmp_path / 'demo.db'}"
    printed = capsys.readouterr().out
    assert "== 1. Extra ==" in printed and "-- extra" in printed
    with ss.open_store(url) as store:
        assert store.stream_version(f"extra-{seen[0]}") == 0


def test_rich_tables_wrap_long_values_instead_of_cutting_them() -> None:
    from rich.console import Console

    trail = RichTrail(force=True)
    trail.console = Console(file=io.StringIO(), width=80, color_system=None, force_terminal=True)
    stream = "account-4fffa4-savings"
    columns = ["stream", "version", "event", "event id", "causation_id", "correlation_id"]
    row = [stream, 1, "Deposited", "a3b8b37d…", "adb9ffb2…", "transfer-4fffa4"]
    trail.table("a transfer", columns, [row, ["account-4fffa4", *row[1:]]])
    output = trail.console.file.getvalue()  # type: ignore[attr-defined]
    assert "…" not in output.replace("a3b8b37d…", "").replace("adb9ffb2…", "")
    cells = "".join(line.split("│")[1].strip() for line in output.splitlines() if "│" in line)
    assert stream in cells  # the full name, folded over lines, not "account-4ff…"


def test_a_demo_directory_that_cannot_be_created_is_one_error_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(cli, ["demo", "--dir", str(blocker / "demo")])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert str(blocker / "demo") in result.stderr
    assert "Traceback" not in result.output
