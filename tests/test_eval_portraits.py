"""The portrait metrics of `xstreamer eval --portraits` on frames made here from known motion: a faithful render
scores as such (sharpness ~1, a high eye-band PSNR while the mouth moves, the jaw open on open vowels and shut on
p/b/m), and a blurred copy or a mouth that opens on the wrong phonemes does not."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from engine_core.eval.portraits import eye_band, measure, phoneme_frames, strip
from engine_core.motion.channels import INDEX, neutral
from engine_core.motion.render import PortraitRenderer
from sdk.portrait import load_portrait

HOPPER = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
# 2 s of speech: "ma" (open), a pause, "pa" (p then open), "bo"
PHONEMES = [("m", 0.10, 0.20), ("a", 0.20, 0.45), (" ", 0.45, 0.80), ("p", 0.80, 0.90), ("a", 0.90, 1.20),
            ("b", 1.30, 1.40), ("o", 1.40, 1.70)]


@pytest.fixture(scope="module")
def setup():
    p = load_portrait(HOPPER)
    r = PortraitRenderer(p.image, p.landmarks)
    motion = neutral(50)
    for idx in phoneme_frames(PHONEMES, 50, ("AA", "O")):
        motion[idx, INDEX["jawOpen"]] = 0.7
    motion[:, INDEX["headYaw"]] = np.linspace(-3, 3, 50)              # the head sways meanwhile
    motion[30:33, INDEX["eyeBlinkLeft"]] = motion[30:33, INDEX["eyeBlinkRight"]] = 1.0
    frames = np.stack([r.render(m) for m in motion])
    return p, r, motion, frames


def test_a_faithful_render_scores_as_one(setup):
    p, r, motion, frames = setup
    m = measure(p, frames, motion, PHONEMES, r, with_id_sim=False)
    assert 0.85 < m["sharpness"] < 1.3
    assert m["eye_band_psnr"] > 40 and m["eye_band_psnr_posed"] < m["eye_band_psnr"]   # the sway moves the band
    assert m["jaw_open_vowels"] > 0.6 and m["jaw_pbm"] < 0.05 and m["pbm_shut_share"] == 1.0
    assert m["lips_open_vowels"] > 0.15 and m["lips_pbm"] < 0.01
    assert m["open_vowels"] == 3 and m["pbm"] == 3
    rows, cols = eye_band(p.landmarks, p.size)
    assert rows.start < p.landmarks[36:48, 1].min() < p.landmarks[36:48, 1].max() < rows.stop


def test_a_blurred_copy_and_a_mouth_on_the_wrong_phonemes_score_worse(setup):
    p, r, motion, frames = setup
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 1.5) for f in frames])
    assert measure(p, blurred, motion, PHONEMES, r, with_id_sim=False)["sharpness"] < 0.5
    wrong = motion.copy()
    wrong[:, INDEX["jawOpen"]] = 0.0
    for idx in phoneme_frames(PHONEMES, 50, ("PBM",)):
        wrong[idx, INDEX["jawOpen"]] = 0.7
    m = measure(p, frames, wrong, PHONEMES, r, with_id_sim=False)
    assert m["jaw_pbm"] > m["jaw_open_vowels"] and m["lips_pbm"] > m["lips_open_vowels"] and m["pbm_shut_share"] == 0.0


def test_the_strip_shows_the_portrait_then_chosen_frames(setup):
    p, r, motion, frames = setup
    s = strip(p, frames, motion, PHONEMES, height=96)
    assert s.shape == (96, 6 * 96, 3)
    assert np.abs(s[:, :96].astype(int) - cv2.resize(p.image, (96, 96), interpolation=cv2.INTER_AREA)).max() == 0
