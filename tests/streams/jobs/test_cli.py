"""``streamsource streams run module:app`` runs an app as a group member, prints progress
(records/s, lag per partition) and stops cleanly on SIGTERM, offsets committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from streams_support import Reader, create_topic, produce, read_all

import streamsource
from deadline import Deadline

CLI = [sys.executable, "-m", "streamsource"]


def test_run_prints_progress_and_stops_on_sigterm(broker: Any, tmp_path: Path) -> None:
    create_topic(broker.bootstrap, "clicks", 2)
    produce(broker.bootstrap, "clicks", [(f"u{i % 3}", {"n": i}, None) for i in range(50)])
    (tmp_path / "clickjob.py").write_text(
        textwrap.dedent(
            """
            import os
            from streamsource.streams import App

            def make():
                app = App(os.environ["BOOTSTRAP"], "clickjob", state_dir="state",
                          checkpoint_interval=0.2)
                app.stream(app.topic("clicks", value=dict)).map(lambda v: v["n"] * 2).to(
                    app.topic("doubled", value=int))
                return app
            """
        )
    )
    env = {
        **os.environ,
        "BOOTSTRAP": broker.bootstrap,
        "PYTHONPATH": str(Path(streamsource.__file__).parents[1]),
    }
    log = open(tmp_path / "cli.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [*CLI, "streams", "run", "clickjob:make", "--progress-interval", "0.2"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        Reader(broker.bootstrap, "doubled").until(lambda got: len(got) >= 50, "50 doubled clicks")
        deadline = Deadline(30, "a progress line with the lag of both partitions")
        while (
            "clicks[0]=0" not in (text := (tmp_path / "cli.log").read_text())
            or "clicks[1]=0" not in text
        ):
            deadline.check()
            assert proc.poll() is None, text
            deadline_wait = deadline.slice(0.1)
            try:
                proc.wait(deadline_wait)
            except subprocess.TimeoutExpired:
                pass
        assert "records/s" in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        log.close()
    assert "stopped after 50 records" in (tmp_path / "cli.log").read_text()
    assert sorted(v for _k, v in read_all(broker.bootstrap, "doubled")) == sorted(
        2 * i for i in range(50)
    )


def test_run_names_a_bad_app_spec(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "streams", "run", "nosuchmodule:app"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "cannot import nosuchmodule" in result.stderr
