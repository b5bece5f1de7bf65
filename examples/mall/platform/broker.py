"""The broker ``mall serve`` starts: streamsource's broker in a child process tied to it.

Why a child process and not a thread of the mall's (``EmbeddedBroker``): the broker is
about a third of the mall's CPU per order on the Kafka transport, and in the mall's process
it competes for the one GIL with the services it serves (every fetch, produce and offset
commit of the mall's relays and consumers), so every hop waits for the GIL twice. In a
process of its own it runs on the other core. Measured on the same code with 8 shoppers
flat out (``benchmarks/mall.py``), the single-process mall went from about 12 to 19
completed orders/s, and its CPU per order, the broker's included, from 75-100 to 70 ms
(fewer threads taking turns at one GIL).

The child is ``streamsource mall broker`` (hidden): it prints ``mall broker listening on
HOST:PORT`` once it listens, and ends (cleanly: logs flushed, data dir lock released) when
its standard input reaches end of file, which happens whenever the parent's end of that
pipe closes: :meth:`ChildBroker.stop`, a normal exit, or the parent killed with ``kill -9``.
So no broker outlives its mall, and a restarted mall starts a new one on the same data. A
broker process that ends on its own (killed, crashed) is started again by the mall.
The child runs in a session of its own: Ctrl-C in a terminal reaches the mall only, which
still needs the broker to flush its relays while it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import streamsource as ss
from streamsource.errors import BrokerError
from streamsource.kafka.broker.identity import DataDirLock

log = logging.getLogger("streamsource.mall.broker")
_LISTENING = re.compile(r"^mall broker listening on (\S+:\d+)$")
FAILED = "mall broker failed: "
START_TIMEOUT = 60.0  # recovering a large data dir takes a while; a wedged child does not
STOP_TIMEOUT = 30.0
LOCK_WAIT = 10.0  # a previous broker on this data dir (its mall was killed) is still stopping


class BrokerStartFailed(ss.StreamsourceError):
    """The mall's broker process exited or stayed silent instead of listening."""


class ChildBroker:
    """``streamsource mall broker`` on ``data_dir`` as a child process (see the module).

    A child that ends without being asked (killed, crashed) is started again on the same
    port and data, after a short wait that grows while it keeps failing: the relays and
    consumers reconnect by themselves, and the messages meanwhile wait in the outboxes.
    """

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port  # the bound one once started: a restart reuses it
        self.bootstrap = ""  # host:port once started
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # _process and _stopping change together
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "streamsource", "mall", "broker",
            "--data-dir", str(self.data_dir), "--host", self.host, "--port", str(self.port),
        ]  # fmt: skip

    def start(self, timeout: float = START_TIMEOUT) -> str:
        """Start the child and wait until it listens; its ``host:port``."""
        self.bootstrap = self._launch(timeout)
        self.port = int(self.bootstrap.rsplit(":", 1)[1])
        self._watcher = threading.Thread(target=self._watch, name="broker-watch", daemon=True)
        self._watcher.start()
        return self.bootstrap

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """End the child cleanly (it stops on end of input); kill it after ``timeout``."""
        with self._lock:
            self._stopping.set()
            process, self._process = self._process, None
        if process is not None:
            _end(process, timeout)
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.join(timeout)

    @property
    def pid(self) -> int | None:
        process = self._process
        return None if process is None else process.pid

    def _launch(self, timeout: float) -> str:
        with self._lock:
            if self._stopping.is_set():
                raise BrokerStartFailed("the mall is stopping")
            process = subprocess.Popen(
                self.command(),
                stdin=subprocess.PIPE,  # its end of file is the child's signal to stop
                stdout=subprocess.PIPE,  # the one line saying where it listens
                stderr=None,  # its log goes where the mall's goes
                start_new_session=True,  # Ctrl-C reaches the mall, which stops it after
            )
            self._process = process
        line, said = _first_line(process, timeout)
        if match := _LISTENING.match(line):
            return match.group(1)
        _end(process, STOP_TIMEOUT)
        if line.startswith(FAILED):
            raise BrokerStartFailed(line.removeprefix(FAILED))
        where = f"the broker process on {self.data_dir}"
        if not said:
            raise BrokerStartFailed(f"{where} did not listen within {timeout:g} s")
        raise BrokerStartFailed(
            f"{where} said {line!r} instead of listening" if line else f"{where} exited early"
        )

    def _watch(self) -> None:
        """Start the child again whenever it ends while the mall runs."""
        failures = 0
        while True:
            process = self._process
            if process is None:
                return
            code = process.wait()
            if self._stopping.wait(min(0.1 * 2**failures, 5.0)):
                return
            log.warning("the broker process exited (%s); starting it again", code)
            try:
                self._launch(START_TIMEOUT)
            except BrokerStartFailed as exc:
                failures += 1
                log.warning("the broker process did not start again: %s", exc)
                continue
            failures = 0
            self.restarts += 1


def _first_line(process: subprocess.Popen[bytes], timeout: float) -> tuple[str, bool]:
    """The first line ``process`` prints, and whether it printed (or closed) within
    ``timeout``. Read in a thread: a child that neither prints nor exits must not hold
    the caller forever."""
    lines: list[bytes] = []
    out = process.stdout
    assert out is not None

    def read() -> None:
        with contextlib.suppress(ValueError, OSError):  # closed by a stop meanwhile
            lines.append(out.readline())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return (lines[0].decode(errors="replace").strip() if lines else ""), bool(lines)


def _end(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Close the child's input (it stops cleanly), wait for it; kill it after ``timeout``."""
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def serve_child(data_dir: Path, host: str, port: int) -> None:
    """The child's side: run the broker until standard input ends (or SIGTERM/SIGINT)."""
    from streamsource.kafka.broker.allocator import keep_large_buffers

    keep_large_buffers()  # this process is only the broker
    asyncio.run(_serve(data_dir, host, port))


async def _serve(data_dir: Path, host: str, port: int) -> None:
    import signal

    from streamsource.kafka.broker.app import Broker
    from streamsource.kafka.broker.config import BrokerConfig

    data_dir.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(_wait_for_lock, DataDirLock(data_dir), LOCK_WAIT)
    config = BrokerConfig(
        host=host,
        port=port,
        data_dir=data_dir,
        # the mall's consumers join together at start: no wait for late joiners
        group_initial_rebalance_delay_ms=0,
    )
    broker = Broker(config)
    try:
        host, bound = await broker.start()
    except BrokerError as exc:
        print(f"{FAILED}{exc}", flush=True)  # the line the parent reads: why
        raise SystemExit(1) from None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def watch_parent() -> None:
        while sys.stdin.buffer.read(1 << 16):
            pass  # the parent writes nothing: only end of file matters
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    print(f"mall broker listening on {host}:{bound}", flush=True)
    os.dup2(2, 1)  # nothing else on stdout: the parent reads only that line
    try:
        await stop.wait()
    finally:
        await broker.stop()


def _wait_for_lock(lock: DataDirLock, seconds: float) -> None:
    """Wait until no other broker holds the data dir (e.g. the child of a mall killed a
    moment ago, stopping since its input ended); the broker then takes the lock itself."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            lock.acquire()
        except BrokerError:
            if time.monotonic() >= deadline:
                return  # the broker's own start reports the held lock
            time.sleep(0.05)
            continue
        lock.release()
        return
