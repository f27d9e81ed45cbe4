"""Waiting on live processes in tests: poll a condition until it holds or a generous deadline passes (a deadline is
a hang guard, never a timing assertion), and tell whether a process is still running."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, what: str = "condition", poll: float = 0.05) -> T:
    """The first truthy value of `predicate()`; AssertionError naming `what` and the last value after `timeout` s."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value:
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out ({timeout:g} s) waiting for {what}; last: {value!r}")
        time.sleep(poll)
        value = predicate()
    return value


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's zombie may wait for a reaper that never comes)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
