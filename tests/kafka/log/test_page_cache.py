"""page_cache: what the kernel says is in the page cache, asked of a real file."""

from __future__ import annotations

import os
from pathlib import Path

from page_cache_eviction import evict
from streamsource.kafka.log import page_cache

PAGE = os.sysconf("SC_PAGE_SIZE")


def test_cached_counts_the_pages_of_the_range(tmp_path: Path) -> None:
    path = tmp_path / "data"
    data = os.urandom(8 * PAGE)
    path.write_bytes(data)
    evict(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        # no readahead: a read brings in the pages it reads and no others
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        assert page_cache.cached(fd, 0, PAGE) is False
        assert os.pread(fd, 2 * PAGE, PAGE) == data[PAGE : 3 * PAGE]  # pages 1 and 2 now
        assert page_cache.cached(fd, PAGE, 2 * PAGE) is True
        assert page_cache.cached(fd, PAGE + 1, 2 * PAGE - 2) is True  # within those pages
        assert page_cache.cached(fd, PAGE - 1, 2) is False  # one byte of page 0
        assert page_cache.cached(fd, 2 * PAGE, 2 * PAGE) is False  # and of page 3
        assert page_cache.cached(fd, 0, 0) is True  # nothing to read
        assert page_cache.pread_cached(fd, PAGE, PAGE + 7) == data[PAGE + 7 : 2 * PAGE + 7]
        # last: a read refused may still start the kernel reading those pages ahead
        assert page_cache.pread_cached(fd, 2 * PAGE, 2 * PAGE) is None  # page 3 is not
        assert page_cache.pread_cached(fd, 100, 10) is None  # nor page 0
    finally:
        os.close(fd)


def _bytes_read_from_storage() -> int:
    """What this process has had the kernel fetch from storage (``/proc/self/io``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("read_bytes:"):
            return int(line.split()[1])
    raise AssertionError("no read_bytes in /proc/self/io")


def test_a_refused_read_starts_no_disk_read(tmp_path: Path) -> None:
    """The event loop asks ``pread_cached``: bytes not cached must not make it submit disk
    reads (a ``RWF_NOWAIT`` read that misses starts readahead), and a second look at them
    must find them still uncached (a fetch's hot read is tried before its worker's)."""
    path = tmp_path / "data"
    data = os.urandom(64 * PAGE)
    path.write_bytes(data)
    evict(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        before = _bytes_read_from_storage()
        assert page_cache.pread_cached(fd, 61, 0) is None
        assert page_cache.pread_cached(fd, 61, 40 * PAGE) is None
        assert _bytes_read_from_storage() == before
        assert page_cache.cached(fd, 0, len(data)) is False
        assert os.pread(fd, 61, 0) == data[:61]  # a plain read does read the disk
        assert _bytes_read_from_storage() > before
    finally:
        os.close(fd)
