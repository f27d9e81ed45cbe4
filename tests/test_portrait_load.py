"""load_portrait on real images: a photo with one face, two faces, noise, a tiny face, garbage and empty
input, and procedurally drawn characters from the corpus generator (which must pass the face check)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from engine_core.errors import PortraitError
from engine_core.portrait import PHOTO_WARNING, flatness, load_portrait, stylisation_warning

HOPPER = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


@pytest.fixture(scope="module")
def hopper_rgb() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(HOPPER)), cv2.COLOR_BGR2RGB)


def _png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def test_photo_with_one_face_from_bytes_path_and_array(hopper_rgb: np.ndarray) -> None:
    from_bytes = load_portrait(HOPPER.read_bytes())
    from_path = load_portrait(HOPPER)
    from_array = load_portrait(hopper_rgb)
    p = from_bytes
    assert p.image.shape == (256, 256, 3) and p.image.dtype == np.uint8
    assert p.source_size == (hopper_rgb.shape[1], hopper_rgb.shape[0])
    x, y, w, h = p.face_box
    # the face of Grace Hopper sits in the upper middle of the 512x600 picture
    assert 120 < x + w / 2 < 400 and 100 < y + h / 2 < 400 and w >= 150
    cx, cy, side, _ = p.crop_box
    assert cx <= x and cy <= y and cx + side >= x + w and cy + side >= y + h  # crop holds the whole face
    assert np.array_equal(from_path.image, p.image) and np.array_equal(from_array.image, p.image)
    # it is a photo: the default model warns
    assert p.warnings == [PHOTO_WARNING]


def test_two_faces_side_by_side_is_refused(hopper_rgb: np.ndarray) -> None:
    two = np.concatenate([hopper_rgb, hopper_rgb], axis=1)
    with pytest.raises(PortraitError, match="several faces"):
        load_portrait(_png(two))


def test_random_noise_has_no_face() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    with pytest.raises(PortraitError, match="no face"):
        load_portrait(_png(noise))


def test_tiny_face_is_refused(hopper_rgb: np.ndarray) -> None:
    small = cv2.resize(hopper_rgb, (80, 94), interpolation=cv2.INTER_AREA)  # face ~35 px wide
    canvas = np.full((300, 300, 3), 200, np.uint8)
    canvas[100:194, 110:190] = small
    with pytest.raises(PortraitError, match="too small"):
        load_portrait(_png(canvas))


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"this is not an image at all" * 10, "not a readable image"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not a readable image"),  # PNG magic, corrupt body
    ],
)
def test_garbage_and_empty_bytes(data: bytes, reason: str) -> None:
    with pytest.raises(PortraitError, match=reason):
        load_portrait(data)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(PortraitError, match="not found"):
        load_portrait(tmp_path / "nope.png")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(PortraitError, match="empty"):
        load_portrait(empty)


def test_bad_array_types() -> None:
    with pytest.raises(PortraitError, match="uint8"):
        load_portrait(np.zeros((256, 256, 3), np.float32))
    with pytest.raises(PortraitError, match="shape"):
        load_portrait(np.zeros((256, 256, 5), np.uint8))


def test_flatness_separates_drawing_from_photo(hopper_rgb: np.ndarray) -> None:
    # a flat-shaded drawing made here with OpenCV: background, head ellipse, eyes, mouth
    img = np.full((256, 256, 3), (200, 220, 240), np.uint8)
    cv2.ellipse(img, (128, 120), (55, 70), 0, 0, 360, (240, 200, 170), -1, cv2.LINE_AA)
    for ex in (105, 151):
        cv2.circle(img, (ex, 110), 8, (40, 40, 40), -1, cv2.LINE_AA)
    cv2.ellipse(img, (128, 155), (18, 6), 0, 0, 360, (150, 60, 60), -1, cv2.LINE_AA)
    assert flatness(img) > 0.8 and not stylisation_warning(img)
    photo = load_portrait(hopper_rgb, warn_photo=False)
    assert photo.warnings == []
    assert flatness(photo.image) < 0.2 and stylisation_warning(photo.image)


_HAS_SYNTH = importlib.util.find_spec("engine_core.data.synth.draw") is not None


@pytest.mark.skipif(not _HAS_SYNTH, reason="corpus generator engine_core.data.synth not present yet")
def test_drawn_characters_pass_the_face_check() -> None:
    from engine_core.data.synth.identities import identity_params
    from engine_core.data.synth.draw import FaceState, draw_frame

    ids = list(range(0, 240, 12))  # 20 identities, train and held-out
    for i in ids:
        st = FaceState(mouth_open=(i % 3) / 2.0, blink=0.0)
        frame = draw_frame(identity_params(i), st)
        p = load_portrait(_png(frame))
        assert p.warnings == [], f"character {i} was taken for a photo"
        # the crop of a character frame is (nearly) the frame itself: same framing as the training data
        x, y, side, _ = p.crop_box
        assert 0.75 * 256 < side < 1.3 * 256, f"character {i}: crop side {side}"
        diff = np.abs(p.image.astype(int) - frame.astype(int)).mean()
        assert diff < 40, f"character {i}: crop far from the frame ({diff:.1f})"


_HAS_GALLERY = importlib.util.find_spec("engine_core.data.synth.gallery") is not None


@pytest.mark.skipif(
    not _HAS_GALLERY, reason="built-in character gallery engine_core.data.synth.gallery not present yet"
)
def test_gallery_characters_pass_the_face_check() -> None:
    from engine_core.data.synth.gallery import gallery_characters, render_portrait

    chars = gallery_characters()
    assert chars, "the gallery is empty"
    for ch in chars:
        p = load_portrait(_png(render_portrait(ch)))
        assert p.image.shape == (256, 256, 3)
        assert p.warnings == [], f"gallery character {ch.id} was taken for a photo"


def test_a_frame_of_the_training_kind_is_used_whole_and_a_wider_shot_is_cropped() -> None:
    from engine_core.data.synth.gallery import gallery_characters, render_portrait

    for ch in gallery_characters():
        frame = render_portrait(ch)
        p = load_portrait(frame)
        # the detector's face box varies with hair and face shape; the frame is kept as the model was trained
        assert p.crop_box == (0, 0, 256, 256) and np.array_equal(p.image, frame), ch.id
    frame = render_portrait(gallery_characters()[1])
    wide = cv2.copyMakeBorder(frame, 128, 128, 128, 128, cv2.BORDER_REPLICATE)     # the same face, a wider shot
    p = load_portrait(wide)
    x, y, side, _ = p.crop_box
    assert 0.75 * 256 <= side <= 1.25 * 256 and abs(x - 128) < 40 and abs(y - 128) < 40
    assert p.source_size == (512, 512) and not np.array_equal(p.image, cv2.resize(wide, (256, 256)))


def test_an_opencv_without_haar_cascades_is_a_typed_error_for_portraits_and_the_cast(monkeypatch, hopper_rgb):
    """OpenCV 5 dropped the Haar cascades (seen on a lent GPU machine's image): the portrait check and the
    corpus/gallery cast, which share one detector, say so with BackendUnavailableError, not an AttributeError."""
    import engine_core.portrait as portrait
    from engine_core.data.synth.identities import face_detected
    from engine_core.errors import BackendUnavailableError

    monkeypatch.setattr(portrait, "_cascade_cache", [])
    monkeypatch.delattr(cv2, "CascadeClassifier")
    with pytest.raises(BackendUnavailableError, match="Haar cascades"):
        load_portrait(_png(hopper_rgb))
    with pytest.raises(BackendUnavailableError, match="Haar cascades"):
        face_detected(hopper_rgb)
