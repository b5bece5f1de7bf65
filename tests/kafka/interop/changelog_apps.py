"""Running stream-processing apps (Quix Streams, faust-streaming) as their users do: each in
its own environment (``.cache/envs/<name>``, built by ``scripts/test`` from the pinned,
hashed ``tests/envs/<name>/requirements.txt``), as a subprocess whose output lines the test
reads with a deadline and which is killed (``kill -9``) when the test says."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
ENVS = ROOT / ".cache" / "envs"
APPS = ROOT / "tests" / "envs"


def env_python(name: str) -> Path:
    """The interpreter of the app environment ``name``, or skip saying how to build it."""
    python = ENVS / name / "bin" / "python"
    if not python.exists():
        pytest.skip(f"the {name} environment is not built (scripts/test builds {ENVS / name})")
    return python


class AppProcess:
    """One app run: JSON lines from its stdout arrive in ``lines``; ``kill`` is kill -9."""

    def __init__(
        self, env: str, script: str, *args: str, log_path: Path, ready: str | None = None
    ) -> None:
        self.log_path = log_path
        self._ready = ready
        self._log_start = log_path.stat().st_size if log_path.exists() else 0
        self._log = open(log_path, "ab")  # noqa: SIM115 (closed in kill)
        self.proc = subprocess.Popen(
            [str(env_python(env)), str(APPS / env / script), *args],
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=log_path.parent,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._lines.put(raw.decode(errors="replace").strip())

    def wait_for(self, done: Any, timeout: float, what: str) -> list[dict[str, Any]]:
        """Collect JSON lines until ``done(lines)`` is true; fail after ``timeout`` seconds
        or when the app exits first."""
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        while not done(seen):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}: {seen[-5:]}")
            try:
                line = self._lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None:
                    exited = f"the app exited ({self.proc.returncode}) before {what}"
                    raise AssertionError(exited) from None
                continue
            if "{" in line:  # a worker's status output may precede it on the same line
                seen.append(json.loads(line[line.index("{") :]))
        return seen

    def wait_ready(self, timeout: float) -> None:
        """Wait until the app's log (stderr) says it is ready, if it says so at all."""
        if self._ready is None:
            return
        deadline = time.monotonic() + timeout
        while self._ready not in self.log_path.read_bytes()[self._log_start :].decode(
            errors="replace"
        ):
            if self.proc.poll() is not None:
                raise AssertionError(f"the app exited ({self.proc.returncode}) before it was ready")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {self._ready!r}")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self._reader.join(timeout=30)
        self._log.close()
