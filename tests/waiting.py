"""Waiting in tests: poll a condition until it holds or a generous deadline passes (a deadline is a hang guard, never
a timing assertion), tell whether a process is still running, run functions on threads at once, poll a browser page."""

from __future__ import annotations

import asyncio
import threading
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


def in_threads(fns: list[Callable[[], T]], timeout: float = 120.0) -> list[T]:
    """Run each function on its own thread, all at once; their results in order (the first error is raised)."""
    results: list = [None] * len(fns)
    errors: list[BaseException] = []

    def run(i: int, fn: Callable[[], T]) -> None:
        try:
            results[i] = fn()
        except BaseException as exc:  # noqa: BLE001 (handed to the caller)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    if errors:
        raise errors[0]
    return results


async def poll_page(page, expression: str, predicate: Callable[[object], bool], timeout: float,  # noqa: ANN001
                    what: str):
    """The value of `expression` in a browser page (plugins/obs_source/cdp.py's Page) once `predicate` holds it;
    an evaluation that fails (a page reloading for a moment) is tried again. AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    value: object = None
    while time.monotonic() < deadline:
        try:
            value = await page.evaluate(expression)
        except Exception as exc:  # noqa: BLE001 - a page reloading for a moment
            value = exc
        if not isinstance(value, Exception) and predicate(value):
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out ({timeout:g} s) waiting for {what}; last value: {value}")
