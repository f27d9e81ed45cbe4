"""`xstreamer bench`: speed of the engine on the daemon's own code path (Engine.load -> Session.next_chunk).

    xstreamer bench --preset default --device cpu
    xstreamer bench --preset paper --device cuda --seconds 60 --json docs/perf/paper-h100.json

Measures: load time; time from the end of the user's turn (the `chat`/`speak` call) to the first A/V chunk of
the reply, with its parts (the Thinker's speech of that chunk; with the Actor's token stream, the Actor's tokens of
that chunk and their speech decoding; the Actor passes, the VAE decode, the rest) and
how late the reply's next two chunks come against the playout of the first, under each way a reply can start
(`Session.start`: "alone", "own", "pyramid", "hold"; the session's own choice is the headline figure), and the
garbage collector's pauses meanwhile;
sustained generated fps over `--seconds` of stream with replies kept queued; Thinker ms/token (decode steps of
its language model); Actor ms per pass and per chunk; VAE decode ms per chunk; how many Actor pass shapes have a
CUDA graph; peak GPU memory; for a motion-space model, the Actor + portrait renderer's own frame rate at 256 and
512 (a reply's chunks, its speech already made). Prints a table (and writes JSON with --json). Numbers are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Any

import torch

from .probes import GcClock, Probes, SegmentClock
from .report import write_json

DEFAULT_TEXT = "Hello! It is good to see you. Let me tell you about the weather today, it is sunny and warm."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", "--model", dest="preset", default="default",
                        help="model preset or checkpoint dir (tiny | default | paper)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--devices", default=None, help="two devices for the Thinker/Actor split, e.g. cuda:0,cuda:1")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of stream to generate for fps")
    parser.add_argument("--mode", choices=["speak", "chat"], default=None,
                        help="speak (verbatim text) or chat (the Thinker writes the reply); default: chat on paper, "
                             "speak elsewhere")
    parser.add_argument("--text", default=DEFAULT_TEXT)
    parser.add_argument("--trials", type=int, default=3, help="first-packet latency trials")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--random-weights", action="store_true",
                        help="full shape with random weights (timing only; the paper preset's weights are not public)")
    parser.add_argument("--thinker-weights", choices=["bf16", "int8"], default=None,
                        help="the glm4voice Thinker's decode step: bf16 or weight-only int8 (default: the config's)")
    parser.add_argument("--glm4voice", metavar="DIR", default=None, help="a directory with GLM-4-Voice's published parts (glm-4-voice-9b, glm-4-voice-tokenizer, glm-4-voice-decoder) for a model whose Thinker is glm4voice (paper, voice)")
    parser.add_argument("--actor-tokens", choices=["on", "off"], default=None, help="on: the Actor writes and speaks the reply (its own text and audio tokens); off: the Thinker's are streamed (default: the model's)")
    parser.add_argument("--json", dest="json_path", default=None, help="write the results as JSON here")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 3) if xs else None


def _max(xs: list[float]) -> float | None:
    return round(max(xs), 1) if xs else None


def _first_after(probe, since: int, t: float) -> int:
    """Index of the first of `probe`'s intervals from `since` on that began (on the host) at or after `t`."""
    return since + sum(1 for iv in probe.intervals[since:] if iv.host_start < t)


def _first_packets(session, say, clock: SegmentClock, probes: Probes, trials: int, device: str,
                   start: str, gc_clock: GcClock) -> dict[str, list[float]]:
    """`trials` replies from a settled idle stream: the time from the user's turn to the reply's first chunk
    and its parts (the Thinker's speech of that chunk, the Actor passes, the VAE decode, the rest), then how
    late the reply's next two chunks were against the playout of the first (0 = no gap in the audio), and the
    garbage collector's pauses in between."""
    session.start = start
    out: dict[str, list[float]] = {k: [] for k in ("first", "speech", "passes", "pass_ms", "pass_host_ms",
                                                   "decode_ms", "other", "late", "gc_ms", "tokens_ms",
                                                   "tokens_forwards", "voice_ms")}
    passes, decodes = probes.get("actor.pass"), probes.get("vae.decode")
    toks, voice = probes.get("actor.tokens"), probes.get("speech.decode")
    chunk_s = session.chunk_frames / session.fps
    for _ in range(trials):
        session.interrupt()
        session.next_chunk()
        _sync(device)
        n_pass, n_dec, n_tok, n_voice = (len(p.intervals) for p in (passes, decodes, toks, voice))
        forwards = session.voice.forwards if session.voice is not None else 0
        start = time.perf_counter()
        utt = say()
        while time.perf_counter() - start < 120:
            if session.next_chunk().utt == utt:
                break
        _sync(device)
        first = time.perf_counter()
        ready = clock.frames_ready_at(start, session.chunk_frames)
        # the reply's own work: the passes and decodes begun once its first chunk's speech was there (before it,
        # the block loop went on making idle chunks while the Thinker thought)
        n_pass, n_dec = (_first_after(probe, n, ready or start) for probe, n in ((passes, n_pass), (decodes, n_dec)))
        pass_ms, dec_ms = passes.durations_ms(n_pass), decodes.durations_ms(n_dec)
        tok_ms, voice_ms = [], []
        if session.voice is not None:        # the Actor's tokens of the reply's first chunk, and their decoding
            n_tok, n_voice = (_first_after(p, n, ready or start) for p, n in ((toks, n_tok), (voice, n_voice)))
            tok_ms, voice_ms = toks.durations_ms(n_tok)[:1], voice.durations_ms(n_voice)[:1]
            out["tokens_ms"] += tok_ms
            out["voice_ms"] += voice_ms
            out["tokens_forwards"].append(session.voice.forwards - forwards)
        out["first"].append((first - start) * 1e3)
        out["gc_ms"].append(gc_clock.ms_between(start, first))
        out["passes"].append(len(pass_ms))
        out["pass_ms"] += pass_ms
        out["pass_host_ms"] += passes.host_ms(n_pass)
        out["decode_ms"] += dec_ms
        if ready is not None:
            out["speech"].append((ready - start) * 1e3)
            out["other"].append((first - ready) * 1e3 - sum(pass_ms) - sum(dec_ms) - sum(tok_ms) - sum(voice_ms))
        late = 0.0
        for k in (1, 2):
            session.next_chunk()
            _sync(device)
            late = max(late, (time.perf_counter() - first - k * chunk_s) * 1e3)
        out["late"].append(late)
    return out


def _thinker_rate(engine, text: str, mode: str, budget_s: float = 30.0) -> tuple[float | None, int]:
    """ms per Thinker token with the Thinker alone (its own reply/speak loop, no Actor running)."""
    from engine_core.thinker.base import Conversation

    thinker = engine.thinker
    tokens, start = 0, time.perf_counter()
    stream = (thinker.reply(Conversation(system_prompt="You are a helpful assistant."), text) if mode == "chat"
              else thinker.speak(text))
    for seg in stream:
        tokens += int(seg.hidden.shape[0])
        if time.perf_counter() - start > budget_s:
            break
    wall = time.perf_counter() - start
    return (round(wall * 1e3 / tokens, 3) if tokens else None), tokens


def _decoder(engine, session) -> tuple[Any, str]:  # noqa: ANN001
    """(object, method) that turns a clean chunk into frames: the codec's decode, or a motion session's renderer."""
    return (engine.vae, "decode") if hasattr(engine.vae, "decode") else (session.frames, "make")


def _actor_renderer_fps(engine, text: str, size: int, chunks: int = 12) -> float:  # noqa: ANN001
    """Frames per second of the block loop alone (Actor passes + frames) on a reply whose speech is made already,
    at `size` x `size`."""
    session = engine.open_session(video_size=size)
    try:
        utt = session.speak(text + " " + text)
        deadline = time.perf_counter() + 60
        while session.feed.working() and time.perf_counter() < deadline:
            time.sleep(0.05)
        while session.next_chunk().utt != utt:
            pass
        start, frames = time.perf_counter(), 0
        for _ in range(chunks):
            frames += session.next_chunk().num_frames
        return round(frames / (time.perf_counter() - start), 1)
    finally:
        session.close()


def run_bench(args: argparse.Namespace) -> dict:
    from engine_core.engine import Engine  # heavy import: only when benchmarking

    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda") or bool(args.devices and "cuda" in args.devices)
    mode = args.mode or ("chat" if args.preset == "paper" else "speak")
    t0 = time.perf_counter()
    load_kwargs: dict[str, Any] = {"devices": args.devices} if args.devices else {}
    if args.random_weights:
        load_kwargs["random_weights"] = True
    if args.glm4voice:
        load_kwargs["glm4voice"] = args.glm4voice
    if args.actor_tokens is not None:
        load_kwargs["actor_tokens"] = args.actor_tokens == "on"
    engine = Engine.load(args.preset, device=args.device, thinker_weights=args.thinker_weights, **load_kwargs)
    t1 = time.perf_counter()
    session = engine.open_session()              # (on CUDA: captures the Actor's pass graphs)
    load_s, open_s = t1 - t0, time.perf_counter() - t1

    def say() -> int:
        return session.chat(args.text) if mode == "chat" else session.speak(args.text)

    def until_end(utt: int, limit: int = 400) -> None:
        for _ in range(limit):
            if any(e.event == "utterance_end" and e.utt == utt for e in session.next_chunk().events):
                return

    # Warm-up: idle chunks and one reply (CUDA graphs, allocator, caches).
    for _ in range(2):
        session.next_chunk()
    until_end(say())
    _sync(args.device)
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    # A. the Actor + VAE alone: idle chunks (no Thinker work in flight)
    probes = Probes(cuda)
    probes.hook_module(engine.actor, "actor.pass")
    probes.wrap_method(*_decoder(engine, session), "vae.decode")
    idle_ms = []
    for _ in range(6):
        start = time.perf_counter()
        session.next_chunk()
        _sync(args.device)
        idle_ms.append((time.perf_counter() - start) * 1e3)
    actor_ms = probes.get("actor.pass").durations_ms()
    vae_ms = probes.get("vae.decode").durations_ms()
    probes.detach()

    # B. the Thinker alone: its own reply loop
    thinker_ms, thinker_tokens = _thinker_rate(engine, args.text, mode)

    # C. time to first A/V packet: end of the user's turn -> the reply's first chunk is ready to publish, under
    #    the session's own start policy and, to compare, the others
    from engine_core.engine.session import START_POLICIES

    clock = SegmentClock(engine.thinker)
    gc_clock = GcClock()
    probes = Probes(cuda)
    probes.hook_module(engine.actor, "actor.pass")
    probes.wrap_method(*_decoder(engine, session), "vae.decode")
    if session.voice is not None:
        probes.wrap_method(session.voice.stream, "chunk", "actor.tokens")
    decoder = getattr(engine.thinker, "speech_decoder", None)
    if decoder is not None:
        probes.wrap_method(decoder, "decode", "speech.decode")
    policy = session.start                              # the session's own choice (session.default_start)
    runs = {p: _first_packets(session, say, clock, probes, args.trials, args.device, start=p, gc_clock=gc_clock)
            for p in (policy, *[q for q in START_POLICIES if q != policy])}
    probes.detach()
    session.start = policy
    main, free = runs[policy], runs["pyramid"]

    # D. sustained generation: replies kept queued, frames per wall-clock second
    session.interrupt()
    session.next_chunk()
    _sync(args.device)
    frames = chunks = 0
    target_frames = int(args.seconds * 25)
    utt = say()
    voice_tokens0, voice_forwards0 = (session.voice.tokens, session.voice.forwards) if session.voice else (0, 0)
    start = time.perf_counter()
    while frames < target_frames:
        chunk = session.next_chunk()
        frames += chunk.num_frames
        chunks += 1
        if any(e.event == "utterance_end" and e.utt == utt for e in chunk.events):
            utt = say()
    _sync(args.device)
    wall = time.perf_counter() - start
    stream_tokens = clock.tokens_between(start, start + wall)
    voice_tokens = session.voice.tokens - voice_tokens0 if session.voice is not None else 0
    voice_forwards = session.voice.forwards - voice_forwards0 if session.voice is not None else 0
    clock.detach()
    gc_clock.detach()
    passes_per_chunk = len(actor_ms) / 6 if actor_ms else None
    motion = engine.config.vae.kind == "motion"
    render_fps = {f"actor_renderer_fps_{n}": _actor_renderer_fps(engine, args.text, n) for n in (256, 512)} \
        if motion else {}
    result = {
        "preset": args.preset,
        "weights": "random (timing only)" if args.random_weights else "as loaded",
        "device": (torch.cuda.get_device_name() if cuda else
                   f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"),
        "devices": args.devices or args.device,
        "thinker_step_weights": engine.config.thinker.step_weights,
        "actor_tokens": session.voice is not None,
        "speech_decoder": type(decoder).__name__ if decoder is not None else None,
        "mode": mode,
        "load_s": round(load_s, 2),
        "open_session_s": round(open_s, 2),
        "stream_seconds": round(frames / 25, 2),
        "wall_seconds": round(wall, 2),
        "fps": round(frames / wall, 2),
        "realtime_factor": round(frames / 25 / wall, 3),
        "start": policy,
        "first_packet_ms": _median(main["first"]),
        "first_packet_ms_all": [round(x, 1) for x in main["first"]],
        "first_speech_ready_ms": _median(main["speech"]),
        "first_speech_ready_ms_all": [round(x, 1) for x in main["speech"]],
        "first_packet_passes": _median(main["passes"]),
        "first_packet_pass_ms": _median(main["pass_ms"]),
        "first_packet_pass_host_ms": _median(main["pass_host_ms"]),
        "first_packet_pass_ms_all": [round(x, 1) for x in main["pass_ms"]],
        "first_packet_pass_host_ms_all": [round(x, 1) for x in main["pass_host_ms"]],
        "first_packet_decode_ms": _median(main["decode_ms"]),
        "first_packet_actor_tokens_ms": _median(main["tokens_ms"]),
        "first_packet_actor_token_forwards": _median(main["tokens_forwards"]),
        "first_packet_speech_decode_ms": _median(main["voice_ms"]),
        "first_packet_other_ms": _median(main["other"]),
        "startup_late_ms": _max(main["late"]),
        "first_packet_gc_ms_all": [round(x, 1) for x in main["gc_ms"]],
        "gc_pause_ms_max": _max([ms for _, ms, _ in gc_clock.passes]),
        "gc_passes_gen2": sum(1 for *_, g in gc_clock.passes if g == 2),
        **{k: v for p, run in runs.items() for k, v in (
            (f"first_packet_ms_{p}", _median(run["first"])),
            (f"first_packet_ms_all_{p}", [round(x, 1) for x in run["first"]]),
            (f"startup_late_ms_{p}", _max(run["late"])))},
        "thinker_ms_per_token": thinker_ms,
        "thinker_stream_ms_per_token": round(wall * 1e3 / stream_tokens, 3) if stream_tokens else None,
        "thinker_tokens_timed": thinker_tokens,
        "actor_ms_per_pass": _median(actor_ms),
        "actor_passes_per_chunk": passes_per_chunk,
        "actor_ms_per_pass_replying": _median(free["pass_ms"]),
        "actor_pass_host_ms_replying": _median(free["pass_host_ms"]),
        "idle_chunk_ms": _median(idle_ms),
        "vae_decode_ms_per_chunk": _median(vae_ms),       # (a motion model: the portrait renderer's, per chunk)
        **render_fps,
        "actor_tokens_per_s_stream": round(voice_tokens / wall, 2) if voice_tokens else None,
        "actor_token_forwards_per_token": round(voice_forwards / voice_tokens, 3) if voice_tokens else None,
        "actor_cuda_graphs": engine.actor.graph_shapes(session.cache),
        "chunks": chunks,
        "chunk_frames": session.chunk_frames,
        "peak_gpu_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
    }
    session.close()
    return result


def print_table(result: dict) -> None:
    width = max(len(k) for k in result)
    print("-" * (width + 24))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print("-" * (width + 24))


def run(args: argparse.Namespace) -> int:
    result = run_bench(args)
    print_table(result)
    write_json(args.json_path, result)
    return 0
