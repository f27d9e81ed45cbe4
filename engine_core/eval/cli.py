"""`xstreamer eval`: score a model (or the ground truth itself) on held-out clips of a synthetic corpus.

For each clip of --split: the engine speaks the clip's text with the clip's portrait; the ground truth is the
generator's render of the same character and text, with no silence around the speech. With the cascade Thinker
(the `default` model) the engine speaks with `CorpusVoice` (Piper joe with the generator's seeded noise) and the
truth is rendered from exactly the speech it played, so the two are frame-aligned and the generated utterance
(utterance_start .. utterance_end) is cut to the truth's length; with another Thinker the truth is voiced by the
generator's default Piper voice and the generated utterance is resampled in time to its length.
Metric definitions: docs/metrics.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from engine_core.eval.identity import face_region_scores, id_sim
from engine_core.eval.lipsync import SAMPLES_PER_FRAME, audio_mouth_corr, lipsync_mouth_corr, pearson
from engine_core.eval.mouth import mouth_opening
from engine_core.eval.sharpness import cpbd_frames
from engine_core.eval.utterance import generate_utterance


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the `eval` arguments."""
    parser.add_argument("--data", type=Path, help="corpus directory (manifest.json)")
    parser.add_argument("--portraits", nargs="+", metavar="IMAGE",
                        help="instead of a corpus: animate these portraits (image files, or char:ID for a built-in "
                             "character) and measure the frames against them (engine_core/eval/portraits.py)")
    parser.add_argument("--sentences", type=int, default=6, help="--portraits: held-out sentences per portrait")
    parser.add_argument("--size", type=int, default=256, choices=(256, 512), help="--portraits: frame side")
    parser.add_argument("--frames-png", type=Path, default=None, help="--portraits: write a strip of frames here")
    parser.add_argument("--model", default="default", help="preset name or checkpoint directory")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--split", default="heldout_both",
                        choices=["train", "heldout_identity", "heldout_sentence", "heldout_both"])
    parser.add_argument("--clips", type=int, default=20, help="number of clips of the split to score")
    parser.add_argument("--out", type=Path, default=Path("metrics.json"))
    parser.add_argument("--stream-minutes", type=float, default=0.0,
                        help="also run one continuous stream this long and report per-minute stability")
    parser.add_argument("--truth-check", action="store_true",
                        help="no engine: score the truth against itself and against a degraded copy")
    parser.add_argument("--no-id-sim", action="store_true", help="skip dlib ID-Sim (slow on CPU)")


def score_clip(gen_frames: np.ndarray, gen_audio: np.ndarray, truth, with_id_sim: bool = True) -> dict:  # noqa: ANN001
    """All per-clip metrics of generated frames/audio against a ground-truth `Clip`."""
    box, fbox = truth.meta["mouth_box"], truth.meta["face_box"]
    gen_open = mouth_opening(gen_frames, box)
    true_open = mouth_opening(truth.frames, box)
    out = {
        "lipsync_mouth_corr": lipsync_mouth_corr(gen_open, true_open),
        "audio_mouth_corr": audio_mouth_corr(gen_audio, gen_open, max_lag=2),
        "truth_audio_mouth_corr": audio_mouth_corr(truth.audio, true_open, max_lag=2),
        **face_region_scores(gen_frames, truth.frames, fbox),
        "cpbd": cpbd_frames(gen_frames),
        "truth_cpbd": cpbd_frames(truth.frames),
        "frames": int(len(gen_frames)),
        "truth_frames": int(len(truth.frames)),
    }
    if with_id_sim:
        out.update(id_sim(truth.portrait, gen_frames, every=10))
    return out


def degrade(frames: np.ndarray, seed: int = 0) -> np.ndarray:
    """A plausibly imperfect copy: Gaussian blur (sigma 1) plus noise (std 4) and a 1-frame delay."""
    import cv2

    rng = np.random.default_rng(seed)
    out = np.stack([cv2.GaussianBlur(f, (0, 0), 1.0) for f in frames]).astype(np.float32)
    out += rng.normal(0, 4, out.shape).astype(np.float32)
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return np.concatenate([out[:1], out[:-1]])


def _truth_for(entry: dict, meta_clip, speech=None):  # noqa: ANN001, ANN202
    """The truth render of a corpus clip's character and text with no silence around the speech: from `speech`
    when given, else voiced by the generator's default voice and the clip's seed."""
    from engine_core.data.synth.characters import IdentityParams
    from engine_core.data.synth.render import render_clip
    from engine_core.data.synth.speech import VoiceParams

    ident = IdentityParams.from_dict(meta_clip.meta["identity"])
    return render_clip(ident, entry["text"], VoiceParams(), entry["seed"], lead_s=0.0, tail_s=0.0, speech=speech)


def _clean(x):  # noqa: ANN001, ANN202
    """NaN/inf -> None, numpy scalars -> Python (strict JSON)."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def clip_portrait(meta_clip):  # noqa: ANN001, ANN201
    """A corpus clip's portrait with its face as drawn (the character's own 68 landmarks: what a user would give
    by placing the face's points on a drawing)."""
    from engine_core.data.synth.characters import IdentityParams
    from engine_core.data.synth.draw import landmarks68
    from sdk.portrait import load_portrait

    ident = IdentityParams.from_dict(meta_clip.meta["identity"])
    return load_portrait(meta_clip.portrait, landmarks=landmarks68(ident))


def _mean(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if isinstance(r.get(key), (int, float)) and np.isfinite(r[key])]
    return float(np.mean(vals)) if vals else None


def _summary(rows: list[dict], real: list[np.ndarray], gen: list[np.ndarray]) -> dict:
    from engine_core.eval.fvd_proxy import fvd_proxy

    keys = ["lipsync_mouth_corr", "audio_mouth_corr", "truth_audio_mouth_corr", "face_ssim", "face_psnr",
            "face_ssim_posed", "face_psnr_posed", "cpbd",
            "truth_cpbd", "id_sim"]
    s = {k: _mean(rows, k) for k in keys}
    try:
        s["fvd_proxy_frechet"] = fvd_proxy(real, gen)
    except ValueError as e:
        s["fvd_proxy_frechet"] = None
        s["fvd_proxy_note"] = f"n/a ({e})"
    s["id_sim_clips"] = sum(1 for r in rows if r.get("id_sim") is not None)
    return s


def _stream(session, portrait_box: dict, minutes: float, portrait: np.ndarray) -> dict:  # noqa: ANN001
    from engine_core.data.synth.sentences import NUM_SENTENCES, sentence_text
    from engine_core.eval.stability import StreamMonitor

    mon = StreamMonitor(portrait, portrait_box["face_box"], portrait_box["mouth_box"])
    target = int(minutes * 60 * 25)
    done, k = 0, 0
    rng = np.random.default_rng(0)
    while done < target:
        if session.state == "idle" and rng.random() < 0.8:
            session.speak(sentence_text(10 * int(rng.integers(NUM_SENTENCES // 10))))
            k += 1
        ch = session.next_chunk()
        mon.feed(ch.frames, ch.audio, ch.motion)
        done += ch.num_frames
    rep = mon.report()
    rep["utterances"] = k
    return rep


def run(args: argparse.Namespace) -> int:
    """Score the clips and write the JSON; returns the exit code."""
    from engine_core.data.synth.corpus import read_manifest
    from engine_core.data.synth.render import load_clip

    if args.portraits:
        from engine_core.eval.portraits import run_portraits

        doc = run_portraits(args.model, args.portraits, args.sentences, args.size, args.out, args.frames_png,
                            not args.no_id_sim, device=args.device)
        print(json.dumps(_clean(doc), indent=1))
        return 0
    if args.data is None:
        print("error: give --data (a corpus) or --portraits", file=sys.stderr)
        return 2
    try:
        man = read_manifest(args.data)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    entries = [c for c in man["clips"] if c["split"] == args.split][: args.clips]
    if not entries:
        print(f"error: no clips of split {args.split!r} in {args.data}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    result: dict = {"data": str(args.data), "split": args.split, "clips": len(entries)}
    if args.truth_check:
        rows_self, rows_deg, real, deg = [], [], [], []
        for e in entries:
            truth = _truth_for(e, load_clip(args.data / e["dir"]))
            d = degrade(truth.frames, e["seed"])
            rows_self.append({"id": e["id"], **score_clip(truth.frames, truth.audio, truth, not args.no_id_sim)})
            rows_deg.append({"id": e["id"], **score_clip(d, truth.audio, truth, not args.no_id_sim)})
            real.append(truth.frames)
            deg.append(d)
        result.update(mode="truth_check", truth_vs_truth=_summary(rows_self, real, real),
                      truth_vs_degraded=_summary(rows_deg, real, deg), per_clip={"self": rows_self, "degraded": rows_deg})
    else:
        try:
            from engine_core.engine import Engine
        except ImportError as e:
            print(f"error: the engine is not available: {e}", file=sys.stderr)
            return 2
        engine = Engine.load(model=args.model, device=args.device)
        voice, own_voice = None, getattr(engine.thinker, "voice", None)
        if own_voice is not None:                     # the cascade Thinker: speak exactly as the truth does
            from engine_core.eval.voice import CorpusVoice

            voice = engine.thinker.voice = CorpusVoice()
        rows, real, gen = [], [], []
        for e in entries:
            meta_clip = load_clip(args.data / e["dir"])
            session = engine.open_session(portrait=clip_portrait(meta_clip))
            max_chunks = 20 + 4 * len(meta_clip.frames) // max(1, session.chunk_frames)
            if voice is not None:
                voice.start(e["seed"])
            gf, ga = generate_utterance(session, e["text"], max_chunks)
            session.close()
            truth = _truth_for(e, meta_clip, voice.speech() if voice is not None else None)
            row = {"id": e["id"], "text": e["text"]}
            if voice is not None:                     # frame-aligned: cut the last chunk's padding
                n = min(len(gf), len(truth.frames))
                gf, ga = gf[:n], ga[: n * SAMPLES_PER_FRAME]
                row["audio_truth_corr"] = pearson(ga, truth.audio[: len(ga)])    # 1: the very same speech
            rows.append({**row, **score_clip(gf, ga, truth, not args.no_id_sim)})
            real.append(truth.frames)
            gen.append(gf)
        result.update(mode="model", model=args.model, speech=voice.name if voice is not None else "engine",
                      summary=_summary(rows, real, gen), per_clip=rows)
        if args.stream_minutes > 0:                   # the stream needs no truth: the engine's own voice
            if own_voice is not None:
                engine.thinker.voice = own_voice
            meta_clip = load_clip(args.data / entries[0]["dir"])
            session = engine.open_session(portrait=clip_portrait(meta_clip))
            result["stream"] = _stream(session, meta_clip.meta, args.stream_minutes, meta_clip.portrait)
            session.close()
    result["seconds"] = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = _clean(result)
    args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps(result.get("summary") or {k: result[k] for k in ("truth_vs_truth", "truth_vs_degraded")
                                                  if k in result}, indent=1))
    return 0
