"""Identity portraits: decode an image, find exactly one usable face, crop the 256x256 talking-head frame.

Face detection uses OpenCV's bundled Haar cascades (frontal face default / alt2 / alt) run on several views of
the image (grey, each RGB channel, equalised grey) so that flat-shaded cartoon characters, whose skin/hair
contrast may live in one colour channel only, are found as reliably as photos. Detections of all views are
merged into clusters; a cluster's support is how many (view, cascade) pairs found it.

The crop is a square around the face scaled like the frames the default model is trained on: the face box
covers ~53% of the crop width and sits slightly above the centre (head and shoulders). Where the square
leaves the source image it is padded by replicating the border. A square image that already is such a frame
(the crop would be within `FRAME_TOLERANCE` of the whole image) is used whole: the training frames are.

`stylisation_warning` tells a photo from a flat-shaded drawing: flat-shaded drawings have most pixels in
regions of (nearly) constant colour and few distinct colours; photos have texture, sensor noise and shading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from engine_core.errors import BackendUnavailableError, PortraitError

CROP_SIZE = 256
MIN_FACE_PX = 48  # smaller faces (in source pixels) are refused
FACE_FRACTION = 0.53  # face-box width / crop width (as in the training frames)
FACE_CENTER_Y = 0.477  # face-box centre / crop height (as in the training frames)
MIN_SUPPORT = 2  # a face must be found by >= 2 (view, cascade) pairs
SIMILAR_SIZE = 0.6  # a second face at least this fraction of the first's width -> "several faces"
MAX_DETECT_SIDE = 400  # larger images are downscaled for detection
FRAME_TOLERANCE = 0.25  # a square image whose face crop would be within 25% of its side is used whole
FLAT_THRESHOLD = 0.3  # flatness below this = a photo (heavy JPEG can push drawings below)
PHOTO_WARNING = (
    "the default model is trained on stylised characters; this portrait looks like a photo - "
    "use the `paper` preset for photos"
)
_CASCADES = (
    "haarcascade_frontalface_default.xml",
    "haarcascade_frontalface_alt2.xml",
    "haarcascade_frontalface_alt.xml",
)
_cascade_cache: list[cv2.CascadeClassifier] = []


@dataclass
class Portrait:
    """A usable identity portrait.

    image:       uint8 [256,256,3] RGB, the crop the model uses
    face_box:    (x, y, w, h) of the detected face in source-image pixels
    crop_box:    (x, y, side, side) of the square crop in source-image pixels (may extend past the edges)
    source_size: (width, height) of the source image
    warnings:    human-readable warnings (e.g. a photo given to the default model)
    """

    image: np.ndarray
    face_box: tuple[int, int, int, int]
    crop_box: tuple[int, int, int, int]
    source_size: tuple[int, int]
    warnings: list[str] = field(default_factory=list)


def face_cascades() -> list[cv2.CascadeClassifier]:
    """OpenCV's frontal-face Haar cascades (default, alt2, alt), loaded once; BackendUnavailableError where this
    OpenCV has none (5.x dropped them)."""
    if not _cascade_cache:
        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise BackendUnavailableError(
                f"OpenCV {cv2.__version__} has no Haar cascades (opencv-python-headless < 5 is needed)"
            )
        for name in _CASCADES:
            c = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / name))
            if c.empty():
                raise BackendUnavailableError(
                    f"OpenCV's Haar cascade {name} is missing (opencv-python-headless < 5 needed)"
                )
            _cascade_cache.append(c)
    return _cascade_cache


def decode_image(data: bytes | str | Path | np.ndarray) -> np.ndarray:
    """Bytes of an image file, a path to one, or an array -> uint8 RGB [H,W,3]; PortraitError if not."""
    if isinstance(data, np.ndarray):
        img = data
        if img.dtype != np.uint8:
            raise PortraitError(f"portrait array must be uint8, got {img.dtype}")
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        if img.ndim != 3 or img.shape[2] not in (3, 4) or min(img.shape[:2]) < 1:
            raise PortraitError(f"portrait array must be [H,W,3] RGB, got shape {img.shape}")
        return np.ascontiguousarray(img[:, :, :3])
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise PortraitError(f"portrait file not found: {path}")
        data = path.read_bytes()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise PortraitError(f"portrait must be bytes, a path or an array, not {type(data).__name__}")
    if len(data) == 0:
        raise PortraitError("portrait is empty (0 bytes)")
    buf = np.frombuffer(bytes(data), dtype=np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise PortraitError(
            f"portrait is not a readable image ({len(data)} bytes; PNG, JPEG, BMP or WebP expected)"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _views(rgb: np.ndarray) -> list[np.ndarray]:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return [grey, *(np.ascontiguousarray(rgb[:, :, k]) for k in range(3)), cv2.equalizeHist(grey)]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def _cluster(boxes: list[np.ndarray]) -> list[tuple[np.ndarray, int]]:
    clusters: list[list[np.ndarray]] = []
    for b in sorted(boxes, key=lambda b: -b[2]):
        for cl in clusters:
            if _iou(np.mean(cl, axis=0), b) > 0.3:
                cl.append(b)
                break
        else:
            clusters.append([b])
    out = [(np.mean(cl, axis=0), len(cl)) for cl in clusters]
    return sorted(out, key=lambda c: (-c[1], -c[0][2]))


def detect_faces(
    rgb: np.ndarray, min_size: int = 40, enough: int | None = None
) -> list[tuple[np.ndarray, int]]:
    """All face clusters in an RGB image as (box [x,y,w,h] float, support), strongest first.

    Views are searched in turn (grey, R, G, B, equalised grey); with `enough`, the search stops after
    the first view at which the strongest cluster has that much support (the grey view settles most)."""
    boxes: list[np.ndarray] = []
    clusters: list[tuple[np.ndarray, int]] = []
    for view in _views(rgb):
        for cascade in face_cascades():
            found = cascade.detectMultiScale(
                view, scaleFactor=1.05, minNeighbors=3, minSize=(min_size, min_size)
            )
            boxes += [np.asarray(b, dtype=np.float64) for b in found]
        clusters = _cluster(boxes)
        if enough is not None and clusters and clusters[0][1] >= enough:
            break
    return clusters


def _choose_face(clusters: list[tuple[np.ndarray, int]], scale: float) -> np.ndarray:
    """The one usable face box (source pixels) among detection clusters, or PortraitError with the reason."""
    clusters = [(b, s) for b, s in clusters if s >= MIN_SUPPORT]
    if not clusters:
        raise PortraitError("no face found in the portrait (a frontal, upright face is needed)")
    best_box, best_support = clusters[0]
    rivals = [
        b
        for b, s in clusters[1:]
        if s >= max(MIN_SUPPORT, best_support // 3)
        and _iou(b, best_box) == 0.0
        and min(b[2], best_box[2]) >= SIMILAR_SIZE * max(b[2], best_box[2])
    ]
    if rivals:
        raise PortraitError(
            f"several faces found in the portrait ({len(rivals) + 1}); use an image with one face"
        )
    if best_box[2] / scale < MIN_FACE_PX:
        raise PortraitError(
            f"the face is too small ({best_box[2] / scale:.0f} px wide; at least {MIN_FACE_PX} px needed)"
        )
    return best_box / scale


def crop_square(rgb: np.ndarray, box: tuple[int, int, int, int], size: int = CROP_SIZE) -> np.ndarray:
    """Crop the square box (x, y, side, side) (borders replicated past the edges), resized."""
    x, y, side, _ = box
    h, w = rgb.shape[:2]
    pad = max(0, -x, -y, x + side - w, y + side - h)
    src = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else rgb
    crop = src[y + pad : y + pad + side, x + pad : x + pad + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interp)


def load_portrait(data: bytes | str | Path | np.ndarray, warn_photo: bool = True) -> Portrait:
    """Decode, find exactly one face (>= 48 px wide), crop the 256x256 head-and-shoulders frame.

    Raises PortraitError for: empty data, bytes that are not an image, no face, several faces of similar size,
    a face too small. `warn_photo` adds `PHOTO_WARNING` when the portrait looks like a photo.
    """
    rgb = decode_image(data)
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_FACE_PX:
        raise PortraitError(f"the portrait is too small ({w}x{h} px) to hold a usable face")
    scale = min(1.0, MAX_DETECT_SIDE / max(h, w))
    small = (
        cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        if scale < 1
        else rgb
    )
    # faces somewhat smaller than the minimum are detected too, so that they are reported as too small
    clusters = detect_faces(small, min_size=max(20, int(0.6 * MIN_FACE_PX * scale)), enough=3)
    fx, fy, fw, fh = _choose_face(clusters, scale)
    side = int(round(fw / FACE_FRACTION))
    cx, cy = fx + fw / 2.0, fy + fh / 2.0 + (0.5 - FACE_CENTER_Y) * side
    x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
    if h == w and abs(side - w) <= FRAME_TOLERANCE * w and fx >= 0 and fy >= 0 and fx + fw <= w and fy + fh <= h:
        # already a head-and-shoulders frame (a gallery character, a frame of a clip): the detector's box
        # varies by +-20% with hair and face shape, so re-cropping would only zoom the frame the model copies
        x0, y0, side = 0, 0, w
    # keep the square inside the image where it fits (no needless border padding)
    if side <= w:
        x0 = min(max(x0, 0), w - side)
    if side <= h:
        y0 = min(max(y0, 0), h - side)
    image = crop_square(rgb, (x0, y0, side, side))
    warnings = [PHOTO_WARNING] if warn_photo and stylisation_warning(image) else []
    return Portrait(
        image=image,
        face_box=(int(fx), int(fy), int(fw), int(fh)),
        crop_box=(x0, y0, side, side),
        source_size=(w, h),
        warnings=warnings,
    )


def flatness(rgb: np.ndarray) -> float:
    """Fraction of pixels whose 3x3 neighbourhood is flat (colour steps <= 2 levels)."""
    img = rgb.astype(np.int16)
    dx = np.abs(np.diff(img, axis=1)).max(axis=2)  # [H,W-1]
    dy = np.abs(np.diff(img, axis=0)).max(axis=2)  # [H-1,W]
    step = np.zeros(rgb.shape[:2], dtype=np.int16)
    step[:, :-1] = np.maximum(step[:, :-1], dx)
    step[:, 1:] = np.maximum(step[:, 1:], dx)
    step[:-1, :] = np.maximum(step[:-1, :], dy)
    step[1:, :] = np.maximum(step[1:, :], dy)
    return float((step <= 2).mean())


def stylisation_warning(rgb: np.ndarray) -> bool:
    """True when an RGB crop looks like a photo rather than a flat-shaded stylised character."""
    return flatness(rgb) < FLAT_THRESHOLD
