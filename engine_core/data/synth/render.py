"""Render one ground-truth clip (frames + audio + meta) for a character, a text and a voice, and write it.

`render_clip` is the single renderer used by the corpus generator and by evaluation (ground truth for the
same portrait, text and voice). Everything is a deterministic function of its arguments.
"""

from __future__ import annotations

import io
import json
import math
import wave
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine_core.data.synth.characters import IdentityParams
from engine_core.data.synth.draw import FaceState, draw_frame, face_box, mouth_box
from engine_core.data.synth.speech import SAMPLE_RATE, Speech, VoiceParams, synthesize
from engine_core.data.synth.visemes import FPS, blink_track, head_pose_track, mouth_tracks
from sdk.protocol.constants import SAMPLES_PER_FRAME

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass
class Clip:
    """frames: uint8 [T,256,256,3] RGB; audio: int16 [T*882] mono 22,050 Hz; meta: JSON-ready dict."""

    frames: np.ndarray
    audio: np.ndarray
    meta: dict
    portrait: np.ndarray  # uint8 [256,256,3]: neutral closed mouth, eyes open, no sway


def _union(boxes: list[list[int]]) -> list[int]:
    b = np.array(boxes)
    return [int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max())]


def render_portrait(p: IdentityParams) -> np.ndarray:
    """The identity reference: neutral closed mouth, eyes open, centred. uint8 [256,256,3]."""
    return draw_frame(p, FaceState())


def render_clip(identity: IdentityParams, text: str, voice: VoiceParams, seed: int, *,
                lead_s: float | None = None, tail_s: float | None = None, min_seconds: float = 0.0,
                speech: Speech | None = None) -> Clip:
    """Render `identity` speaking `text` with `voice`. Silence of `lead_s` / `tail_s` (random from `seed` when
    None) surrounds the speech; the clip lasts at least `min_seconds`. Deterministic in all arguments."""
    if not text.strip():
        raise ValueError("text must not be empty")
    rng = np.random.default_rng([int(seed), 11])
    sp = speech if speech is not None else synthesize(text, voice, seed)
    lead = float(rng.uniform(0.3, 1.0)) if lead_s is None else float(lead_s)
    tail = float(rng.uniform(0.3, 1.0)) if tail_s is None else float(tail_s)
    lead_n = int(round(lead * SAMPLE_RATE))
    total = max(lead + len(sp.audio) / SAMPLE_RATE + tail, min_seconds)
    n_frames = max(1, int(math.ceil(total * FPS - 1e-9)))
    n_frames = max(n_frames, int(math.ceil((lead_n + len(sp.audio)) / SAMPLES_PER_FRAME)))
    audio_f = np.zeros(n_frames * SAMPLES_PER_FRAME, np.float32)
    audio_f[lead_n:lead_n + len(sp.audio)] = sp.audio
    audio = np.round(np.clip(audio_f, -1, 1) * 0.9 * 32767).astype(np.int16)
    off = lead_n / SAMPLE_RATE
    tr = mouth_tracks(sp.phonemes, n_frames, offset=off)
    blink = blink_track(n_frames, rng)
    pose = head_pose_track(n_frames, rng, tr["mouth_open"] > 0.05)
    frames = np.empty((n_frames, 256, 256, 3), np.uint8)
    fboxes, mboxes = [], []
    for t in range(n_frames):
        st = FaceState(mouth_open=float(tr["mouth_open"][t]), mouth_width=float(tr["mouth_width"][t]),
                       mouth_round=float(tr["mouth_round"][t]), blink=float(blink[t]),
                       dx=float(pose["dx"][t]), dy=float(pose["dy"][t]), angle=float(pose["angle"][t]))
        frames[t] = draw_frame(identity, st)
        fboxes.append(face_box(identity, st))
        mboxes.append(mouth_box(identity, st))

    def r4(a: np.ndarray) -> list[float]:
        return [round(float(v), 4) for v in a]

    meta = {
        "text": text,
        "fps": FPS,
        "sample_rate": SAMPLE_RATE,
        "frames": n_frames,
        "seed": int(seed),
        "speech_start_s": round(off, 4),
        "speech_end_s": round(off + len(sp.audio) / SAMPLE_RATE, 4),
        "words": [[w, round(s + off, 4), round(e + off, 4)] for w, s, e in sp.words],
        "phonemes": [[p, round(s + off, 4), round(e + off, 4)] for p, s, e in sp.phonemes],
        "mouth_open": r4(tr["mouth_open"]),
        "mouth_width": r4(tr["mouth_width"]),
        "mouth_round": r4(tr["mouth_round"]),
        "blink": r4(blink),
        "head_pose": {k: r4(v) for k, v in pose.items()},
        "identity": identity.to_dict(),
        "voice": voice.to_dict(),
        "face_box": _union(fboxes),
        "mouth_box": _union(mboxes),
        "mouth_boxes": mboxes,
    }
    return Clip(frames=frames, audio=audio, meta=meta, portrait=render_portrait(identity))


def save_npz(path: Path, frames: np.ndarray) -> None:
    """np.savez_compressed-compatible archive with key 'frames' and fixed zip timestamps (byte-reproducible)."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(frames), allow_pickle=False)
    info = zipfile.ZipInfo("frames.npy", date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr(info, buf.getvalue())


def write_wav(path: Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """PCM16 mono WAV via the stdlib `wave` module."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.asarray(audio, dtype="<i2").tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """(int16 mono samples, sample rate) of a PCM16 mono WAV."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: expected PCM16 mono")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy(), w.getframerate()


def write_png(path: Path, rgb: np.ndarray) -> None:
    """RGB uint8 image -> PNG."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"PNG encoding failed for {path}")
    Path(path).write_bytes(data.tobytes())


def write_mp4(path: Path, frames: np.ndarray, audio: np.ndarray) -> None:
    """H.264 + AAC mp4 through PyAV (for viewing; not byte-reproducible)."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        as_ = out.add_stream("aac", rate=SAMPLE_RATE)
        as_.layout = "mono"
        for f in frames:
            for pkt in vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        af = av.AudioFrame.from_ndarray(audio.reshape(1, -1), format="s16", layout="mono")
        af.sample_rate = SAMPLE_RATE
        for pkt in as_.encode(af):
            out.mux(pkt)
        for pkt in as_.encode():
            out.mux(pkt)


def write_clip(clip: Clip, clip_dir: Path, mp4: bool = False) -> None:
    """frames.npz, audio.wav, meta.json, portrait.png (and video.mp4) into `clip_dir`."""
    clip_dir = Path(clip_dir)
    clip_dir.mkdir(parents=True, exist_ok=True)
    save_npz(clip_dir / "frames.npz", clip.frames)
    write_wav(clip_dir / "audio.wav", clip.audio)
    (clip_dir / "meta.json").write_text(json.dumps(clip.meta, separators=(",", ":")), encoding="utf-8")
    write_png(clip_dir / "portrait.png", clip.portrait)
    if mp4:
        write_mp4(clip_dir / "video.mp4", clip.frames, clip.audio)


def load_clip(clip_dir: Path) -> Clip:
    """Read a clip directory written by `write_clip`."""
    clip_dir = Path(clip_dir)
    with np.load(clip_dir / "frames.npz") as z:
        frames = z["frames"]
    audio, sr = read_wav(clip_dir / "audio.wav")
    if sr != SAMPLE_RATE:
        raise ValueError(f"{clip_dir}: sample rate {sr}, expected {SAMPLE_RATE}")
    meta = json.loads((clip_dir / "meta.json").read_text(encoding="utf-8"))
    portrait = cv2.cvtColor(cv2.imread(str(clip_dir / "portrait.png"), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return Clip(frames=frames, audio=audio, meta=meta, portrait=portrait)
