"""How many sessions a daemon holds in real time, and whether one more would push the others below it.

`serve --capacity auto|calibrate|N` (`resolve`):
  - auto (the default): the figure the session benchmark measured for this model on this kind of device, stored in
    engine_core/daemon/capacity.json (`stored`; docs/performance.md, "Many sessions", has the runs; with Ray, times
    the replicas); without one, `--max-sessions` ("unmeasured");
  - calibrate: measured at start-up (`calibrate`): k sessions of the loaded engine speak at once, their block loops
    unpaced, for a few seconds each k = 1, 2, ...; capacity = the largest k whose every session made media at least
    `HEADROOM` times as fast as real time;
  - N: as configured.
At each `open` the daemon refuses a session past the capacity, and (with a known capacity) one while the sessions
already open are behind real time (`Admission.behind`: a session's queued media ran out), with the typed error
`busy` saying which. `store` writes a benchmark's figure (bench_sessions --store).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

FIGURES = Path(__file__).with_name("capacity.json")
HEADROOM = 1.15         # a calibrated session must run this much faster than real time (the Thinker's bursts, jitter)
CALIBRATE_S = 3.0       # seconds of unpaced block loop per k


@dataclass(frozen=True)
class Capacity:
    """`sessions` held in real time; `source`: bench | calibrated | configured | unmeasured; `detail`: from where."""

    sessions: int
    source: str
    detail: str = ""


def device_class(device: Any) -> str:
    """"cpu:<cores>" or "cuda:<GPU name>": the kind of device a stored figure is for."""
    name = str(device)
    if name.startswith("cuda"):
        try:
            import torch

            return "cuda:" + torch.cuda.get_device_name(torch.device(name))
        except Exception:
            return "cuda:unknown"
    return f"cpu:{os.cpu_count() or 1}"


def stored(model: str, device: Any, path: Path = FIGURES) -> Capacity | None:
    """The benchmark's figure for `model` on this kind of device (capacity.json), or None."""
    try:
        figures = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    entry = figures.get(model, {}).get(device_class(device))
    if not isinstance(entry, dict) or not isinstance(entry.get("sessions"), int):
        return None
    return Capacity(int(entry["sessions"]), "bench", str(entry.get("measured", path.name)))


def store(model: str, device: Any, sessions: int, measured: str, path: Path = FIGURES) -> None:
    """Record the sessions `model` holds in real time on this kind of device (the session benchmark's result)."""
    try:
        figures = json.loads(path.read_text())
    except (OSError, ValueError):
        figures = {}
    figures.setdefault(model, {})[device_class(device)] = {"sessions": int(sessions), "measured": measured}
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")


def calibrate(engine: Any, max_sessions: int, seconds: float = CALIBRATE_S,
              text: str = "Hello! It is good to see you. Let me tell you about the weather today, it is sunny.") -> Capacity:
    """Measure (module docstring): sessions opened on `engine` speak `text` over and over, their block loops run
    unpaced from one thread each for `seconds` per k; stops at the first k that falls short."""
    best, seen = 0, []
    for k in range(1, max_sessions + 1):
        sessions = [engine.open_session() for _ in range(k)]
        try:
            for s in sessions:
                s.next_chunk()
                s.speak(text)
            made = [0.0] * k
            t0 = time.monotonic()

            def run(i: int) -> None:
                s = sessions[i]
                while time.monotonic() - t0 < seconds:
                    c = s.next_chunk()
                    made[i] += c.num_frames / s.fps
                    if any(e.event == "utterance_end" for e in c.events):
                        s.speak(text)

            threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(k)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - t0
        finally:
            for s in sessions:
                s.close()
        speed = min(made) / wall
        seen.append(f"{k}: x{speed:.2f}")
        if speed < HEADROOM:
            break
        best = k
    return Capacity(max(1, best), "calibrated", "real-time factor of the slowest session, by sessions: "
                    + ", ".join(seen))


def parse_spec(spec: str) -> str | int:
    """`--capacity`'s value: "auto", "calibrate" or a positive number (ValueError otherwise; the CLI asks before it
    loads the model)."""
    if spec in ("auto", "calibrate"):
        return spec
    if not (spec.isdigit() and int(spec) >= 1):
        raise ValueError(f"--capacity must be auto, calibrate or a positive number, not {spec!r}")
    return int(spec)


def resolve(spec: str, engine: Any, model: str, device: Any, max_sessions: int, replicas: int = 1) -> Capacity:
    """`--capacity`'s value -> a Capacity (module docstring); never more than `max_sessions`. `replicas`: engine
    replicas behind the daemon (Ray), each holding the stored figure."""
    how = parse_spec(spec)
    if isinstance(how, int):
        return Capacity(min(how, max_sessions), "configured", "--capacity")
    if spec == "auto":
        got = stored(model, device)
        if got is None:
            return Capacity(max_sessions, "unmeasured", "no benchmark figure for this model and device: "
                                                         "--max-sessions (serve --capacity calibrate measures it)")
        detail = got.detail + (f" (x {replicas} replicas)" if replicas > 1 else "")
        return Capacity(min(got.sessions * replicas, max_sessions), got.source, detail)
    got = calibrate(engine, max_sessions)
    return Capacity(min(got.sessions, max_sessions), got.source, got.detail)


class Admission:
    """The daemon's decision at each `open` (module docstring). `replicas`: for an engine of replicas (Ray), a
    callable -> (live, started); a known capacity shrinks with the replicas lost (none live: every open is busy)."""

    def __init__(self, capacity: Capacity, behind_s: float = 3.0,
                 replicas: Callable[[], tuple[int, int]] | None = None) -> None:
        self.configured = capacity
        self.behind_s = behind_s            # a session that ran out of media this recently counts as behind
        self.replicas = replicas
        self._late: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def capacity(self) -> Capacity:
        """The capacity now: the configured one, for the live share of the replicas."""
        c = self.configured
        if self.replicas is None:
            return c
        live, started = self.replicas()
        if live >= started or started < 1:
            return c
        if c.source == "unmeasured" and live > 0:
            return c
        return Capacity(c.sessions * live // started, c.source,
                        f"{c.detail}; {live} of {started} replicas live")

    def note_late(self, session: str) -> None:
        """A session's queued media ran out (its worker could not keep real time)."""
        with self._lock:
            self._late[session] = time.monotonic()

    def forget(self, session: str) -> None:
        with self._lock:
            self._late.pop(session, None)

    def behind(self) -> list[str]:
        """The sessions that fell behind real time within the last `behind_s` seconds."""
        now = time.monotonic()
        with self._lock:
            return [s for s, t in self._late.items() if now - t < self.behind_s]

    def refusal(self, open_sessions: int) -> str | None:
        """Why a new session cannot open now (the `busy` error's message), or None. Sessions behind real time stop
        new ones only where the capacity is known (bench, calibrated, configured): an unmeasured daemon keeps the
        behaviour of `--max-sessions` alone."""
        c = self.capacity
        if open_sessions >= c.sessions:
            return (f"busy: this daemon holds {c.sessions} session{'s' if c.sessions != 1 else ''} in real time "
                    f"({c.source}: {c.detail}); {open_sessions} open")
        if c.source == "unmeasured":
            return None
        late = self.behind()
        if late:
            return (f"busy: {len(late)} of the {open_sessions} open sessions fell behind real time in the last "
                    f"{self.behind_s:.0f} s; another would push them further")
        return None


__all__ = ["Admission", "Capacity", "calibrate", "device_class", "parse_spec", "resolve", "store", "stored"]
