"""`streamsource store`: append/read/streams/stats on real SQLite files, and its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import streamsource as ss
from streamsource.cli import cli

SCRIPT = Path(sys.executable).parent / "streamsource"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/cli.db"


def store_cli(url: str, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["store", "--store", url, *args], input=input)


def assert_one_error_line(result: Result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_append_then_read_back(url: str) -> None:
    first = store_cli(
        url,
        "append",
        "account-1",
        "Deposited",
        '{"amount": 100}',
        "--expected-version",
        "no-stream",
        "--metadata",
        '{"reason": "salary"}',
    )
    assert first.exit_code == 0, first.output
    assert first.stdout == "appended Deposited to account-1: version 0, position 1\n"
    second = store_cli(
        url, "append", "account-1", "Withdrawn", '{"amount": 30}', "--expected-version", "0"
    )
    assert second.exit_code == 0 and "version 1" in second.stdout

    read = store_cli(url, "read", "account-1")
    assert read.exit_code == 0
    lines = read.stdout.splitlines()
    assert len(lines) == 2
    assert (
        "Deposited" in lines[0] and '{"amount":100}' in lines[0] and '"reason":"salary"' in lines[0]
    )
    assert lines[1].split()[0] == "1" and "Withdrawn" in lines[1]

    with ss.open_store(url) as store:  # what the CLI wrote is what the API reads
        assert [e.data for e in store.read_stream("account-1")] == [{"amount": 100}, {"amount": 30}]


def test_read_json_backward_and_as_of(url: str) -> None:
    for amount in (1, 2, 3):
        assert (
            store_cli(url, "append", "acc-9", "Deposited", json.dumps({"amount": amount})).exit_code
            == 0
        )

    as_json = store_cli(url, "read", "acc-9", "--json")
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [e["version"] for e in events] == [0, 1, 2]
    assert events[0]["stream"] == "acc-9" and events[0]["type"] == "Deposited"
    assert set(events[0]) >= {"id", "position", "data", "metadata", "recorded_at"}

    backward = store_cli(url, "read", "acc-9", "--json", "--backward")
    assert [json.loads(line)["version"] for line in backward.stdout.splitlines()] == [2, 1, 0]

    as_of_version = store_cli(url, "read", "acc-9", "--json", "--as-of", "1")
    assert [json.loads(line)["data"]["amount"] for line in as_of_version.stdout.splitlines()] == [
        1,
        2,
    ]

    second_time = events[1]["recorded_at"]
    as_of_time = store_cli(url, "read", "acc-9", "--json", "--as-of", second_time)
    assert len(as_of_time.stdout.splitlines()) == 2
    before = (datetime.fromisoformat(events[0]["recorded_at"]) - timedelta(hours=1)).replace(
        tzinfo=None
    )
    nothing = store_cli(url, "read", "acc-9", "--as-of", before.isoformat())  # naive = UTC
    assert nothing.exit_code == 0 and nothing.stdout == ""
    assert "no events" in nothing.stderr


def test_data_can_come_from_stdin(url: str) -> None:
    result = store_cli(url, "append", "s-1", "Noted", "-", input='{"text": "from a pipe"}')
    assert result.exit_code == 0, result.output
    with ss.open_store(url) as store:
        assert next(store.read_stream("s-1")).data == {"text": "from a pipe"}


def test_streams_and_stats(url: str) -> None:
    store_cli(url, "append", "account-1", "Deposited", "{}")
    store_cli(url, "append", "account-2", "Deposited", "{}")
    store_cli(url, "append", "account-2", "Deposited", "{}")
    streams = store_cli(url, "streams")
    assert streams.exit_code == 0
    assert sorted(streams.stdout.splitlines()) == ["account-1  0", "account-2  1"]
    as_json = store_cli(url, "streams", "--json")
    assert {json.loads(line)["stream"] for line in as_json.stdout.splitlines()} == {
        "account-1",
        "account-2",
    }

    stats = store_cli(url, "stats", "--json")
    assert stats.exit_code == 0
    figures = json.loads(stats.stdout)
    assert figures["events"] == 3 and figures["streams"] == 2
    plain = store_cli(url, "stats")
    assert any(line.split() == ["events", "3"] for line in plain.stdout.splitlines())


def test_a_wrong_expected_version_is_one_error_line(url: str) -> None:
    store_cli(url, "append", "account-1", "Deposited", "{}")
    result = store_cli(
        url, "append", "account-1", "Deposited", "{}", "--expected-version", "no-stream"
    )
    assert_one_error_line(result, 1, "WrongExpectedVersion", "account-1", "version 0")
    stale = store_cli(url, "append", "account-1", "Deposited", "{}", "--expected-version", "5")
    assert_one_error_line(stale, 1, "expected version 5")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["append", "s-1", "T", '{"a": '], ["event data is not valid JSON"]),
        (
            ["append", "s-1", "T", "{}", "--metadata", "[1, 2]"],
            ["--metadata must be a JSON object"],
        ),
        (["append", "s-1", "T", "{}", "--metadata", "nope"], ["--metadata is not valid JSON"]),
        (["append", "s-1", "T", "{}", "--expected-version", "x"], ["invalid expected version 'x'"]),
        (
            ["append", "s-1", "T", "{}", "--expected-version", "-1"],
            ["invalid expected version '-1'"],
        ),
        (["read", "s-1", "--as-of", "last tuesday"], ["invalid --as-of 'last tuesday'"]),
    ],
)
def test_bad_command_line_input_exits_2(url: str, args: list[str], fragments: list[str]) -> None:
    assert_one_error_line(store_cli(url, *args), 2, *fragments)
    with ss.open_store(url) as store:
        assert store.stream_version("s-1") is None  # nothing half-written


def test_store_errors_exit_1(url: str, tmp_path: Path) -> None:
    assert_one_error_line(store_cli(url, "append", "", "T", "{}"), 1, "InvalidStreamName")
    assert_one_error_line(store_cli(url, "append", "bad\nname", "T", "{}"), 1, "InvalidStreamName")
    not_a_store = tmp_path / "notes.txt"
    not_a_store.write_bytes(b"this is not a database file, just some text " * 100)
    result = store_cli(f"sqlite:///{not_a_store}", "streams")
    assert_one_error_line(result, 1, "notes.txt")
    assert_one_error_line(store_cli("nosuch://x", "streams"), 1, "InterfaceError", "nosuch")


def test_the_url_defaults_to_the_environment(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMSOURCE_STORE", url)
    result = CliRunner().invoke(cli, ["store", "append", "env-1", "Seen", "{}"])
    assert result.exit_code == 0, result.output
    with ss.open_store(url) as store:
        assert store.stream_version("env-1") == 0


def test_the_real_console_script(url: str) -> None:
    env = {**os.environ, "STREAMSOURCE_STORE": url}
    ok = subprocess.run(
        [str(SCRIPT), "store", "append", "account-1", "Deposited", '{"amount": 5}'],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    read = subprocess.run(
        [str(SCRIPT), "store", "read", "account-1", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert json.loads(read.stdout)["data"] == {"amount": 5}
    refused = subprocess.run(
        [str(SCRIPT), "store", "append", "account-1", "X", "{}", "--expected-version", "no-stream"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith(
        "error: WrongExpectedVersion"
    )


def test_a_tombstoned_stream_is_listed_and_refuses_appends(url: str) -> None:
    store_cli(url, "append", "gone-1", "Created", "{}")
    with ss.open_store(url) as store:
        store.delete_stream("gone-1", hard=True)
    assert "gone-1  0  (deleted)" in store_cli(url, "streams").stdout.splitlines()
    result = store_cli(url, "append", "gone-1", "Created", "{}")
    assert_one_error_line(result, 1, "StreamDeleted", "gone-1")
    assert_one_error_line(store_cli(url, "read", "gone-1"), 1, "StreamDeleted")


def test_a_soft_deleted_stream_is_marked_and_can_be_re_created(url: str) -> None:
    store_cli(url, "append", "soft-1", "Created", "{}")
    with ss.open_store(url) as store:
        store.delete_stream("soft-1")
    assert "soft-1  0  (soft-deleted)" in store_cli(url, "streams").stdout.splitlines()
    [listed] = [json.loads(line) for line in store_cli(url, "streams", "--json").stdout.split()]
    assert listed["soft_deleted"] is True and listed["hard_deleted"] is False
    empty = store_cli(url, "read", "soft-1")
    assert empty.exit_code == 0 and empty.stdout == ""
    again = store_cli(url, "append", "soft-1", "Created", "{}", "--expected-version", "no-stream")
    assert again.exit_code == 0, again.output
    assert again.stdout == "appended Created to soft-1: version 1, position 2\n"
    assert "soft-1  1" in store_cli(url, "streams").stdout.splitlines()


@pytest.mark.parametrize("args", [["read", "account-1"], ["streams"], ["stats"]])
def test_reading_a_store_file_that_does_not_exist_is_an_error(
    tmp_path: Path, args: list[str]
) -> None:
    missing = tmp_path / "typo.db"
    result = store_cli(f"sqlite:///{missing}", *args)
    assert_one_error_line(result, 1, "no store", str(missing))
    assert not missing.exists()  # a read does not create an empty store
