"""Stream stability: drift rule, frozen and blank frames, on a drawn stream (no engine, no Piper)."""

from __future__ import annotations

import cv2
import numpy as np

from engine_core.data.synth import identity_params
from engine_core.data.synth.draw import FaceState, draw_frame, face_box, mouth_box
from engine_core.eval.stability import StreamMonitor, blank_frames, frozen_frames, stability_report

P = identity_params(61)
N = 75  # one "minute" = 3 s in these tests


def _stream(minutes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    env = np.clip(np.sin(np.arange(minutes * N) / 3.0) + rng.normal(0, 0.1, minutes * N), 0, 1)
    frames = np.stack([draw_frame(P, FaceState(mouth_open=float(o), dx=float(np.sin(t / 9)), blink=0.0))
                       for t, o in enumerate(env)])
    audio = (rng.normal(0, 1, minutes * N * 882) * np.repeat(0.003 + 0.3 * env, 882) * 8000).astype(np.int16)
    return frames, audio


def test_clean_stream_is_stable():
    frames, audio = _stream(3)
    rep = stability_report(frames, audio, draw_frame(P, FaceState()), face_box(P), mouth_box(P), minute_s=N / 25)
    assert len(rep["minutes"]) == 3
    assert rep["drift_ok"] and rep["stable"], rep["drift"]
    assert rep["frozen_frames"] == 0 and rep["blank_frames"] == 0
    assert rep["minutes"][0]["audio_mouth_corr"] > 0.7


def test_degraded_last_minute_fails_drift_and_frozen_blank_are_counted():
    frames, audio = _stream(3)
    frames[2 * N:] = np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in frames[2 * N:]])
    mon = StreamMonitor(draw_frame(P, FaceState()), face_box(P), mouth_box(P), minute_s=N / 25)
    for k in range(0, len(frames), 10):  # chunked feeding, like the engine's chunks
        mon.feed(frames[k:k + 10], audio[k * 882:(k + 10) * 882])
    rep = mon.report()
    assert not rep["drift_ok"] and rep["drift"]["cpbd"]["ok"] is False and not rep["stable"]


def test_frozen_only_counts_during_speech_and_blank_frames():
    frames, audio = _stream(1)
    frames[2:8] = frames[2]          # 6 identical frames
    loud = np.abs(audio[2 * 882:8 * 882]).max()
    assert loud > 300
    assert frozen_frames(frames, audio) == 6
    quiet = audio.copy()
    quiet[2 * 882:8 * 882] = 0        # the same freeze during silence is an idle hold, not a fault
    assert frozen_frames(frames, quiet) == 0
    frames[30] = 0
    frames[31] = 255
    assert blank_frames(frames) == 2


def test_a_head_that_drifts_away_is_caught_and_one_that_sways_in_place_is_not():
    """A motion-space stream's head pose (fed with the frames) is judged per minute: swaying about the same place
    passes, a head that has turned 5 degrees and slid by a tenth of the face by the last minute fails."""
    from engine_core.motion.channels import INDEX, NUM_CHANNELS

    frames, audio = _stream(3)
    t = np.arange(len(frames))
    sway = np.zeros((len(frames), NUM_CHANNELS), np.float32)
    sway[:, INDEX["headYaw"]] = 3 * np.sin(t / 7.0)
    drift = sway.copy()
    drift[:, INDEX["headYaw"]] += np.linspace(0, 5, len(frames))
    drift[:, INDEX["headX"]] += np.linspace(0, 0.1, len(frames))
    reports = {}
    for name, motion in (("sway", sway), ("drift", drift)):
        mon = StreamMonitor(frames[0], face_box(P), mouth_box(P), minute_s=N / 25)
        for k in range(0, len(frames), 25):
            mon.feed(frames[k:k + 25], audio[k * 882:(k + 25) * 882], motion[k:k + 25])
        reports[name] = mon.report()
    assert reports["sway"]["drift"]["head_pose_mean"]["ok"] is True
    assert reports["drift"]["drift"]["head_pose_mean"]["ok"] is False and not reports["drift"]["stable"]
    assert len(reports["sway"]["minutes"][0]["head_pose_mean"]) == 5
