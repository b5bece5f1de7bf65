"""Helpers shared by the real-client interop tests (plain functions, no fixtures).

Every test names its own topics with ``unique_topic`` so that tests sharing a broker never
see each other's data, and waits with ``wait_until`` (a bounded poll, never a timing
assertion) for state a client reaches asynchronously.
"""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Callable
from typing import TypeVar

import pytest

import deadline

T = TypeVar("T")

CODECS = ("gzip", "snappy", "lz4", "zstd")


def unique_topic(prefix: str) -> str:
    """A topic name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def require_tool(name: str) -> str:
    """The path of executable ``name``, or skip the test saying it is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package needed for this interop test)")
    return path


def wait_until(probe: Callable[[], T | None], timeout: float = 30.0, what: str = "") -> T:
    """The shared ``deadline.wait_until``, polling at the pace a client round trip needs."""
    return deadline.wait_until(probe, timeout, what, interval=0.1)  # type: ignore[return-value]


def port_is_free(host: str, port: int) -> bool:
    """True if nothing listens on ``host:port`` (we could bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def numbered(count: int, prefix: str = "m") -> list[tuple[bytes, bytes]]:
    """``count`` (key, value) pairs whose values say their position."""
    return [(f"k{i % 7}".encode(), f"{prefix}-{i:06d}".encode()) for i in range(count)]
