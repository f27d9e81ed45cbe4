"""The portrait renderer in worker processes, for many sessions on a few CPU cores.

The renderer is a few hundred small numpy/OpenCV calls a frame, and those hold Python's GIL: two threads rendering
two sessions drew 199 frames/s against one thread's 173 (measured on the 2-core machine), so a daemon whose sessions
render in threads used one core at most (docs/performance.md, "Many sessions"). Here each session's renderer lives
in one of `processes` worker processes (sessions spread round-robin); a chunk's motion frames go over a pipe and the
frames come back through shared memory, so the daemon's own process keeps its GIL for the rest of the loop and the
workers draw on the other cores. A renderer is the same `PortraitRenderer` with the same inputs, so the frames are
the ones drawn in-process (tests/test_render_pool.py).
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import threading
from multiprocessing import shared_memory

import numpy as np


def _worker(conn) -> None:
    """A worker's loop: add / render / drop requests until the pipe closes (its parent is gone)."""
    from engine_core.motion.render import PortraitRenderer

    try:
        import cv2

        cv2.setNumThreads(1)                   # (one core per worker: OpenCV's own pool would fight the others)
    except ImportError:
        pass
    held: dict[int, tuple[PortraitRenderer, shared_memory.SharedMemory]] = {}
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            op, key = msg[0], msg[1]
            try:
                if op == "add":
                    image, landmarks, frames = msg[2], msg[3], msg[4]
                    shm = shared_memory.SharedMemory(create=True, size=int(frames * image.size))
                    held[key] = (PortraitRenderer(image, landmarks), shm)
                    conn.send(("ok", shm.name))
                elif op == "render":
                    renderer, shm = held[key]
                    motion = msg[2]
                    out = np.ndarray((len(motion), *renderer.image.shape), np.uint8, buffer=shm.buf)
                    for i, m in enumerate(motion):
                        out[i] = renderer.render(m)
                    del out
                    conn.send(("ok", len(motion)))
                elif op == "drop":
                    _, shm = held.pop(key)
                    shm.close()
                    shm.unlink()
                    conn.send(("ok", None))
            except Exception as exc:                  # the parent raises it for that session
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        for _, shm in held.values():
            shm.close()
            shm.unlink()


def _untrack(shm: shared_memory.SharedMemory) -> None:
    """Python < 3.13 registers a segment it only attaches to with its resource tracker, which would unlink it (and
    warn) when this process ends: the worker that made it owns it."""
    try:
        from multiprocessing import resource_tracker

        resource_tracker.unregister(shm._name, "shared_memory")     # type: ignore[attr-defined]
    except Exception:
        pass


class _Worker:
    def __init__(self, ctx) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child,), name="xs-render", daemon=True)
        self.proc.start()
        child.close()
        self.lock = threading.Lock()

    def call(self, *msg):
        with self.lock:
            self.conn.send(msg)
            status, value = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"render worker: {value}")
        return value


class RemoteRenderer:
    """One session's renderer in a worker: `render_many(motion [F, K]) -> uint8 [F, S, S, C]`."""

    def __init__(self, worker: _Worker, key: int, image: np.ndarray, landmarks: np.ndarray, frames: int) -> None:
        self.worker, self.key = worker, key
        self.shape = (frames, *image.shape)
        name = worker.call("add", key, np.ascontiguousarray(image), np.asarray(landmarks), frames)
        self.shm = shared_memory.SharedMemory(name=name)
        _untrack(self.shm)                         # (the worker made it and unlinks it)
        self.closed = False

    def render_many(self, motion: np.ndarray) -> np.ndarray:
        n = len(motion)
        if n > self.shape[0]:
            raise ValueError(f"{n} frames at once; this renderer was made for {self.shape[0]}")
        self.worker.call("render", self.key, np.asarray(motion, np.float64))
        return np.ndarray((n, *self.shape[1:]), np.uint8, buffer=self.shm.buf).copy()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.shm.close()
        try:
            self.worker.call("drop", self.key)
        except (OSError, EOFError, RuntimeError):
            pass


class RenderPool:
    """`processes` render workers (started at the first `renderer`), shared by an engine's sessions."""

    def __init__(self, processes: int = 2) -> None:
        self.processes = processes
        self._workers: list[_Worker] = []
        self._keys = itertools.count(1)
        self._lock = threading.Lock()

    def renderer(self, image: np.ndarray, landmarks: np.ndarray, frames: int) -> RemoteRenderer:
        """A renderer of this portrait in the next worker (round-robin), for chunks of up to `frames` frames."""
        with self._lock:
            if not self._workers:
                ctx = mp.get_context("spawn")        # (no fork of a process with threads and torch in it)
                self._workers = [_Worker(ctx) for _ in range(self.processes)]
            key = next(self._keys)
            worker = self._workers[key % len(self._workers)]
        return RemoteRenderer(worker, key, image, landmarks, frames)

    def close(self) -> None:
        with self._lock:
            workers, self._workers = self._workers, []
        for w in workers:
            w.conn.close()
            w.proc.join(5)
            if w.proc.is_alive():
                w.proc.kill()


__all__ = ["RemoteRenderer", "RenderPool"]
