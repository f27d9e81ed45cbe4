"""Long-stream stability: per-minute metrics, the 10% drift rule, frozen and blank frames.

A stream is frames [T,256,256,3] + int16 audio [T*882] + the portrait (and its face/mouth boxes when known).
Per minute m (1-based) we compute: cpbd (higher better), identity_ssim (SSIM of the upper face, above the
mouth box, against the portrait; higher better), audio_mouth_corr (higher better, NaN in a silent minute),
mean_abs_frame_diff (motion, reported but not judged). The drift rule: no judged metric at the last minute is
worse than at minute 1 by more than 10% of its minute-1 value; a metric that is NaN (no edges, a silent
minute) is listed as unjudged and the stream is then not declared stable. Frozen frames: runs of >= `frozen_run` identical
consecutive frames while the audio of those frames is voiced (RMS above -40 dBFS). Blank frames: frames whose
luminance std is below 2 (a uniform image).
"""

from __future__ import annotations

import numpy as np

from engine_core.eval.identity import ssim
from engine_core.eval.lipsync import audio_mouth_corr, frame_loudness_db
from engine_core.eval.mouth import luminance, mouth_opening
from engine_core.eval.sharpness import cpbd_frames
from sdk.protocol.constants import MOTION_BLENDSHAPES, SAMPLES_PER_FRAME

FPS = 25
JUDGED = {"cpbd": +1, "identity_ssim": +1, "audio_mouth_corr": +1}


def frozen_frames(frames: np.ndarray, audio: np.ndarray, frozen_run: int = 3, voiced_db: float = -40.0) -> int:
    """Number of frames in runs of >= `frozen_run` identical consecutive frames during voiced audio."""
    f = np.asarray(frames)
    if len(f) < 2:
        return 0
    same = np.all(f[1:].reshape(len(f) - 1, -1) == f[:-1].reshape(len(f) - 1, -1), axis=1)
    voiced = frame_loudness_db(audio, len(f)) > voiced_db
    count, run = 0, 1
    for t in range(1, len(f)):
        if same[t - 1] and voiced[t]:
            run += 1
        else:
            count += run if run >= frozen_run else 0
            run = 1
    return count + (run if run >= frozen_run else 0)


def blank_frames(frames: np.ndarray, min_std: float = 2.0) -> int:
    """Number of frames whose luminance std is below `min_std` (uniform / black / white frames)."""
    f = np.asarray(frames)
    return int(sum(float(luminance(x.astype(np.float32)).std()) < min_std for x in f))


def minute_metrics(frames: np.ndarray, audio: np.ndarray, portrait: np.ndarray, face_box, mouth_box,  # noqa: ANN001
                   every: int = 25) -> dict[str, float]:
    """The per-minute metrics of one stretch of stream (frames [T,...], audio [T*882])."""
    f = np.asarray(frames)
    x0, y0, x1, _ = (int(v) for v in face_box)
    top = int(mouth_box[1])
    ref = portrait[y0:top, x0:x1]
    ids = [ssim(fr[y0:top, x0:x1], ref) for fr in f[::every]]
    mo = mouth_opening(f, mouth_box)
    diff = float(np.abs(np.diff(f[::5].astype(np.int16), axis=0)).mean()) if len(f) > 5 else 0.0
    return {"cpbd": cpbd_frames(f, every=every), "identity_ssim": float(np.mean(ids)),
            "audio_mouth_corr": audio_mouth_corr(audio, mo, max_lag=2), "mean_abs_frame_diff": diff}


HEAD = slice(len(MOTION_BLENDSHAPES), len(MOTION_BLENDSHAPES) + 5)     # headYaw, headPitch, headRoll, headX, headY
HEAD_DRIFT = (2.0, 2.0, 2.0, 0.03, 0.03)      # degrees / face widths a minute's mean head pose may move from minute 1


class StreamMonitor:
    """Feed a long stream chunk by chunk; keeps one minute in memory at a time.

    frozen/blank counts run over the whole stream (a frozen run may span chunk and minute borders).
    """

    def __init__(self, portrait: np.ndarray, face_box, mouth_box, minute_s: float = 60.0,  # noqa: ANN001
                 frozen_run: int = 3) -> None:
        self.portrait, self.face_box, self.mouth_box = portrait, face_box, mouth_box
        self.per = int(round(minute_s * FPS))
        self.frozen_run = frozen_run
        self.minutes: list[dict] = []
        self._frames: list[np.ndarray] = []
        self._audio: list[np.ndarray] = []
        self._n = 0
        self.frozen = 0
        self.blank = 0
        self._prev: np.ndarray | None = None
        self._run = 1
        self._motion: list[np.ndarray] = []       # a motion-space model's head pose, per frame, this minute

    def feed(self, frames: np.ndarray, audio: np.ndarray, motion: np.ndarray | None = None) -> None:
        """Append frames [t,H,W,3] and their audio [t*882] (and, for a motion-space model, their motion [t, K]:
        the head pose's mean per minute is then reported and judged for drift)."""
        f = np.asarray(frames)[..., :3]
        if motion is not None:
            self._motion.append(np.asarray(motion)[:, HEAD])
        voiced = frame_loudness_db(audio, len(f)) > -40.0
        for k in range(len(f)):
            if self._prev is not None and voiced[k] and np.array_equal(f[k], self._prev):
                self._run += 1
            else:
                self.frozen += self._run if self._run >= self.frozen_run else 0
                self._run = 1
            self._prev = f[k]
        self.blank += blank_frames(f)
        self._frames.append(f)
        self._audio.append(np.asarray(audio))
        self._n += len(f)
        while self._n >= self.per:
            allf, alla = np.concatenate(self._frames), np.concatenate(self._audio)
            self._close(allf[: self.per], alla[: self.per * SAMPLES_PER_FRAME])
            self._frames, self._audio = [allf[self.per:]], [alla[self.per * SAMPLES_PER_FRAME:]]
            self._n -= self.per

    def _close(self, f: np.ndarray, a: np.ndarray) -> None:
        m = minute_metrics(f, a, self.portrait, self.face_box, self.mouth_box)
        if self._motion:
            head = np.concatenate(self._motion)
            take, rest = head[: len(f)], head[len(f):]
            self._motion = [rest] if len(rest) else []
            m["head_pose_mean"] = [round(float(v), 3) for v in take.mean(0)]     # yaw, pitch, roll, x, y
        self.minutes.append({"minute": len(self.minutes) + 1, **m})

    def report(self, tolerance: float = 0.10) -> dict:
        """Per-minute metrics, drift verdict (last full minute vs minute 1), frozen and blank frame counts."""
        if not self.minutes and self._n:
            self._close(np.concatenate(self._frames), np.concatenate(self._audio))
            self._frames, self._audio, self._n = [], [], 0
        if not self.minutes:
            raise ValueError("no frames were fed")
        drift, ok = {}, True
        first, last = self.minutes[0], self.minutes[-1]
        for k, sign in JUDGED.items():
            a, b = first[k], last[k]
            if np.isnan(a) or np.isnan(b):
                drift[k] = {"first": a, "last": b, "worse_by": None, "ok": None}
                continue
            worse = sign * (a - b) / max(abs(a), 1e-9)
            good = bool(worse <= tolerance)
            ok &= good
            drift[k] = {"first": a, "last": b, "worse_by": float(worse), "ok": good}
        frozen = self.frozen + (self._run if self._run >= self.frozen_run else 0)
        unjudged = [k for k, d in drift.items() if d["ok"] is None]  # NaN metric: cannot vouch for it
        if "head_pose_mean" in first and "head_pose_mean" in last:     # the head stays where it was: no drift
            moved = np.abs(np.subtract(last["head_pose_mean"], first["head_pose_mean"]))
            good = bool((moved <= HEAD_DRIFT).all())
            drift["head_pose_mean"] = {"first": first["head_pose_mean"], "last": last["head_pose_mean"],
                                       "limit": list(HEAD_DRIFT), "ok": good}
            ok &= good
        return {"minutes": self.minutes, "drift": drift, "drift_ok": bool(ok), "unjudged": unjudged,
                "frozen_frames": int(frozen), "blank_frames": int(self.blank),
                "stable": bool(ok and not unjudged and frozen == 0 and self.blank == 0), "tolerance": tolerance}


def stability_report(frames: np.ndarray, audio: np.ndarray, portrait: np.ndarray, face_box, mouth_box,  # noqa: ANN001
                     minute_s: float = 60.0, tolerance: float = 0.10) -> dict:
    """`StreamMonitor` over a whole in-memory stream."""
    mon = StreamMonitor(portrait, face_box, mouth_box, minute_s)
    mon.feed(frames, audio)
    return mon.report(tolerance)
