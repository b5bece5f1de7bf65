"""Swapping cleaned segments into a partition directory, crash-safely.

The cleaner writes each cleaned segment (``.log`` and both indexes) into the staging
directory ``<partition>/cleaning/`` and fsyncs it. The swap then:

1. writes ``cleaning/swap.json`` (which bases to replace, which to delete) through a
   temporary file, fsync and rename: from this point on the swap is decided;
2. per replaced segment: removes the old indexes, renames the new ``.log`` over the old one
   (atomic), renames the new indexes in; per deleted segment, removes its files;
3. fsyncs the partition directory and removes the staging directory.

``recover`` runs before a log opens: with a manifest, it finishes step 2 (every step is
idempotent: whatever is still in staging is moved, whatever is gone was moved); without
one, the cleaning never committed and the staging directory is discarded. Either way the
directory holds, per segment, the whole old or the whole new data, never a mix: an old
index never sits beside a new ``.log`` (and an index missing is rebuilt on open).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from streamsource.kafka.log.segment import segment_file_name

log = logging.getLogger(__name__)

STAGING_DIR = "cleaning"
MANIFEST = "swap.json"
_INDEXES = (".index", ".timeindex")
_MAX_MANIFEST_BYTES = 16 * 1024 * 1024


def staging_dir(directory: Path) -> Path:
    return directory / STAGING_DIR


def fresh_staging(directory: Path) -> Path:
    """An empty staging directory (what a crashed, uncommitted cleaning left is removed)."""
    staging = staging_dir(directory)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    return staging


def commit(directory: Path, replace: list[int], delete: list[int]) -> None:
    """Swap the staged segments in (see the module docstring); raises ``OSError``."""
    staging = staging_dir(directory)
    body = json.dumps({"replace": replace, "delete": delete}).encode()
    tmp = staging / (MANIFEST + ".tmp")
    with open(tmp, "wb") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, staging / MANIFEST)
    fsync_directory(staging)
    _apply(directory, staging, replace, delete)
    fsync_directory(directory)
    shutil.rmtree(staging, ignore_errors=True)


def recover(directory: Path) -> None:
    """Finish a committed swap or discard an uncommitted cleaning (before the log opens)."""
    staging = staging_dir(directory)
    if not staging.is_dir():
        return
    manifest = staging / MANIFEST
    plan: tuple[list[int], list[int]] | None = None
    try:
        if manifest.stat().st_size <= _MAX_MANIFEST_BYTES:
            document = json.loads(manifest.read_bytes())
            plan = (
                [int(b) for b in document["replace"]],
                [int(b) for b in document["delete"]],
            )
    except FileNotFoundError:
        pass
    except (ValueError, KeyError, TypeError):
        log.warning("%s is damaged; the cleaning it describes is discarded", manifest)
    if plan is not None:
        log.info("%s: finishing a log cleaning swap interrupted by a crash", directory)
        _apply(directory, staging, *plan)
        fsync_directory(directory)
    else:
        log.info("%s: discarding an unfinished log cleaning", directory)
    shutil.rmtree(staging, ignore_errors=True)


def _apply(directory: Path, staging: Path, replace: list[int], delete: list[int]) -> None:
    for base in replace:
        new_log = staging / segment_file_name(base, ".log")
        if new_log.exists():
            for suffix in _INDEXES:
                (directory / segment_file_name(base, suffix)).unlink(missing_ok=True)
            os.replace(new_log, directory / segment_file_name(base, ".log"))
        for suffix in _INDEXES:
            new_index = staging / segment_file_name(base, suffix)
            if new_index.exists():
                os.replace(new_index, directory / segment_file_name(base, suffix))
    for base in delete:
        for suffix in (".log", *_INDEXES):
            (directory / segment_file_name(base, suffix)).unlink(missing_ok=True)


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
