"""`xstreamer serve --exit-with-stdin`: the daemon ends when the process that started it is gone.

The launcher (sdk/launcher.py) starts the daemon with a pipe on its standard input and never writes to it.
When the launching process exits or dies (even `kill -9`, a crash, or Windows' TerminateProcess) the OS closes
its end, the daemon's read returns end-of-file, and the daemon stops. Nothing here is OS-specific: a blocking
`os.read` on fd 0 works on Windows, macOS and Linux alike (no signals, no prctl, no polling of a parent pid).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Callable

log = logging.getLogger("xstreamer.daemon")

EXIT_GRACE_S = 15.0     # after stdin closed, the process ends by itself at the latest this much later


def _read_to_eof(fd: int) -> None:
    """Read (and ignore) whatever arrives on `fd` until end-of-file or an error."""
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass


def watch_stdin(on_close: Callable[[], None], grace_s: float = EXIT_GRACE_S, fd: int | None = None,
                exit_process: Callable[[int], None] = os._exit) -> threading.Thread:
    """Start a daemon thread that calls `on_close()` when standard input (or `fd`) reaches end-of-file, then
    ends the process `grace_s` later if it is still running (a hung shutdown must not leave it behind)."""
    fd = sys.stdin.fileno() if fd is None else fd

    def run() -> None:
        _read_to_eof(fd)
        log.info("standard input closed: the process that started the daemon is gone; stopping")
        try:
            on_close()
        finally:
            threading.Event().wait(grace_s)
            exit_process(0)

    thread = threading.Thread(target=run, name="xstreamer-stdin-watch", daemon=True)
    thread.start()
    return thread
