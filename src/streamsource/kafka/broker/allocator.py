"""glibc ``malloc`` settings for a process that is only a broker: reuse large buffers.

glibc serves an allocation above its mmap threshold (adjusted at run time, from 128 KiB)
with fresh pages from ``mmap`` and hands them back to the kernel on ``free``. A produce
request frame or a fetch read is typically ~1 MB, so each one had its pages faulted in and
zeroed by the kernel, then unmapped again: a quarter of the broker's CPU per message. With
a fixed threshold above those sizes, and a trim threshold above that, freed buffers stay in
the heap and the next request reuses them.

Only the ``streamsource broker`` command calls this: an application that embeds the broker
keeps its own allocator settings. A C library without ``mallopt`` (musl) is left alone.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # <malloc.h>
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024  # above what one request frame or fetch read takes
TRIM_THRESHOLD_BYTES = 16 * 1024 * 1024  # free heap kept at its top before returning it


def keep_large_buffers() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; False where not possible."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
    if not done:
        log.debug("mallopt refused the buffer thresholds; keeping the defaults")
    return done
