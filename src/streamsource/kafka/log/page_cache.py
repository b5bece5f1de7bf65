"""Whether file bytes can be read without waiting for the disk: in the page cache now.

Two Linux calls answer it without reading the bytes: ``cachestat`` (Linux 6.5) counts the
cached pages of a file range, for a range the kernel is to ``sendfile``; ``preadv2`` with
``RWF_NOWAIT`` reads only what is cached (else ``EAGAIN``), for the few batch headers a
read looks at, once ``cachestat`` said they are (a miss would start readahead). The broker's event loop reads a fetch itself only when these say it cannot
wait (``PartitionLog.read_hot_regions``).

Written by hand because neither the standard library nor a maintained package wraps
``cachestat`` (``os`` has ``posix_fadvise`` but no residency query; ``mincore`` would need
a mapping of every segment). Where the kernel lacks either call (another OS, an older
kernel, a seccomp filter that refuses it), ``cached`` and ``pread_cached`` answer None and
the caller treats the bytes as cold.

A page can still be evicted between the question and the read; only memory pressure on the
last-read pages of the machine does that, and then every process is already paging.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from typing import Any

_CACHESTAT = 451  # the syscall's number in Linux's generic table (x86-64, arm64, riscv)
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_NOWAIT = getattr(os, "RWF_NOWAIT", None)


class _Range(ctypes.Structure):
    _fields_ = (("off", ctypes.c_uint64), ("len", ctypes.c_uint64))


class _Stat(ctypes.Structure):
    _fields_ = tuple(
        (name, ctypes.c_uint64)
        for name in ("nr_cache", "nr_dirty", "nr_writeback", "nr_evicted", "nr_recently_evicted")
    )


def _syscall() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    call.restype = ctypes.c_long
    call.argtypes = (ctypes.c_long, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint)
    return call


_call = _syscall()


def cached(fd: int, offset: int, length: int) -> bool | None:
    """Whether every page of ``length`` bytes at ``offset`` of the open file ``fd`` is in
    the page cache; None when the kernel cannot say."""
    global _call
    if length <= 0:
        return True
    call = _call
    if call is None:
        return None
    stat = _Stat()
    if call(_CACHESTAT, fd, ctypes.byref(_Range(offset, length)), ctypes.byref(stat), 0) != 0:
        if ctypes.get_errno() in (errno.ENOSYS, errno.EPERM, errno.EOPNOTSUPP):
            _call = None  # not on this kernel: never ask again
        return None
    pages = (offset + length - 1) // _PAGE - offset // _PAGE + 1
    return bool(stat.nr_cache >= pages)


def pread_cached(fd: int, length: int, position: int) -> bytes | None:
    """``os.pread`` of bytes that are all in the page cache; None if some are not (or the
    kernel cannot read without waiting), having waited for nothing and started no I/O.

    ``cachestat`` asks first: a ``RWF_NOWAIT`` read that misses still starts readahead,
    disk I/O submitted from the caller's thread (the event loop), and each read attempt of
    the same bytes after it could find a different answer."""
    if _NOWAIT is None or cached(fd, position, length) is not True:
        return None
    buffer = bytearray(length)
    try:
        got = os.preadv(fd, (buffer,), position, _NOWAIT)
    except OSError:  # EAGAIN: not cached; EOPNOTSUPP: this file system cannot tell
        return None
    if got < length:
        return None  # the rest is not cached (or the file ends: a cold read reports it)
    return bytes(buffer)
