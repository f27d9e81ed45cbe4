"""Giving memory back to the OS when sessions close (glibc only; a no-op elsewhere).

A session's tensors are allocated by its own threads (the block loop's worker, the Thinker's feed thread), and
glibc gives each thread an arena of its own (up to 8 per core). Freed, those allocations stay in the arenas:
RSS ratchets up with every round of sessions opened and closed (issue #23: 305 -> 567 -> 630 -> 798 -> 892 MB
over 4 rounds of 8 sessions) though nothing holds them. The daemon therefore
  - caps the arenas at start (`mallopt(M_ARENA_MAX, 2)`, unless MALLOC_ARENA_MAX is set in the environment),
    and
  - after a session closes, collects garbage and calls `malloc_trim(0)`, which returns the free pages of every
    arena to the OS.
Figures before and after: docs/security.md (`python -m engine_core.daemon.bench_memory rounds`).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import sys
import threading

log = logging.getLogger("xstreamer.daemon.memory")

M_ARENA_MAX = -8        # glibc's mallopt parameter (malloc.h)
DEFAULT_ARENAS = 2


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (Linux), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version      # only glibc has it (musl does not)
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _glibc()
_trim_lock = threading.Lock()


def limit_arenas(n: int = DEFAULT_ARENAS) -> bool:
    """Cap glibc's malloc arenas at `n` (call before the threads start); False when not glibc or already set
    by MALLOC_ARENA_MAX."""
    if _LIBC is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    ok = bool(_LIBC.mallopt(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(n)))
    log.debug("malloc arenas capped at %d: %s", n, ok)
    return ok


def release_memory() -> bool:
    """Collect garbage, then hand free heap pages back to the OS (glibc malloc_trim); False where unavailable.
    """
    gc.collect()
    if _LIBC is None:
        return False
    with _trim_lock:            # one trim at a time (each walks every arena)
        return bool(_LIBC.malloc_trim(ctypes.c_size_t(0)))


def rss_mb(pid: int | str = "self") -> float:
    """A process's resident memory in MB (this one's by default; 0 where /proc is not there)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0
