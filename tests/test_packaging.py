"""The core install (no extras) is enough for the event store; the bridge names its extra.

A fresh virtual environment gets the project without extras, as ``pip install streamsource``
would, so confluent-kafka (librdkafka) and rich are absent: an SQLite store, the domain
toolkit, the store CLI and the demo's event-store sections work, and the bridge raises
MissingExtra naming ``streamsource[kafka]``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

USE_THE_CORE = textwrap.dedent(
    """
    import importlib.util
    import sys

    import msgspec

    import streamsource as ss

    assert importlib.util.find_spec("confluent_kafka") is None, "not a core-only install"
    assert importlib.util.find_spec("rich") is None, "not a core-only install"

    url = f"sqlite:///{sys.argv[1]}"
    with ss.open_store(url) as store:
        store.append("account-1", [ss.NewEvent("Opened", {"owner": "ada"})], ss.NO_STREAM)
        assert [e.type for e in store.read_stream("account-1")] == ["Opened"]

        events = ss.EventRegistry()

        @events.event("Deposited")
        class Deposited(msgspec.Struct, frozen=True):
            amount: int

        class Account(ss.Aggregate):
            registry = events
            category = "account"

            def __init__(self, id):
                super().__init__(id)
                self.balance = 0

            @ss.applies(Deposited)
            def _deposited(self, event):
                self.balance += event.amount

        accounts = ss.Repository(store, Account)
        account = accounts.create("42")
        account.record(Deposited(amount=100))
        accounts.save(account)
        assert accounts.load("42").balance == 100

        try:
            ss.OutboxRelay(store, "localhost:9092")
        except ss.MissingExtra as error:
            assert isinstance(error, ImportError) and error.extra == "kafka"
            print(error)
        else:
            raise AssertionError("the relay started without confluent-kafka")
    print("core ok")
    """
)


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, **kwargs)  # type: ignore[call-overload, no-any-return]


def _fresh_venv(tmp_path_factory: pytest.TempPathFactory, requirement: str) -> Path:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed (scripts/test puts it on PATH)")
    venv = tmp_path_factory.mktemp("venv") / "venv"
    made = _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
    assert made.returncode == 0, made.stderr
    # built as a wheel (the build copies the source tree elsewhere), as pip would install it
    installed = _run(
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), requirement]
    )
    assert installed.returncode == 0, installed.stderr
    return venv


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fresh_venv(tmp_path_factory, str(ROOT))


@pytest.mark.slow
def test_the_core_install_runs_the_store_and_the_bridge_names_its_extra(
    core_venv: Path, tmp_path: Path
) -> None:
    script = tmp_path / "use_core.py"
    script.write_text(USE_THE_CORE)
    result = _run([str(core_venv / "bin" / "python"), str(script), str(tmp_path / "bank.db")])
    assert result.returncode == 0, result.stderr
    assert "the outbox relay needs streamsource[kafka]: pip install 'streamsource[kafka]'" in (
        result.stdout
    )
    assert result.stdout.rstrip().endswith("core ok")

    # the store CLI reads what the script wrote
    env = {**os.environ, "STREAMSOURCE_STORE": f"sqlite:///{tmp_path / 'bank.db'}"}
    streams = _run([str(core_venv / "bin" / "streamsource"), "store", "streams"], env=env)
    assert streams.returncode == 0, streams.stderr
    assert "account-1" in streams.stdout


@pytest.mark.slow
def test_the_demo_runs_without_rich_and_kafka_and_says_what_to_install(
    core_venv: Path, tmp_path: Path
) -> None:
    demo = _run(
        [
            str(core_venv / "bin" / "streamsource"),
            "demo",
            "--style",
            "plain",
            "--dir",
            str(tmp_path),
        ]
    )
    assert demo.returncode == 0, demo.stderr
    assert "== 1. Bank account ==" in demo.stdout
    assert "skipped: pip install 'streamsource[kafka]'" in demo.stdout

    fancy = _run([str(core_venv / "bin" / "streamsource"), "demo", "--style", "rich"])
    assert fancy.returncode == 1
    assert "--style rich needs streamsource[cli]: pip install 'streamsource[cli]'" in fancy.stderr


@pytest.mark.slow
def test_the_readme_demo_install_runs_every_section(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    # README: pip install '.[all]' && streamsource demo
    venv = _fresh_venv(tmp_path_factory, f"{ROOT}[all]")
    demo = _run(
        [str(venv / "bin" / "streamsource"), "demo", "--style", "rich", "--dir", str(tmp_path)]
    )
    assert demo.returncode == 0, demo.stderr
    assert "skipped" not in demo.stdout
    for section in ("Bank account", "Optimistic concurrency", "Event streaming", "to Kafka"):
        assert section in demo.stdout
