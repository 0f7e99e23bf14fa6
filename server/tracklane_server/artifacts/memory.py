"""Keeps transfer buffers from inflating the server's memory (glibc only; a no-op elsewhere).

Artifact transfers allocate and free buffers of 2-8 MiB (gRPC messages, S3 parts) from many
threads. glibc serves such sizes with mmap at first, but raises its mmap threshold after the first
free ("dynamic threshold"), so later buffers come from per-thread heap arenas, which keep freed
memory: with 16 store threads and a part-upload pool, a single 1 GiB upload left the server about
100 MiB larger. A fixed threshold (setting it turns the dynamic adjustment off) sends every large
buffer back to the system when it is freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

__all__ = ["MMAP_THRESHOLD", "return_large_buffers_to_the_system"]

log = logging.getLogger(__name__)

# Buffers from 1 MiB up are mmapped; everything smaller (protobufs, rows) stays on the heap.
MMAP_THRESHOLD = 1024 * 1024
_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
_done = False
_lock = threading.Lock()


def return_large_buffers_to_the_system() -> bool:
    """Sets glibc's mmap threshold once per process; returns whether it was set (False off glibc)."""
    global _done
    with _lock:
        if _done:
            return True
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else None
            mallopt = getattr(libc, "mallopt", None)
        except OSError:
            mallopt = None
        if mallopt is None or not _is_glibc():
            return False
        if mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
            log.debug("mallopt(M_MMAP_THRESHOLD) refused; large buffers may stay in the heap")
            return False
        _done = True
        return True


def _is_glibc() -> bool:
    import platform

    return platform.libc_ver()[0] == "glibc"
