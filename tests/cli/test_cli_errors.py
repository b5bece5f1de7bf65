"""Every command's errors are one ``error: ...`` line on stderr and a non-zero exit."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from streamsource.cli import cli

SCRIPT = Path(sys.executable).parent / "streamsource"


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["store", "--no-such-option"],
        ["store", "stats", "--no-such-option"],
        ["store", "no-such-command"],
        ["projections", "--app", "x:y", "--no-such-option"],
        ["broker", "--no-such-option"],
        ["broker", "--port", "not-a-number"],
        ["relay", "--no-such-option"],
        ["demo", "--no-such-option"],
        ["no-such-command"],
    ],
)
def test_usage_errors_are_one_line(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    line = one_error_line(result.stderr)
    assert "Error:" not in result.stderr and "Usage:" not in result.stderr
    assert "no-such" in line or "not-a-number" in line
    assert result.stdout == ""


def test_store_append_without_its_arguments_names_the_missing_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["store", "--store", f"sqlite:///{tmp_path}/s.db", "append"])
    assert result.exit_code == 2
    assert "STREAM" in one_error_line(result.stderr)


def test_the_broker_reports_a_port_in_use_as_one_error_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(SCRIPT), "broker", "--port", str(port), "--data-dir", str(tmp_path / "data")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1, result.stderr
    assert str(port) in one_error_line(result.stderr)


def test_help_still_exits_0() -> None:
    result = CliRunner().invoke(cli, ["store", "--help"])
    assert result.exit_code == 0 and "--store" in result.stdout and "--url" not in result.stdout
