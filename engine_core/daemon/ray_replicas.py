"""Engine replicas on a Ray cluster behind one daemon: `xstreamer serve --ray ADDRESS [--replicas N]`.

The daemon process keeps everything a client talks to — the protocol endpoint (control + media sockets), the
sessions' workers with their real-time pacing, admission — and its engine is a `RemoteEngine`: N Ray actors
(`Replica`, one per GPU, or `--replica-cpus` cores each on CPU workers), each an `Engine` with its own Stepper
batching its own sessions. A session lives on one replica (`RemoteSession` forwards its calls there; its chunks
come back through Ray's object store) and sticks to it; a new session goes to the replica with the fewest
sessions (ties: the least busy, `Replica.load`, polled every second). The daemon's admission (capacity.py) holds
the live replicas' share of its capacity, and its load report counts the live replicas.

When a replica dies (its process is killed, its node goes), the next call of each of its sessions fails; the
session is opened again on a live replica with the same persona (without its greeting), portrait, face points and
frame size, and its stream goes on: the next chunk's pts follow the last one's, utterance ids keep counting up (an
utterance cut off ends with `utterance_end`, reason "error: replica lost"), and the chunk carries the typed event
`moved` (reason: which replica was lost and where the session went). The conversation's history stays behind
with the dead replica. A new replica is started in its place; it takes new sessions once its engine answers.
Measured on this machine (two `tiny` replicas on a local Ray cluster, one killed mid-reply): docs/performance.md.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from sdk.protocol.constants import FRAME_SIZE

log = logging.getLogger("xstreamer.daemon.ray")

NAMESPACE = "xstreamer"     # the Ray namespace the daemon's job runs in (when it connects to Ray itself)
CALL_TIMEOUT_S = 10.0       # a replica that does not answer a chunk in this long is taken for dead
LOAD_POLL_S = 1.0           # how often the daemon asks each live replica how busy it is
LOST = "replica lost"


class ReplicaLost(RuntimeError):
    """No live replica could take a session (a client that opens one meanwhile gets `busy`)."""

    code = "busy"


# ---------------------------------------------------------------------------------------------------------------
# the replica: an Engine in a Ray actor (runs in the actor's process)
class Replica:
    """One engine replica. Ray runs it as a threaded actor: each session's calls come on their own threads, so the
    engine's Stepper batches the replica's sessions as it does in a daemon."""

    def __init__(self, model: str, load_kw: dict[str, Any]) -> None:
        from engine_core.engine import Engine

        self.engine = Engine.load(model, **load_kw)
        self.model = model
        self.sessions: dict[str, Any] = {}
        self._speech: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        import socket

        return {"pid": os.getpid(), "host": socket.gethostname(), "model": self.model,
                "device": str(self.engine.device), "warnings": list(self.engine.warnings)}

    def open(self, portrait: bytes | None, persona: Any, face_points: Any, video_size: int,
             first_utt: int = 1) -> dict[str, Any]:
        s = self.engine.open_session(portrait=portrait, persona=persona, face_points=face_points,
                                     video_size=video_size)
        s._next_utt = max(s._next_utt, first_utt)
        woke = threading.Event()
        s.on_speech(woke.set)
        with self._lock:
            self.sessions[s.id] = s
            self._speech[s.id] = woke
        return {"id": s.id, "sample_rate": s.sample_rate, "fps": s.fps, "video_size": s.video_size,
                "video_format": s.video_format, "motion_channels": list(s.motion_channels),
                "warnings": list(s.warnings), "chunk_frames": s.chunk_frames}

    def _session(self, sid: str) -> Any:
        s = self.sessions.get(sid)
        if s is None:
            raise KeyError(f"no session {sid!r} on this replica")
        return s

    def next_chunk(self, sid: str) -> tuple[Any, str]:
        s = self._session(sid)
        return s.next_chunk(), s.state

    def reply_ready(self, sid: str) -> bool:
        return self._session(sid).reply_ready()

    def wait_speech(self, sid: str, timeout: float) -> bool:
        """Block until the session's Thinker queues speech (True) or `timeout` s pass (False)."""
        woke = self._speech.get(sid)
        if woke is None or not woke.wait(timeout):
            return False
        woke.clear()
        return True

    def call(self, sid: str, method: str, *args: Any, **kw: Any) -> Any:
        if method not in ("chat", "speak", "hear", "interrupt", "set_persona"):
            raise ValueError(f"no session method {method!r}")
        return getattr(self._session(sid), method)(*args, **kw)

    def close(self, sid: str) -> None:
        with self._lock:
            s = self.sessions.pop(sid, None)
            self._speech.pop(sid, None)
        if s is not None:
            s.close()

    def load(self) -> dict[str, Any]:
        st = self.engine.stepper.stats
        return {"sessions": len(self.sessions), "steps": st.steps, "chunks": st.chunks,
                "utilization": self.engine.stepper.utilization()}


# ---------------------------------------------------------------------------------------------------------------
# the daemon's side
@dataclass
class _Handle:
    """A replica as the daemon sees it."""

    name: str
    actor: Any
    info: dict[str, Any] = field(default_factory=dict)
    sessions: int = 0
    utilization: float = 0.0          # its block loop's busy share (Replica.load, polled every LOAD_POLL_S)
    alive: bool = True
    lost_at: float = 0.0


def _actor_errors() -> tuple[type[BaseException], ...]:
    import ray.exceptions as rex

    names = ("RayActorError", "ActorDiedError", "ActorUnavailableError", "GetTimeoutError", "WorkerCrashedError",
             "NodeDiedError", "OwnerDiedError", "ObjectLostError")
    return tuple(getattr(rex, n) for n in names if hasattr(rex, n))


class RemoteEngine:
    """The daemon's engine when replicas run on Ray (module docstring): `open_session(...)` like `Engine`'s."""

    def __init__(self, address: str | None, model: str, replicas: int = 2, device: str = "cpu",
                 replica_cpus: float = 1.0, load_kw: dict[str, Any] | None = None,
                 init_kw: dict[str, Any] | None = None, respawn: bool = True) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address="local" if address in (None, "", "local") else address, include_dashboard=False,
                     log_to_driver=False, namespace=NAMESPACE, **(init_kw or {}))
        self.model, self.device = model, device
        self._errors = _actor_errors()
        gpu = str(device).startswith("cuda")
        opts = {"num_gpus": 1, "num_cpus": 1} if gpu else {"num_cpus": replica_cpus}
        # Ray does not restart a replica itself (calls to an actor it restarts wait for the new process, seconds
        # of engine loading, instead of failing): a dead one fails its calls at once, its sessions move, and a new
        # actor is started in its place (`respawn`). Named `xstreamer-replica-<i>` in the job's namespace (one
        # daemon per namespace), so tools can find them.
        self._cls = ray.remote(Replica)
        self._opts = dict(opts, max_concurrency=256, max_restarts=0)
        self._kw = dict(load_kw or {}, device="cuda" if gpu else device)
        self.respawn = respawn
        self._lock = threading.Lock()
        self.replicas = [_Handle(f"replica-{i}", self._spawn(i)) for i in range(replicas)]
        for h in self.replicas:                      # wait for every engine to load (a failure is the caller's)
            h.info = ray.get(h.actor.info.remote())
        self.warnings = list(self.replicas[0].info.get("warnings", []))
        self.config = None
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._revive_loop, name="xs-ray-revive", daemon=True)
        self._watch.start()

    def _spawn(self, i: int) -> Any:
        return self._cls.options(name=f"xstreamer-replica-{i}", **self._opts).remote(self.model, self._kw)

    # -- placement ---------------------------------------------------------------------------------------------
    def pick(self, exclude: tuple[str, ...] = ()) -> _Handle:
        """The live replica with the fewest sessions (ties: the least busy, then the first), not in `exclude`."""
        with self._lock:
            live = [h for h in self.replicas if h.alive and h.name not in exclude]
            if not live:
                raise ReplicaLost("no live replica to take the session")
            h = min(live, key=lambda r: (r.sessions, round(r.utilization, 1)))
            h.sessions += 1
            return h

    def release(self, h: _Handle) -> None:
        with self._lock:
            h.sessions = max(0, h.sessions - 1)

    def lost(self, h: _Handle, why: str) -> None:
        with self._lock:
            if h.alive:
                log.warning("%s lost: %s", h.name, why)
                h.alive, h.lost_at, h.sessions = False, time.monotonic(), 0

    def _revive_loop(self) -> None:
        """A lost replica is replaced by a new actor (`respawn`); once its engine answers it takes new sessions."""
        import ray

        pending: dict[str, Any] = {}          # replica name -> the new actor's `info` call
        polled = 0.0
        while not self._stop.wait(0.5):
            if time.monotonic() - polled >= LOAD_POLL_S:
                polled = time.monotonic()
                self._poll_load()
            for i, h in enumerate(list(self.replicas)):
                if h.alive or not self.respawn:
                    continue
                if h.name not in pending:
                    try:
                        ray.kill(h.actor, no_restart=True)
                    except Exception:
                        pass
                    try:
                        h.actor = self._spawn(i)
                    except Exception as exc:          # (the name may not be free yet: next round)
                        log.debug("respawning %s: %s", h.name, exc)
                        continue
                    pending[h.name] = h.actor.info.remote()
                ready, _ = ray.wait([pending[h.name]], timeout=0)
                if not ready:
                    continue
                ref = pending.pop(h.name)
                try:
                    info = ray.get(ref)
                except Exception as exc:
                    log.warning("%s did not come back: %s", h.name, exc)
                    continue
                with self._lock:
                    h.info, h.alive, h.sessions = info, True, 0
                log.info("%s is back (pid %s)", h.name, info.get("pid"))

    def _poll_load(self) -> None:
        """Each live replica's busy share (a replica that does not answer is left to its sessions' calls)."""
        import ray

        live = [h for h in self.replicas if h.alive]
        refs = [h.actor.load.remote() for h in live]
        for h, ref in zip(live, refs):
            try:
                h.utilization = float(ray.get(ref, timeout=2.0)["utilization"])
            except Exception:
                pass

    def live_replicas(self) -> int:
        with self._lock:
            return sum(h.alive for h in self.replicas)

    def replica_counts(self) -> tuple[int, int]:
        """(live replicas, replicas started): the daemon's admission holds the live share of its capacity."""
        with self._lock:
            return sum(h.alive for h in self.replicas), len(self.replicas)

    def utilization(self) -> float:
        """The live replicas' mean busy share (0..1; the load report's `utilization`)."""
        with self._lock:
            live = [h.utilization for h in self.replicas if h.alive]
        return sum(live) / len(live) if live else 0.0

    # -- the Engine interface the daemon uses ---------------------------------------------------------------
    def open_session(self, portrait: bytes | None = None, persona: Any = None, face_points: Any = None,
                     video_size: int = FRAME_SIZE) -> RemoteSession:
        return RemoteSession(self, (portrait, persona, face_points, video_size))

    def shutdown(self) -> None:
        import ray

        self._stop.set()
        for h in self.replicas:
            try:
                ray.kill(h.actor, no_restart=True)
            except Exception:
                pass


class RemoteSession:
    """A session on one replica (module docstring): the interface of engine_core.engine.session.Session that the
    daemon's worker and handlers use, forwarded; moved to another replica when its replica dies."""

    def __init__(self, engine: RemoteEngine, open_args: tuple) -> None:
        self.engine = engine
        self.open_args = open_args
        self.moves = 0
        self._utt_offset = 0          # the daemon's utt = the replica's + this (after a move: no repeats)
        self._max_utt = 0
        self._open_utts: set[int] = set()   # asked for and not ended (daemon numbering)
        self._next_pts = 0            # pts the next chunk must have (the stream goes on across a move)
        self._pts_offset = 0
        self._state = "idle"
        self._closed = False
        self._wake: Callable[[], None] | None = None
        self._lock = threading.RLock()
        self._move_lock = threading.Lock()
        self._notes: list[Any] = []       # events for the next chunk (a move)
        self.replica, info = self._open(exclude=())
        self._set(info)
        self.warnings = list(info["warnings"])

    def _open(self, exclude: tuple[str, ...], first_utt: int = 1) -> tuple[_Handle, dict]:
        import ray

        portrait, persona, face_points, video_size = self.open_args
        tried = list(exclude)
        while True:
            h = self.engine.pick(tuple(tried))
            try:
                info = ray.get(h.actor.open.remote(portrait, persona, face_points, video_size, first_utt),
                               timeout=60.0)
                return h, info
            except self.engine._errors as exc:
                self.engine.release(h)
                self.engine.lost(h, f"{type(exc).__name__}")
                tried.append(h.name)

    def _set(self, info: dict) -> None:
        self.rsid = info["id"]
        self.sample_rate, self.fps = info["sample_rate"], info["fps"]
        self.video_size, self.video_format = info["video_size"], info["video_format"]
        self.motion_channels = list(info["motion_channels"])
        self.chunk_frames = info["chunk_frames"]

    # -- control --------------------------------------------------------------------------------------------
    def _call(self, method: str, *args: Any) -> Any:
        """A session method on its replica; if that replica is lost, the session moves and the call goes there."""
        import ray

        for _ in range(3):
            h, rsid = self.replica, self.rsid
            try:
                return ray.get(h.actor.call.remote(rsid, method, *args), timeout=CALL_TIMEOUT_S)
            except self.engine._errors as exc:
                self._moved_from(h, f"{LOST} ({h.name}: {type(exc).__name__})")
        raise ReplicaLost("the session's replicas keep failing")

    def _utt(self, utt: Any) -> int:
        if not utt:
            return 0
        u = int(utt) + self._utt_offset
        with self._lock:
            self._max_utt = max(self._max_utt, u)
            self._open_utts.add(u)
        return u

    def chat(self, text: str) -> int:
        return self._utt(self._call("chat", text))

    def speak(self, text: str) -> int:
        return self._utt(self._call("speak", text))

    def hear(self, pcm: Any, sample_rate: int, final: bool = False) -> int | None:
        utt = self._call("hear", pcm, sample_rate, final)
        return self._utt(utt) if utt else None

    def interrupt(self) -> None:
        with self._lock:
            self._open_utts.clear()           # (the replica drops every reply queued or running; the one speaking
        self._call("interrupt")               # gets its `interrupted` event)

    def set_persona(self, persona: Any) -> None:
        self._call("set_persona", persona)
        self.open_args = (self.open_args[0], persona, *self.open_args[2:])

    @property
    def state(self) -> str:
        return self._state

    def reply_ready(self) -> bool:
        import ray

        try:
            return bool(ray.get(self.replica.actor.reply_ready.remote(self.rsid), timeout=CALL_TIMEOUT_S))
        except Exception:
            return True                       # (the worker then asks for a chunk at once: that moves the session)

    def on_speech(self, fn: Callable[[], None]) -> None:
        """`fn()` whenever the replica's Thinker queues speech for this session (a thread waits on the replica)."""
        self._wake = fn
        threading.Thread(target=self._speech_loop, name=f"xs-ray-speech-{self.rsid}", daemon=True).start()

    def _speech_loop(self) -> None:
        import ray

        while not self._closed:
            try:
                if ray.get(self.replica.actor.wait_speech.remote(self.rsid, 1.0), timeout=CALL_TIMEOUT_S):
                    self._wake()
            except Exception:
                if self._closed:
                    return
                self._wake()                  # lost: the worker's next chunk moves the session
                time.sleep(0.05)

    def close(self) -> None:
        import ray

        if self._closed:
            return
        self._closed = True
        self.engine.release(self.replica)
        try:
            ray.get(self.replica.actor.close.remote(self.rsid), timeout=5.0)
        except Exception:
            pass

    # -- the block loop -------------------------------------------------------------------------------------
    def next_chunk(self) -> Any:
        import ray

        for _ in range(3):
            h = self.replica
            try:
                chunk, self._state = ray.get(h.actor.next_chunk.remote(self.rsid), timeout=CALL_TIMEOUT_S)
                break
            except self.engine._errors as exc:
                self._moved_from(h, f"{LOST} ({h.name}: {type(exc).__name__})")
        else:
            raise ReplicaLost("the session's replicas keep failing")
        with self._lock:
            notes, self._notes = self._notes, []
        return self._renumber(chunk, notes)

    def _moved_from(self, lost: _Handle, why: str) -> None:
        """`lost` failed: unless the session already left it, open it again on a live replica; the next chunk carries
        the events that say so (`utterance_end` "error: replica lost" for each reply cut off, then `moved`)."""
        from engine_core.engine.chunk import EventItem

        self.engine.lost(lost, why)
        with self._move_lock:
            if self.replica is not lost:
                return
            self.moves += 1
            portrait, persona, face_points, video_size = self.open_args
            if persona is not None and getattr(persona, "greeting", ""):      # (said once, at the first open)
                persona = persona.model_copy(update={"greeting": ""}) if hasattr(persona, "model_copy") \
                    else replace(persona, greeting="")
                self.open_args = (portrait, persona, face_points, video_size)
            with self._lock:
                cut = sorted(self._open_utts)
                self._open_utts.clear()
                base = self._max_utt
            self.replica, info = self._open(exclude=(lost.name,))
            self._set(info)
            self._utt_offset = base             # the new replica counts from 1: ours go on from the last
            self._pts_offset = self._next_pts   # and its pts from 0: ours go on from the next
            notes = [EventItem(pts=0, event="utterance_end", utt=u, reason=f"error: {LOST}") for u in cut]
            notes.append(EventItem(pts=0, event="moved", utt=0, reason=f"{why}; reopened on {self.replica.name}"))
            with self._lock:
                self._notes += notes
            log.warning("session moved to %s after %s", self.replica.name, why)

    def _renumber(self, chunk: Any, notes: list[Any]) -> Any:
        """The replica's chunk in the daemon's numbering (pts and utterance ids), with `notes` first."""
        off, uo = self._pts_offset, self._utt_offset
        chunk.pts += off
        if chunk.utt:
            chunk.utt += uo
        for t in chunk.texts:
            t.pts += off
        for e in chunk.events:
            e.pts += off
            if e.utt:
                e.utt += uo
        for n in notes:
            n.pts = chunk.pts
        chunk.events = notes + chunk.events
        with self._lock:
            for e in chunk.events:
                if e.event in ("utterance_end", "interrupted") and e.utt:
                    self._open_utts.discard(e.utt)
                if e.utt:
                    self._max_utt = max(self._max_utt, e.utt)
        self._next_pts = chunk.pts + chunk.num_frames * (self.sample_rate // self.fps)
        return chunk


__all__ = ["RemoteEngine", "RemoteSession", "Replica", "ReplicaLost"]
