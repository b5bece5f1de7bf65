"""``BrokerProcess``: ``streamsource broker`` run as a child process.

For whatever must see the broker as a separate process: restart and ``kill -9`` tests,
end-to-end tests, benchmarks (which should not share a GIL with the client they measure)::

    proc = BrokerProcess(data_dir, output_path=tmp / "broker.log", fsync="always").start()
    ...  # clients use proc.bootstrap
    proc.kill()     # SIGKILL: no clean shutdown
    proc.start()    # same data dir, same port
    proc.terminate()  # SIGTERM: clean shutdown; returns the exit code

``start()`` waits for the line the CLI prints once it listens
(``listening on HOST:PORT, data in DIR``) and reads the bound port from it, so ``port=0``
works. Later ``start()`` calls reuse that port: clients reconnect to the restarted broker.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from streamsource.errors import BrokerError

_LISTENING = re.compile(r"listening on (\S+):(\d+), data in ")
_LISTENER = re.compile(r"^listener (\w+) on (\S+):(\d+)$", re.MULTILINE)
_POLL_S = 0.05


class BrokerProcess:
    """A ``streamsource broker`` child process; options are CLI flags with underscores.

    ``fsync="always"`` -> ``--fsync always``, ``partitions=3`` -> ``--partitions 3``,
    ``auto_create=False`` -> ``--no-auto-create``. Output (stdout and the log on stderr)
    is appended to ``output_path``.
    """

    def __init__(
        self,
        data_dir: Path,
        output_path: Path,
        port: int = 0,
        host: str = "127.0.0.1",
        **options: object,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.output_path = Path(output_path)
        self.host = host
        self.port = port
        self.options = options
        self.proc: subprocess.Popen[bytes] | None = None
        self.listeners: dict[str, tuple[str, int]] = {}  # protocol -> bound (host, port)

    @property
    def bootstrap(self) -> str:
        """``host:port`` for a client's ``bootstrap_servers``."""
        return f"{self.host}:{self.port}"

    def bootstrap_for(self, protocol: str) -> str:
        """``host:port`` of the listener of ``protocol`` (``listener=[...]`` option)."""
        host, port = self.listeners[protocol]
        return f"{host}:{port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BrokerError("the broker process was never started")
        return self.proc.pid

    def command(self) -> list[str]:
        """The command line that runs the broker with this interpreter."""
        args = [
            sys.executable, "-c", "from streamsource.cli import main; main()", "broker",
            "--host", self.host, "--port", str(self.port), "--data-dir", str(self.data_dir),
        ]  # fmt: skip
        for name, value in self.options.items():
            flag = name.replace("_", "-")
            if isinstance(value, (list, tuple)):
                for item in value:
                    args += [f"--{flag}", str(item)]
            elif value is True:
                args.append(f"--{flag}")
            elif value is False:
                args.append(f"--no-{flag}")
            elif value is not None:
                args += [f"--{flag}", str(value)]
        return args

    def start(self, timeout: float = 30.0) -> BrokerProcess:
        """Start the broker and wait until it listens; raises ``BrokerError`` if it exits
        first (the error carries its output) or does not listen within ``timeout``."""
        if self.alive:
            raise BrokerError("the broker process is already running")
        self.output_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.output_path.stat().st_size if self.output_path.exists() else 0
        with open(self.output_path, "ab") as out:
            proc = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.proc = proc
        deadline = time.monotonic() + timeout
        while True:
            text = self.output_path.read_bytes()[offset:].decode(errors="replace")
            found = _LISTENING.search(text)
            if found:
                self.host, self.port = found.group(1), int(found.group(2))
                self.listeners = {
                    m.group(1): (m.group(2), int(m.group(3))) for m in _LISTENER.finditer(text)
                }
                return self
            if proc.poll() is not None:
                raise BrokerError(f"the broker exited with {proc.returncode}:\n{text}")
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise BrokerError(f"the broker did not listen within {timeout}s:\n{text}")
            time.sleep(_POLL_S)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM (clean shutdown) and wait; returns the exit code."""
        return self._signal(signal.SIGTERM, timeout)

    def interrupt(self, timeout: float = 30.0) -> int:
        """SIGINT (Ctrl-C, clean shutdown) and wait; returns the exit code."""
        return self._signal(signal.SIGINT, timeout)

    def kill(self) -> int:
        """SIGKILL: the broker dies mid-flight, with no chance to flush anything."""
        return self._signal(signal.SIGKILL, 30.0)

    def output(self) -> str:
        """Everything the broker printed and logged so far (all runs)."""
        try:
            return self.output_path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _signal(self, sig: int, timeout: float) -> int:
        proc = self.proc
        if proc is None:
            raise BrokerError("the broker process was never started")
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise BrokerError(
                f"the broker did not exit within {timeout}s of signal {sig}"
            ) from None

    def __enter__(self) -> BrokerProcess:
        return self if self.alive else self.start()

    def __exit__(self, *exc_info: object) -> None:
        if self.alive:
            self.kill()
