"""Drop a file's pages from the page cache, so that the next read of it is a cold one."""

from __future__ import annotations

import os
from pathlib import Path

from streamsource.kafka.log import page_cache


def evict(path: Path) -> None:
    """Drop the file's pages (synced first, so they are clean) and check they went."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        assert page_cache.cached(fd, 0, os.fstat(fd).st_size) is False, f"{path} stays cached"
    finally:
        os.close(fd)
