"""Keeping a long-lived server's memory flat while it runs thousands of notebooks.

Every run's threads (kernel clients, boots, shutdowns, store writes) allocate and free
mid-sized buffers; glibc gives threads their own malloc arenas (up to 8 per core) and keeps the
pages freed in each, so the server's RSS crept up by ~0.1-0.4 MiB per 32-run sweep with nothing
leaked (``benchmarks/bench_server_memory.py``; flat with ``MALLOC_ARENA_MAX=1``). Capping the
arenas, as ``MALLOC_ARENA_MAX`` would, keeps it flat; the threads mostly wait on kernels, so they
hardly contend for the allocator.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt parameter number
SERVER_ARENAS = 2


def limit_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Cap glibc's malloc arenas for the threads created from now on (unless the user set
    ``MALLOC_ARENA_MAX``); False where this is not glibc."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        log.debug("mallopt is not available", exc_info=True)
        return False
