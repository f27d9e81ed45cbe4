"""The portrait renderer on a real photo and a built-in character: the rest pose is the portrait pixel for pixel,
each channel moves what it names (an open jaw opens a dark mouth, p/b/m-style pressing does not, a blink covers the
eyes, yaw turns the nose, smiles lift the corners) and leaves the rest of the face alone, at 256 and 512, with alpha."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from engine_core.eval.mouth import luminance
from engine_core.motion.channels import INDEX, NUM_CHANNELS, from_latent, neutral, to_latent
from engine_core.motion.render import PortraitRenderer
from sdk.portrait import load_portrait
from sdk.portrait.characters import character

HOPPER = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def frame(**channels: float) -> np.ndarray:
    f = neutral()[0]
    for name, v in channels.items():
        f[INDEX[name]] = v
    return f


@pytest.fixture(scope="module", params=["photo", "drawing"])
def portrait(request):
    return load_portrait(HOPPER) if request.param == "photo" else character("farid").portrait()


@pytest.fixture(scope="module")
def renderer(portrait):
    return PortraitRenderer(portrait.image, portrait.landmarks)


def _box(lm: np.ndarray, idx, margin: float) -> tuple[int, int, int, int]:
    pts = lm[list(idx)]
    x0, y0 = np.floor(pts.min(0) - margin).astype(int)
    x1, y1 = np.ceil(pts.max(0) + margin).astype(int)
    return x0, y0, x1, y1


def _dark_share(img: np.ndarray, box) -> float:
    x0, y0, x1, y1 = box
    return float((luminance(img[y0:y1, x0:x1, :3].astype(np.float32)) < 60).mean())


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def test_the_rest_pose_is_the_portrait_itself(portrait, renderer):
    assert np.array_equal(renderer.render(neutral()[0]), portrait.image)


def test_an_open_jaw_opens_the_mouth_and_pressed_lips_stay_shut(portrait, renderer):
    """A drawing's mouth opens dark (as drawings draw it: what the lip-sync metric reads); a photo's shows a drawn
    inside (cavity, teeth) that grows with the jaw."""
    lm = portrait.landmarks
    iod = np.hypot(*(lm[36:42].mean(0) - lm[42:48].mean(0)))
    x0, y0, x1, y1 = _box(lm, range(48, 68), 0.25 * iod)
    mouth = (x0, y0, x1, y1 + int(0.4 * iod))                             # room below for the dropped jaw
    rest = portrait.image[mouth[1]:mouth[3], mouth[0]:mouth[2]].astype(np.float32)

    def change(img: np.ndarray) -> float:
        return float(np.abs(img[mouth[1]:mouth[3], mouth[0]:mouth[2]].astype(np.float32) - rest).mean())

    jaws = [renderer.render(frame(jawOpen=j)) for j in (0.0, 0.3, 0.6, 0.9)]
    changes = [change(img) for img in jaws]
    assert changes[0] == 0.0 and changes[1] < changes[2] < changes[3], changes
    pressed = change(renderer.render(frame(mouthPressLeft=1, mouthPressRight=1, mouthRollLower=0.5)))
    assert pressed < changes[1]
    if renderer.flat:
        shares = [_dark_share(img, mouth) for img in jaws]
        assert shares[0] < shares[1] < shares[2] < shares[3] and shares[3] > shares[0] + 0.05, shares


def test_the_eyes_and_forehead_stay_put_while_the_mouth_moves(portrait, renderer):
    lm = portrait.landmarks
    iod = np.hypot(*(lm[36:42].mean(0) - lm[42:48].mean(0)))
    y0 = int(max(0, lm[17:27, 1].min() - 0.6 * iod))
    y1 = int(lm[36:48, 1].max() + 0.1 * iod)
    band = slice(y0, y1)
    for f in (frame(jawOpen=0.8), frame(jawOpen=0.4, mouthFunnel=0.7), frame(mouthStretchLeft=1, jawOpen=0.3)):
        assert _psnr(renderer.render(f)[band], portrait.image[band]) > 40


def test_a_blink_covers_the_eyes_and_leaves_the_brows(portrait, renderer):
    lm = portrait.landmarks
    img = renderer.render(frame(eyeBlinkLeft=1.0, eyeBlinkRight=1.0)).astype(np.float32)
    rest = portrait.image.astype(np.float32)
    for eye, brow in ((range(36, 42), range(17, 22)), (range(42, 48), range(22, 27))):
        x0, y0, x1, y1 = _box(lm, eye, 0)
        changed = np.abs(img[y0:y1, x0:x1] - rest[y0:y1, x0:x1]).mean()
        bx0, by0, bx1, _ = _box(lm, brow, 0)
        iod = np.hypot(*(lm[36:42].mean(0) - lm[42:48].mean(0)))
        above = slice(max(0, by0 - int(0.2 * iod)), by0 + 1)        # the brow's upper edge and the skin above
        brow_changed = np.abs(img[above, bx0:bx1] - rest[above, bx0:bx1]).mean()
        assert changed > 12 and brow_changed < changed / 3, (changed, brow_changed)
    half = renderer.render(frame(eyeBlinkLeft=0.5))
    assert not np.array_equal(half, portrait.image)


def test_yaw_turns_the_nose_and_a_smile_lifts_the_corners(portrait, renderer):
    lm = portrait.landmarks
    s = portrait.size
    left = renderer.rig.vertices(frame(headYaw=12.0))
    right = renderer.rig.vertices(frame(headYaw=-12.0))
    assert left[30, 0] < lm[30, 0] - 0.01 * s < lm[30, 0] + 0.01 * s < right[30, 0]   # yaw > 0: to the viewer's left
    assert abs(left[0, 0] - lm[0, 0]) < abs(left[30, 0] - lm[30, 0])                  # the nose moves more than the ear
    smile = renderer.rig.vertices(frame(mouthSmileLeft=1.0, mouthSmileRight=1.0))
    assert smile[48, 1] < lm[48, 1] and smile[54, 1] < lm[54, 1]                       # both corners up
    assert smile[54, 0] - smile[48, 0] > lm[54, 0] - lm[48, 0]                         # and apart
    one = renderer.rig.vertices(frame(mouthSmileLeft=1.0))
    assert one[54, 1] < lm[54, 1] - 0.5 and abs(one[48, 1] - lm[48, 1]) < 0.5          # Left = the subject's left
    assert not np.array_equal(renderer.render(frame(headYaw=12.0)), portrait.image)


def test_512_frames_keep_the_portraits_detail():
    p = load_portrait(HOPPER, size=512)
    r = PortraitRenderer(p.image, p.landmarks)
    img = r.render(frame(jawOpen=0.5, headYaw=4.0, headPitch=-3.0, browInnerUp=0.5))
    assert img.shape == (512, 512, 3)

    def sharpness(a: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())

    assert sharpness(img) > 0.9 * sharpness(p.image)


def test_alpha_moves_with_the_picture():
    ch = character("ada")
    rgb = cv2.cvtColor(cv2.imread(str(ch.file)), cv2.COLOR_BGR2RGB)
    yy, xx = np.mgrid[0:256, 0:256]
    alpha = np.where(((xx - 128) / 100) ** 2 + ((yy - 140) / 125) ** 2 < 1, 255, 0).astype(np.uint8)
    p = load_portrait(np.dstack([rgb, alpha]), face_points=ch.face_points)
    r = PortraitRenderer(p.image, p.landmarks)
    img = r.render(frame(jawOpen=0.7, headRoll=6.0))
    assert img.shape == (256, 256, 4)
    assert img[2, 2, 3] == 0 and img[140, 128, 3] == 255         # background stays transparent, the face opaque
    assert not np.array_equal(img[..., 3], p.image[..., 3])        # the head's outline turned with it


def test_latent_scaling_round_trips_and_clamps():
    rng = np.random.default_rng(0)
    f = rng.uniform(0, 1, (7, NUM_CHANNELS)).astype(np.float32)
    f[:, INDEX["headYaw"]:] = rng.uniform(-10, 10, (7, 5))
    f[:, INDEX["headX"]:] *= 0.01
    assert np.allclose(from_latent(to_latent(f)), f, atol=1e-5)
    assert np.abs(to_latent(f)).max() < 1.5
    wild = from_latent(np.full((1, NUM_CHANNELS), 50.0, np.float32))
    assert wild[0, INDEX["jawOpen"]] == 1.0 and wild[0, INDEX["headYaw"]] <= 25.0
