"""Small JSON documents in the data dir, replaced atomically.

The broker's control-plane state (cluster id, topic list) is tiny and rewritten rarely, so a
whole-file rewrite through a temp file + fsync + rename is both simple and crash-safe: after
a crash the file holds either the old or the new document, never a mix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from streamsource.errors import BrokerError

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024  # a topic list is far smaller; refuse absurd files


def read_json(path: Path) -> Any | None:
    """The document at ``path``, or ``None`` if it does not exist."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size > MAX_DOCUMENT_BYTES:
        raise BrokerError(f"{path} is {size} bytes, larger than any broker metadata file")
    try:
        return json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BrokerError(f"{path} is not valid JSON: {exc}") from exc


def write_json_atomic(path: Path, document: Any) -> None:
    """Replace ``path`` with ``document`` so a crash leaves the old or the new version."""
    data = json.dumps(document, indent=2, sort_keys=True).encode()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
