"""The broker's identity on disk: cluster id, and the lock that keeps one broker per dir.

The cluster id is generated once (a random UUID in Kafka's base64url form) and kept in
``<data_dir>/meta.json`` so clients see the same cluster across restarts. The lock file is
held with ``flock`` while the broker runs: two brokers writing one log would corrupt it.
"""

from __future__ import annotations

import base64
import fcntl
import os
import uuid
from pathlib import Path

from streamsource.errors import BrokerError, CorruptStoreError
from streamsource.kafka.storage import StorageError, read_json, write_json

_META_FILE = "meta.json"
_LOCK_FILE = ".lock"


def load_or_create_cluster_id(data_dir: Path) -> str:
    """The cluster id stored in ``data_dir``, created on first start."""
    path = data_dir / _META_FILE
    try:
        document = read_json(path)
    except CorruptStoreError as exc:
        raise BrokerError(str(exc)) from exc
    if isinstance(document, dict) and isinstance(document.get("cluster_id"), str):
        return str(document["cluster_id"])
    if document is not None:
        raise BrokerError(f"{path} has no cluster_id")
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    try:
        write_json(path, {"cluster_id": cluster_id, "version": 1})
    except StorageError as exc:
        raise BrokerError(str(exc)) from exc
    return cluster_id


class DataDirLock:
    """An exclusive ``flock`` on ``<data_dir>/.lock``, released by ``release`` or exit."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / _LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BrokerError(
                f"{self._path.parent} is in use by another broker (lock {self._path} is held)"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
