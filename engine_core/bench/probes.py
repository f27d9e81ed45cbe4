"""Timing probes for `xstreamer bench`: hooks put on the live engine's modules, never a forked code path.

The benchmark loads the engine exactly as the daemon does and drives a Session with `next_chunk()`; these
probes only observe: a forward hook on the Thinker's language model counts decode steps (tokens), one on
the Actor counts denoising passes, and the VAE's `decode` is wrapped to time each chunk's decode. On CUDA,
every interval is measured with CUDA events (synchronised when read), on CPU with perf_counter.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch


@dataclass
class _Interval:
    start: Any
    stop: Any = None
    host_start: float = 0.0           # perf_counter when the interval was opened / closed on the host: on CUDA the
    host_stop: float | None = None    # host only launches work, so host << device time means the GPU was the limit


@dataclass
class Probe:
    """Collects intervals of one kind (e.g. 'actor.pass') and the tokens each interval processed."""

    name: str
    cuda: bool
    intervals: list[_Interval] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)

    def begin(self, tokens: int = 0) -> None:
        now = time.perf_counter()
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self.intervals.append(_Interval(ev, host_start=now))
        else:
            self.intervals.append(_Interval(now, host_start=now))
        self.tokens.append(tokens)

    def end(self) -> None:
        if not self.intervals or self.intervals[-1].stop is not None:
            return
        iv = self.intervals[-1]
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            iv.stop = ev
        else:
            iv.stop = time.perf_counter()
        iv.host_stop = time.perf_counter()

    def durations_ms(self, since: int = 0) -> list[float]:
        """Device (CUDA events) or CPU durations of the closed intervals from index `since` on."""
        done = [iv for iv in self.intervals[since:] if iv.stop is not None]
        if self.cuda:
            torch.cuda.synchronize()
            return [iv.start.elapsed_time(iv.stop) for iv in done]
        return [(iv.stop - iv.start) * 1e3 for iv in done]

    def host_ms(self, since: int = 0) -> list[float]:
        """Host-side durations (the time spent launching, on CUDA) of the closed intervals from `since` on."""
        return [(iv.host_stop - iv.host_start) * 1e3 for iv in self.intervals[since:] if iv.host_stop is not None]

    def reset(self) -> None:
        self.intervals.clear()
        self.tokens.clear()


class Probes:
    """A set of probes attached to an engine's modules; `detach()` removes every hook."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.probes: dict[str, Probe] = {}
        self._handles: list[Any] = []
        self._restore: list[Callable[[], None]] = []

    def get(self, name: str) -> Probe:
        if name not in self.probes:
            self.probes[name] = Probe(name, self.cuda)
        return self.probes[name]

    def hook_module(self, module: torch.nn.Module, name: str,
                    tokens_of: Callable[[tuple, dict], int] | None = None) -> None:
        probe = self.get(name)

        def pre(mod, args, kwargs):
            probe.begin(tokens_of(args, kwargs) if tokens_of else 0)

        def post(mod, args, kwargs, out):
            probe.end()

        self._handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        self._handles.append(module.register_forward_hook(post, with_kwargs=True))

    def wrap_method(self, obj: Any, method: str, name: str) -> None:
        probe = self.get(name)
        original = getattr(obj, method)

        def wrapped(*args, **kwargs):
            probe.begin()
            try:
                return original(*args, **kwargs)
            finally:
                probe.end()

        setattr(obj, method, wrapped)
        self._restore.append(lambda: setattr(obj, method, original))

    def reset(self) -> None:
        for p in self.probes.values():
            p.reset()

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        for undo in self._restore:
            undo()
        self._handles.clear()
        self._restore.clear()


def mean_ms_per_call(fn: Callable[[], Any], calls: int, cuda: bool, warmup: int = 3) -> float:
    """Mean wall ms of `fn()` over `calls` calls after `warmup` ones (the GPU synchronised around them on CUDA);
    the micro-benchmarks' timing loop (engine_core/bench/thinker_decode.py, actor_pass.py)."""
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1e3 / calls


class SegmentClock:
    """Notes when each Segment leaves the Thinker's `reply` / `speak` (wrapped on the instance, so the session's
    own Thinker thread is observed, not replaced): [(perf_counter, frames, tokens)] per call."""

    def __init__(self, thinker: Any) -> None:
        self.thinker = thinker
        self.calls: list[list[tuple[float, int, int]]] = []
        for name in ("reply", "speak"):
            setattr(thinker, name, self._wrap(getattr(thinker, name)))

    def _wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args, **kwargs):
            log: list[tuple[float, int, int]] = []
            self.calls.append(log)
            for seg in original(*args, **kwargs):
                log.append((time.perf_counter(), int(seg.num_frames), int(seg.hidden.shape[0])))
                yield seg
        return wrapped

    def frames_ready_at(self, since: float, frames: int) -> float | None:
        """perf_counter time at which the first call whose output came after `since` had yielded `frames`."""
        for log in self.calls:
            if log and log[0][0] >= since:
                total = 0
                for t, n, _ in log:
                    total += n
                    if total >= frames:
                        return t
        return None

    def tokens_between(self, t0: float, t1: float) -> int:
        return sum(k for log in self.calls for t, _, k in log if t0 <= t <= t1)

    def detach(self) -> None:
        for name in ("reply", "speak"):
            self.thinker.__dict__.pop(name, None)


class GcClock:
    """Notes each pass of Python's garbage collector (`gc.callbacks`; a pass stops every thread of the process):
    [(perf_counter at its start, ms, generation)]."""

    def __init__(self) -> None:
        self.passes: list[tuple[float, float, int]] = []
        self._start: float | None = None
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        elif self._start is not None:
            self.passes.append((self._start, (time.perf_counter() - self._start) * 1e3, int(info["generation"])))
            self._start = None

    def ms_between(self, t0: float, t1: float) -> float:
        return sum(ms for t, ms, _ in self.passes if t0 <= t <= t1)

    def detach(self) -> None:
        gc.callbacks.remove(self._note)
