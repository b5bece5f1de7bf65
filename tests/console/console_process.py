"""A real ``streamsource console`` process for the tests, ended when the test is done."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from deadline import Deadline

REPO = Path(__file__).resolve().parents[2]


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)


@contextmanager
def console_process(args: Sequence[str], cwd: Path | None = None) -> Iterator[str]:
    """Start ``streamsource console ARGS --port 0``; yield its base URL (no trailing /)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))  # --aggregate examples.bank.app:Account
    process = subprocess.Popen(
        [sys.executable, "-m", "streamsource", "console", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd or REPO,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        deadline = Deadline(30, "the console to print its URL")
        while True:
            deadline.check()
            try:
                line = lines.get(timeout=deadline.slice(0.5))
            except queue.Empty:
                if process.poll() is not None:
                    raise AssertionError(f"the console exited: {process.stderr.read()}") from None  # type: ignore[union-attr]
                continue
            if line.startswith("console at "):
                yield line.split()[-1].rstrip("/")
                break
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def run_cli(args: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``streamsource ARGS`` to completion (with a deadline)."""
    return subprocess.run(
        [sys.executable, "-m", "streamsource", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
