"""How the bridge starts and stops on Linux, macOS and Windows (no Unix-only call unguarded).

* **Event loop**: pyzmq's asyncio sockets need `add_reader`, which Windows' default Proactor loop lacks, so on
  Windows the bridge runs on a `SelectorEventLoop` (aiohttp works on both).
* **Stop signals**: `loop.add_signal_handler` exists on Unix loops only (Windows raises NotImplementedError).
  Where it is missing, SIGINT (Ctrl+C) and, on Windows, SIGBREAK (Ctrl+Break) get a `signal.signal` handler that
  hands the stop to the loop thread-safely.
* **Lifeline**: with `--exit-with-stdin` the bridge stops when its standard input reaches end-of-file. The OBS
  script starts the bridge with a pipe on stdin and keeps the write end: when OBS exits, crashes or is killed,
  the pipe closes and the bridge (and the daemon it started) ends, on every OS. Closing that pipe is also how the
  script asks the bridge to stop gracefully (on Windows `terminate()` is TerminateProcess, not a signal).

`Platform` is injected so that tests run the Windows code paths for real on Linux.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Coroutine


@dataclass(frozen=True)
class Platform:
    name: str = sys.platform            # "linux", "darwin", "win32"

    @property
    def windows(self) -> bool:
        return self.name == "win32"

    def stop_signals(self) -> list[int]:
        names = ["SIGINT"] + (["SIGBREAK"] if self.windows else ["SIGTERM"])
        return [getattr(signal, n) for n in names if hasattr(signal, n)]


def run(main: Callable[[], Coroutine[Any, Any, int]], platform: Platform) -> int:
    """asyncio.run(main()) on the loop this platform needs (a selector loop on Windows)."""
    if platform.windows:
        loop = asyncio.SelectorEventLoop()
        try:
            asyncio.set_event_loop(loop)
            return loop.run_until_complete(main())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
    return asyncio.run(main())


def install_stop_signals(loop: asyncio.AbstractEventLoop, stop: Callable[[], None], platform: Platform) -> str:
    """Make the platform's stop signals call `stop` on the loop. Returns how: "loop" (add_signal_handler),
    "signal" (signal.signal; the fallback on Windows) or "none" (not the main thread)."""
    sigs = platform.stop_signals()
    if not platform.windows:
        try:
            for sig in sigs:
                loop.add_signal_handler(sig, stop)
            return "loop"
        except (NotImplementedError, RuntimeError):
            pass
    if threading.current_thread() is not threading.main_thread():
        return "none"

    def handler(signum: int, frame: object) -> None:
        loop.call_soon_threadsafe(stop)

    for sig in sigs:
        signal.signal(sig, handler)
    return "signal"


def watch_stdin(loop: asyncio.AbstractEventLoop, stop: Callable[[], None], stream: BinaryIO | None = None) -> threading.Thread:
    """Call `stop` on the loop once `stream` (default: stdin) reaches end-of-file; what is read is discarded.
    A daemon thread with blocking reads: works for pipes on every OS (asyncio's pipe readers do not on Windows'
    selector loop)."""
    source = stream if stream is not None else sys.stdin.buffer

    def wait() -> None:
        try:
            while source.read(4096):
                pass
        except (OSError, ValueError):
            pass
        try:
            loop.call_soon_threadsafe(stop)
        except RuntimeError:        # the loop is already closed
            pass

    thread = threading.Thread(target=wait, name="xstreamer-obs-stdin", daemon=True)
    thread.start()
    return thread
