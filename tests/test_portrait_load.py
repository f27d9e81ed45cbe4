"""sdk.portrait on real images: public-domain photos, the built-in characters, a transparent PNG, five user points,
and everything that must be refused (no face, several, too small, not an image, too many pixels) with a typed
`PortraitError` that says why."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from sdk.portrait import PortraitError, load_portrait
from sdk.portrait.characters import character, characters
from sdk.portrait.template import EYE_A, EYE_B, MOUTH_A, MOUTH_B, NOSE_TIP, five_points
from sdk.protocol.messages import ErrorCode

HOPPER = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


@pytest.fixture(scope="module")
def hopper_rgb() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(HOPPER)), cv2.COLOR_BGR2RGB)


def _png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _plausible(lm: np.ndarray, size: int) -> None:
    """68 landmarks that look like a face inside the frame: eyes above the nose tip above the mouth."""
    assert lm.shape == (68, 2) and lm.dtype == np.float32
    assert (lm >= -2).all() and (lm <= size + 2).all()
    eye_y = (lm[EYE_A].mean(0)[1] + lm[EYE_B].mean(0)[1]) / 2
    assert eye_y < lm[NOSE_TIP, 1] < lm[[MOUTH_A, MOUTH_B], 1].mean()
    assert lm[EYE_A].mean(0)[0] < lm[NOSE_TIP, 0] < lm[EYE_B].mean(0)[0]


def test_a_photo_from_bytes_path_and_array_at_both_sizes(hopper_rgb: np.ndarray) -> None:
    p = load_portrait(HOPPER.read_bytes())
    assert p.image.shape == (256, 256, 3) and p.found_by == "detector" and not p.has_alpha
    assert p.source_size == (hopper_rgb.shape[1], hopper_rgb.shape[0])
    _plausible(p.landmarks, 256)
    x, y, w, h = p.face_box
    assert 120 < x + w / 2 < 400 and 150 < y + h / 2 < 450 and w >= 150      # Grace Hopper's face
    cx, cy, side, _ = p.crop_box
    assert cx <= x and cy <= y and cx + side >= x + w and cy + side >= y + h    # the frame holds the whole face
    assert np.array_equal(load_portrait(HOPPER).image, p.image)
    assert np.array_equal(load_portrait(hopper_rgb).image, p.image)
    big = load_portrait(HOPPER, size=512)
    assert big.image.shape == (512, 512, 3) and big.crop_box == p.crop_box
    assert np.allclose(big.landmarks, 2 * p.landmarks, atol=0.01)
    assert p.warnings == []                                  # no message sends a photo elsewhere any more


def test_built_in_characters_use_their_own_landmarks_and_frame() -> None:
    from engine_core.data.synth.draw import landmarks68
    from engine_core.data.synth.identities import identity_params

    chars = characters()
    assert len(chars) == 12 and len({c.id for c in chars}) == 12
    for ch in chars:
        p = ch.portrait()
        assert p.crop_box == (0, 0, 256, 256) and p.found_by == "given", ch.id
        _plausible(p.landmarks, 256)
        # the gallery's landmarks are the drawing's own (its generator's geometry), not a detector's guess
        assert np.abs(p.landmarks - landmarks68(identity_params(ch.identity))).max() < 0.01, ch.id
        assert np.allclose(five_points(p.landmarks), ch.face_points)
    with pytest.raises(PortraitError, match="unknown built-in character"):
        character("nobody")


def test_transparency_is_kept_and_an_opaque_alpha_channel_dropped() -> None:
    img = cv2.cvtColor(cv2.imread(str(character("ada").file)), cv2.COLOR_BGR2RGB)
    yy, xx = np.mgrid[0:256, 0:256]
    alpha = np.where(((xx - 128) / 100) ** 2 + ((yy - 140) / 125) ** 2 < 1, 255, 0).astype(np.uint8)
    rgba = np.dstack([img, alpha])
    p = load_portrait(_png(rgba), face_points=character("ada").face_points)
    assert p.has_alpha and p.image.shape == (256, 256, 4)
    assert p.image[0, 0, 3] == 0 and p.image[128, 128, 3] == 255
    opaque = load_portrait(_png(np.dstack([img, np.full((256, 256), 255, np.uint8)])),
                           face_points=character("ada").face_points)
    assert not opaque.has_alpha and opaque.image.shape == (256, 256, 3)


def test_five_points_place_a_face_the_detector_cannot_find() -> None:
    # a picture in which neither dlib nor the cascades see a face (dlib takes even a few lines for one, so: noise)
    img = np.random.default_rng(1).integers(60, 200, (300, 300, 3), dtype=np.uint8)
    with pytest.raises(PortraitError, match="five points") as err:
        load_portrait(_png(img))
    assert err.value.code is ErrorCode.INVALID_PORTRAIT and err.value.reason == "no_face"
    points = [[118, 130], [182, 130], [150, 170], [128, 205], [172, 205]]
    p = load_portrait(_png(img), face_points=points)
    assert p.found_by == "face_points"
    _plausible(p.landmarks, 256)
    src = p.source_landmarks
    assert np.abs(five_points(src) - points).max() < 1e-3                              # exactly where pointed
    for bad, why in (([[0, 0]] * 4, "five"), ([[182, 130], [118, 130], [150, 170], [128, 205], [172, 205]], "right"),
                     ([[118, 130], [182, 130], [150, 250], [128, 205], [172, 205]], "order"),
                     ([[118, 130], [182, 130], [150, 170], [128, 205], [999, 205]], "inside")):
        with pytest.raises(PortraitError, match=why):
            load_portrait(_png(img), face_points=bad)


def test_two_faces_side_by_side_are_refused(hopper_rgb: np.ndarray) -> None:
    with pytest.raises(PortraitError, match="several faces") as err:
        load_portrait(_png(np.concatenate([hopper_rgb, hopper_rgb], axis=1)))
    assert err.value.reason == "several_faces"


def test_noise_has_no_face_and_a_tiny_face_is_too_small(hopper_rgb: np.ndarray) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    with pytest.raises(PortraitError, match="no face"):
        load_portrait(_png(noise))
    canvas = np.full((400, 400, 3), 200, np.uint8)
    canvas[150:244, 160:240] = cv2.resize(hopper_rgb, (80, 94), interpolation=cv2.INTER_AREA)  # face ~35 px wide
    with pytest.raises(PortraitError, match="too small|no face"):
        load_portrait(_png(canvas))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (a 'decompression bomb': the pixels are never there)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_too_many_pixels_are_refused_from_the_header_before_decoding() -> None:
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(PortraitError, match="too many pixels"):
        load_portrait(_png_header_only(20000, 20000))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 2**20               # decoding would have allocated 1.2 GB


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"this is not an image at all" * 10, "not a readable image"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not a readable image"),     # PNG magic, corrupt body
])
def test_garbage_and_empty_bytes(data: bytes, reason: str) -> None:
    with pytest.raises(PortraitError, match=reason):
        load_portrait(data)


def test_missing_files_bad_arrays_and_bad_sizes(tmp_path: Path) -> None:
    with pytest.raises(PortraitError, match="not found"):
        load_portrait(tmp_path / "nope.png")
    with pytest.raises(PortraitError, match="uint8"):
        load_portrait(np.zeros((256, 256, 3), np.float32))
    with pytest.raises(PortraitError, match="shape"):
        load_portrait(np.zeros((256, 256, 5), np.uint8))
    with pytest.raises(PortraitError, match="size 300"):
        load_portrait(HOPPER, size=300)


def test_the_corpus_cast_needs_haar_cascades_and_says_so(monkeypatch, hopper_rgb) -> None:
    """OpenCV 5 dropped the Haar cascades (seen on a lent GPU machine's image): picking the corpus's characters
    says so with BackendUnavailableError; portraits still load (dlib finds the face)."""
    import engine_core.data.synth.identities as identities
    from engine_core.errors import BackendUnavailableError

    identities._frontal_cascade.cache_clear()
    monkeypatch.delattr(cv2, "CascadeClassifier")
    try:
        with pytest.raises(BackendUnavailableError, match="Haar cascades"):
            identities.face_detected(hopper_rgb)
        assert load_portrait(hopper_rgb).found_by == "detector"
    finally:
        identities._frontal_cascade.cache_clear()
