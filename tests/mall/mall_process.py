"""A running ``streamsource mall serve`` process, and waiting on its HTTP API.

    with MallProcess.start(data_dir) as mall:          # port 0: the process says which
        client = mall.client()                           # httpx, every call with a timeout
        eventually(lambda: client.get(...).json()["status"] == "completed", "completion")

``stop`` sends SIGTERM and waits; ``kill`` is ``kill -9``. Every wait has a deadline.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from deadline import Deadline, wait_until

T = TypeVar("T")
STREAMSOURCE = [sys.executable, "-m", "streamsource"]
LISTENING = re.compile(r"^mall: .* on (http://\S+)$")
BROKER = re.compile(r"^mall: broker at (\S+)$")


class MallProcess:
    def __init__(self, process: subprocess.Popen[str], url: str, output: list[str]) -> None:
        self.process = process
        self.url = url
        self.output = output
        self.reader: threading.Thread | None = None  # collects output until the process ends
        self.broker: str | None = None  # the address of the broker it started, if it did

    @classmethod
    def start(
        cls,
        data_dir: Path,
        *,
        store: str | None = None,
        services: Sequence[str] | None = None,
        step_timeout: float | None = None,
        bootstrap: str | None = None,
        transport: str | None = None,
        port: int = 0,
        options: Sequence[str] = (),
    ) -> MallProcess:
        args = [*STREAMSOURCE, "mall", "serve", "--port", str(port), "--data-dir", str(data_dir)]
        if store is not None:
            args += ["--store", store]
        if services is not None:
            args += ["--services", ",".join(services)]
        if bootstrap is not None:
            args += ["--bootstrap", bootstrap]
        if transport is not None:
            args += ["--transport", transport]
        if step_timeout is not None:
            args += ["--step-timeout", str(step_timeout)]
        args += options
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,  # the access log, with --access-log
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        output: list[str] = []
        found: list[str] = []
        brokers: list[str] = []
        assert process.stdout is not None
        printed = process.stdout

        def read() -> None:  # a thread: a blocking read must not hold the test past its deadline
            for line in printed:
                output.append(line.rstrip())
                if match := BROKER.match(line.strip()):
                    brokers.append(match.group(1))  # said before the HTTP address
                if not found and (match := LISTENING.match(line.strip())):
                    found.append(match.group(1))

        mall = cls(process, "", output)
        mall.reader = threading.Thread(target=read, daemon=True)
        mall.reader.start()
        try:
            mall.url = wait_until(lambda: mall._address(found), 60, "the mall's address")
            wait_until(mall._ready, 60, "the mall's HTTP API")
            mall.broker = brokers[0] if brokers else None
        except BaseException:
            mall.kill()
            raise
        return mall

    def _address(self, found: list[str]) -> str:
        self._check_alive()
        return found[0] if found else ""

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"the mall exited {self.process.returncode}: {self.output}")

    def _ready(self) -> bool:
        self._check_alive()
        try:
            return httpx.get(f"{self.url}/openapi.json", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=20)

    def stop(self) -> int:
        """SIGTERM, then wait for the exit and for :attr:`output` to hold all it printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("the mall did not stop within 30 s of SIGTERM") from None
        if self.reader is not None:
            self.reader.join(10)  # the pipe ends with the process
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def __enter__(self) -> MallProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def eventually(check: Callable[[], T | None], what: str, seconds: float = 30) -> T:
    """``check()`` once it returns something true (polled with a deadline)."""
    value = wait_until(check, seconds, what)
    assert value is not None
    return value


def json_of(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json() if response.content else None


__all__ = ["Deadline", "MallProcess", "eventually", "json_of"]
