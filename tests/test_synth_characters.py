"""Identity space: determinism, diversity, round trip, and the OpenCV frontal-face cascade finds the faces."""

from __future__ import annotations

import cv2
import numpy as np

from engine_core.data.synth.characters import IdentityParams, identity_split, sample_identity
from engine_core.data.synth.identities import identity_params
from engine_core.data.synth.draw import FaceState, draw_frame, face_box, mouth_box
from engine_core.data.synth.gallery import gallery_characters, render_portrait, write_gallery


def _detect(img: np.ndarray) -> bool:
    casc = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return len(casc.detectMultiScale(gray, 1.1, 5, minSize=(40, 40))) > 0


def test_cascade_detects_at_least_90_percent_of_50_random_identities():
    ids = np.random.default_rng(123).choice(100_000, 50, replace=False)
    hits = sum(_detect(draw_frame(identity_params(int(i)), FaceState())) for i in ids)
    assert hits >= 45, hits


def test_raw_draws_mostly_detected_before_filtering():
    # the drawing itself (not only the rejection filter) must look like a face to the cascade
    hits = sum(_detect(draw_frame(sample_identity(i, 0), FaceState())) for i in range(1, 61))
    assert hits >= 45, hits


def test_identity_is_deterministic_and_round_trips():
    a, b = identity_params(4242), identity_params(4242)
    assert a == b
    assert IdentityParams.from_dict(a.to_dict()) == a
    assert np.array_equal(draw_frame(a, FaceState()), draw_frame(b, FaceState()))


def test_identities_are_distinct():
    imgs = [draw_frame(identity_params(i), FaceState()) for i in range(1, 41)]
    keys = {img.tobytes() for img in imgs}
    assert len(keys) == 40
    # and clearly different, not one-pixel variations
    diffs = [np.abs(imgs[i].astype(int) - imgs[i + 1].astype(int)).mean() for i in range(39)]
    assert min(diffs) > 3.0


def test_frame_shape_boxes_and_head_size():
    p = identity_params(77)
    img = draw_frame(p, FaceState(mouth_open=1.0, angle=4, dx=3))
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    x0, y0, x1, y1 = face_box(p)
    assert 0.45 * 256 <= y1 - y0 <= 0.65 * 256
    mx0, my0, mx1, my1 = mouth_box(p)
    assert x0 < mx0 < mx1 < x1 and y0 < my0 < my1 <= y1 + 2


def test_mouth_and_blink_change_pixels_in_their_regions():
    p = identity_params(31)
    closed, opened = draw_frame(p, FaceState()), draw_frame(p, FaceState(mouth_open=1.0))
    x0, y0, x1, y1 = mouth_box(p)
    changed = np.argwhere(np.any(closed != opened, axis=-1))
    assert len(changed) > 100
    assert changed[:, 0].min() >= y0 and changed[:, 0].max() < y1
    blink = draw_frame(p, FaceState(blink=1.0))
    diff_rows = np.argwhere(np.any(blink != closed, axis=-1))[:, 0]
    assert diff_rows.max() < y0  # eyes are above the mouth


def test_split_by_identity():
    assert identity_split(30) == "heldout" and identity_split(31) == "train"


def test_gallery(tmp_path):
    chars = gallery_characters()
    assert len(chars) == 12 and len({c.id for c in chars}) == 12
    assert all(c.params.identity_id % 10 != 0 for c in chars)
    img = render_portrait(chars[0])
    assert img.shape == (256, 256, 3) and _detect(img)
    paths = write_gallery(tmp_path)
    assert len(paths) == 12 and (tmp_path / "gallery.json").is_file()
    back = cv2.cvtColor(cv2.imread(str(paths[0])), cv2.COLOR_BGR2RGB)
    assert np.array_equal(back, img)
