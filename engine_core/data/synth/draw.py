"""Draw one 256x256 RGB frame of a procedural character with OpenCV (anti-aliased polygons, sub-pixel coords).

The head (face, hair, eyes, mouth, glasses, hat) moves rigidly with the head pose: a rotation about the neck
plus a translation; the body follows the translation at half strength; the background never moves.
`FaceState` carries the per-frame animation values (mouth, blink, pose).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from engine_core.data.synth.characters import IdentityParams

SIZE = 256
_SHIFT = 4                  # cv2 fixed-point bits: coordinates are drawn with 1/16 px precision
_SCALE = float(1 << _SHIFT)
MOUTH_INTERIOR: tuple[int, int, int] = (42, 10, 18)   # the dark "mouth-interior" colour class


@dataclass(frozen=True)
class FaceState:
    """Animation values of one frame: mouth_open/width/round and blink in [0,1]; pose in px and degrees."""

    mouth_open: float = 0.0
    mouth_width: float = 0.5
    mouth_round: float = 0.0
    blink: float = 0.0      # 1 = eyes closed
    dx: float = 0.0
    dy: float = 0.0
    angle: float = 0.0      # degrees, positive = counter-clockwise on screen


class _Pen:
    """Draws polygons through the head transform (rotation about the neck + translation)."""

    def __init__(self, img: np.ndarray, p: IdentityParams, st: FaceState, strength: float = 1.0) -> None:
        self.img = img
        a = np.deg2rad(st.angle * strength)
        px, py = p.head_cx, p.head_cy + p.head_ry  # pivot: the neck
        c, s = np.cos(a), np.sin(a)
        self.m = np.array([[c, s, px - c * px - s * py + st.dx * strength],
                           [-s, c, py + s * px - c * py + st.dy * strength]], dtype=np.float64)

    def tf(self, pts: np.ndarray) -> np.ndarray:
        """[N,2] float frame coords -> transformed [N,2]."""
        return pts @ self.m[:, :2].T + self.m[:, 2]

    def _fix(self, pts: np.ndarray) -> np.ndarray:
        return np.round(self.tf(pts) * _SCALE).astype(np.int32).reshape(-1, 1, 2)

    def fill(self, pts: np.ndarray, color) -> None:  # noqa: ANN001
        cv2.fillPoly(self.img, [self._fix(pts)], color, cv2.LINE_AA, _SHIFT)

    def line(self, pts: np.ndarray, color, thickness: int, closed: bool = False) -> None:  # noqa: ANN001
        cv2.polylines(self.img, [self._fix(pts)], closed, color, max(1, int(thickness)), cv2.LINE_AA, _SHIFT)


def ellipse_pts(cx: float, cy: float, rx: float, ry: float, a0: float = 0.0, a1: float = 360.0,
                n: int = 40) -> np.ndarray:
    """Points [n,2] on an ellipse arc from angle a0 to a1 (degrees, 0 = +x, 90 = +y down)."""
    t = np.deg2rad(np.linspace(a0, a1, n))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def head_outline(p: IdentityParams, n: int = 64) -> np.ndarray:
    """The face polygon: an ellipse whose lower half narrows towards the chin by `jaw`."""
    pts = ellipse_pts(p.head_cx, p.head_cy, p.head_rx, p.head_ry, n=n)
    rel = (pts[:, 1] - p.head_cy) / p.head_ry
    narrow = 1.0 - p.jaw * 0.35 * np.clip(rel, 0, 1) ** 2
    pts[:, 0] = p.head_cx + (pts[:, 0] - p.head_cx) * narrow
    return pts


@lru_cache(maxsize=64)
def _background(p: IdentityParams) -> np.ndarray:
    img = np.empty((SIZE, SIZE, 3), np.uint8)
    img[:] = p.bg_color
    c2 = p.bg_color2
    if p.bg_pattern == "gradient":
        t = np.linspace(0, 1, SIZE)[:, None, None]
        img[:] = (np.array(p.bg_color) * (1 - t) + np.array(c2) * t).astype(np.uint8)
    elif p.bg_pattern == "stripes":
        for x in range(-SIZE, SIZE, 32):
            pts = np.array([[x, 0], [x + 14, 0], [x + 14 + SIZE, SIZE], [x + SIZE, SIZE]], np.int32)
            cv2.fillPoly(img, [pts], c2, cv2.LINE_AA)
    elif p.bg_pattern == "dots":
        for y in range(12, SIZE, 28):
            for x in range(12 + (y // 28 % 2) * 14, SIZE, 28):
                cv2.circle(img, (x, y), 5, c2, -1, cv2.LINE_AA)
    elif p.bg_pattern == "checks":
        yy, xx = np.mgrid[0:SIZE, 0:SIZE]
        img[((yy // 32 + xx // 32) % 2) == 1] = c2
    img.setflags(write=False)
    return img


def _darker(c, f: float = 0.75) -> tuple[int, int, int]:  # noqa: ANN001
    return tuple(int(v * f) for v in c)  # type: ignore[return-value]


def _body(img: np.ndarray, p: IdentityParams, st: FaceState) -> None:
    pen = _Pen(img, p, FaceState(dx=st.dx, dy=st.dy), strength=0.5)
    cx, top = p.head_cx, p.head_cy + p.head_ry * 0.85
    neck = np.array([[cx - p.head_rx * 0.33, p.head_cy + p.head_ry * 0.5], [cx + p.head_rx * 0.33, p.head_cy + p.head_ry * 0.5],
                     [cx + p.head_rx * 0.36, top + 22], [cx - p.head_rx * 0.36, top + 22]])
    pen.fill(neck, _darker(p.skin, 0.88))
    sh = top + 20
    body = np.concatenate([ellipse_pts(cx, sh + 40, 112, 48, 180, 360, 30), [[cx + 120, 300], [cx - 120, 300]]])
    pen.fill(body, p.cloth_color)
    if p.cloth_style == "collar":
        for sgn in (-1, 1):
            pen.fill(np.array([[cx, sh + 8], [cx + sgn * 30, sh - 6], [cx + sgn * 24, sh + 22]]), p.cloth_color2)
    elif p.cloth_style == "vneck":
        pen.fill(np.array([[cx - 22, sh - 6], [cx + 22, sh - 6], [cx, sh + 26]]), _darker(p.skin, 0.88))
    elif p.cloth_style == "hoodie":
        pen.line(ellipse_pts(cx, sh - 2, 46, 16, 0, 180, 20), p.cloth_color2, 7)
        pen.line(np.array([[cx - 12, sh + 12], [cx - 12, sh + 40]]), p.cloth_color2, 2)
        pen.line(np.array([[cx + 12, sh + 12], [cx + 12, sh + 40]]), p.cloth_color2, 2)
    else:  # tshirt
        pen.line(ellipse_pts(cx, sh - 6, 28, 12, 0, 180, 16), _darker(p.cloth_color), 3)


def _hair_back(pen: _Pen, p: IdentityParams) -> None:
    cx, cy, rx, ry = p.head_cx, p.head_cy, p.head_rx, p.head_ry
    if p.hair_style == "long":
        pts = np.concatenate([ellipse_pts(cx, cy - 4, rx + 10, ry + 8, 180, 360, 30),
                              [[cx + rx + 12, cy + ry * 0.9], [cx - rx - 12, cy + ry * 0.9]]])
        pen.fill(pts, p.hair_color)
    elif p.hair_style == "bob":
        pts = np.concatenate([ellipse_pts(cx, cy - 4, rx + 9, ry + 6, 180, 360, 30),
                              [[cx + rx + 9, cy + ry * 0.35], [cx - rx - 9, cy + ry * 0.35]]])
        pen.fill(pts, p.hair_color)
    elif p.hair_style == "afro":
        pen.fill(ellipse_pts(cx, cy - ry * 0.25, rx * 1.35, ry * 0.95), p.hair_color)
    elif p.hair_style == "bun":
        pen.fill(ellipse_pts(cx, cy - ry * 1.05, rx * 0.38, ry * 0.3), p.hair_color)


def _hair_front(pen: _Pen, p: IdentityParams) -> None:
    cx, cy, rx, ry = p.head_cx, p.head_cy, p.head_rx, p.head_ry
    style = p.hair_style
    if style == "bald":
        return
    if style == "spiky":
        xs = np.linspace(cx - rx * 1.02, cx + rx * 1.02, 11)
        top = [[x, cy - ry * (0.75 if i % 2 else 1.18)] for i, x in enumerate(xs)]
        pts = np.concatenate([ellipse_pts(cx, cy, rx * 1.02, ry * 0.98, 180, 200, 4), top,
                              ellipse_pts(cx, cy, rx * 1.02, ry * 0.98, 340, 360, 4),
                              [[cx + rx * 0.8, cy - ry * 0.55], [cx - rx * 0.8, cy - ry * 0.55]]])
        pen.fill(pts, p.hair_color)
        return
    cap = ellipse_pts(cx, cy - 2, rx * 1.04, ry * 1.03, 180, 360, 32)
    if style == "side_part":
        fringe = np.array([[cx + rx * 0.98, cy - ry * 0.35], [cx - rx * 0.2, cy - ry * 0.62],
                           [cx - rx * 0.9, cy - ry * 0.3], [cx - rx * 1.0, cy - ry * 0.05]])
    elif style in ("short", "bun"):
        fringe = np.array([[cx + rx * 0.95, cy - ry * 0.3], [cx, cy - ry * 0.62], [cx - rx * 0.95, cy - ry * 0.3]])
    else:  # bob, long, afro: a fuller fringe
        fringe = np.array([[cx + rx * 1.0, cy - ry * 0.15], [cx + rx * 0.5, cy - ry * 0.5],
                           [cx - rx * 0.4, cy - ry * 0.48], [cx - rx * 1.0, cy - ry * 0.15]])
    pen.fill(np.concatenate([cap, fringe]), p.hair_color)


def _eyes(pen: _Pen, p: IdentityParams, st: FaceState) -> None:
    cy = p.head_cy - p.eye_y * p.head_ry
    open_f = float(np.clip(1.0 - st.blink, 0.0, 1.0))
    outline = (35, 25, 25)
    for sgn in (-1, 1):
        ex = p.head_cx + sgn * p.eye_spacing * p.head_rx
        # brows (thick, dark: the Haar cascade keys on the dark eye/brow band)
        by = cy - p.eye_ry - 7
        tilt = p.brow_tilt * sgn * 6
        pen.line(np.array([[ex - p.eye_rx * 1.1, by + 2 - tilt], [ex, by - 2], [ex + p.eye_rx * 1.1, by + 2 + tilt]]),
                 p.brow_color, p.brow_thickness)
        if open_f < 0.12:
            pen.line(ellipse_pts(ex, cy, p.eye_rx, p.eye_ry * 0.35, 0, 180, 16), outline, 2)
            continue
        ry = p.eye_ry * open_f
        pen.fill(ellipse_pts(ex, cy, p.eye_rx, ry, n=28), (232, 232, 228))
        ir = p.eye_ry * 0.95
        iris = ellipse_pts(ex, cy, ir, min(ir, ry), n=24)
        pen.fill(iris, p.eye_color)
        pen.fill(ellipse_pts(ex, cy, ir * 0.5, min(ir * 0.5, ry * 0.6), n=16), (15, 15, 20))
        pen.fill(ellipse_pts(ex + ir * 0.35, cy - ir * 0.35 * open_f, 1.6, 1.6 * open_f + 0.2, n=8), (255, 255, 255))
        pen.line(ellipse_pts(ex, cy, p.eye_rx, ry, n=28), outline, 2, closed=True)
        pen.line(ellipse_pts(ex, cy, p.eye_rx + 0.5, ry + 0.5, 190, 350, 12), outline, 3)


def _nose(pen: _Pen, p: IdentityParams) -> None:
    cx, top = p.head_cx, p.head_cy - p.eye_y * p.head_ry + 4
    bot = p.head_cy + p.nose_len * p.head_ry
    shade = _darker(p.skin, 0.72)
    if p.nose_style == 0:
        pen.line(np.array([[cx + 1, top + 6], [cx + 4, bot], [cx - 3, bot + 1]]), shade, 2)
    elif p.nose_style == 1:
        pen.fill(np.array([[cx, top + 8], [cx + 7, bot], [cx - 7, bot]]), _darker(p.skin, 0.88))
        pen.line(np.array([[cx - 7, bot], [cx + 7, bot]]), shade, 2)
    elif p.nose_style == 2:
        pen.fill(ellipse_pts(cx, bot - 3, 8, 6), _darker(p.skin, 0.9))
        pen.line(ellipse_pts(cx, bot - 3, 8, 6, 20, 160, 12), shade, 2)
    else:
        pen.fill(ellipse_pts(cx - 4, bot, 2.2, 1.6, n=10), shade)
        pen.fill(ellipse_pts(cx + 4, bot, 2.2, 1.6, n=10), shade)


def mouth_geometry(p: IdentityParams, st: FaceState) -> tuple[float, float, float, float]:
    """(cx, cy, half-width, interior half-height) of the mouth in head coordinates (before the pose)."""
    w = p.mouth_w * (0.8 + 0.4 * st.mouth_width) * (1.0 - 0.35 * st.mouth_round)
    h = 0.5 + st.mouth_open * p.mouth_w * 0.55
    return p.head_cx, p.head_cy + p.mouth_y * p.head_ry, w, h


def landmarks68(p: IdentityParams, st: FaceState = FaceState()) -> np.ndarray:
    """float64 [68, 2]: the character's face in dlib's 68-point layout, from its own geometry (frame pixels, under
    the pose): jaw on the face outline from ear to ear, brows on the drawn brow lines, the nose from between the eyes
    to its tip, eyes on the drawn eye ellipses (lids at 60 degrees from the corners), lips around the drawn mouth.
    dlib's model, trained on photos, misplaces a drawn mouth and eyes; this is exact."""
    pts = np.zeros((68, 2))
    outline_y = lambda a: p.head_cy + p.head_ry * np.sin(np.radians(a))   # noqa: E731
    for i, a in enumerate(np.linspace(172.0, 8.0, 17)):
        x = p.head_cx + p.head_rx * np.cos(np.radians(a))
        y = outline_y(a)
        rel = (y - p.head_cy) / p.head_ry
        pts[i] = [p.head_cx + (x - p.head_cx) * (1.0 - p.jaw * 0.35 * np.clip(rel, 0, 1) ** 2), y]
    ey = p.head_cy - p.eye_y * p.head_ry
    lid = np.radians([180.0, 240.0, 300.0, 0.0, 60.0, 120.0])
    for k, sgn in enumerate((-1, 1)):
        ex = p.head_cx + sgn * p.eye_spacing * p.head_rx
        by, tilt = ey - p.eye_ry - 7, p.brow_tilt * sgn * 6
        brow = np.array([[ex - p.eye_rx * 1.1, by + 2 - tilt], [ex, by - 2], [ex + p.eye_rx * 1.1, by + 2 + tilt]])
        t = np.linspace(0.0, 2.0, 5)
        pts[17 + 5 * k:22 + 5 * k] = np.stack([np.interp(t, [0, 1, 2], brow[:, 0]), np.interp(t, [0, 1, 2], brow[:, 1])], 1)
        pts[36 + 6 * k:42 + 6 * k] = np.stack([ex + p.eye_rx * np.cos(lid), ey + p.eye_ry * np.sin(lid)], 1)
    tip = p.head_cy + p.nose_len * p.head_ry
    pts[27:31] = np.stack([np.full(4, p.head_cx), np.linspace(ey, tip, 4)], 1)
    nw = max(4.0, 0.35 * p.eye_rx)
    pts[31:36] = [[p.head_cx - nw, tip - 1], [p.head_cx - nw / 2, tip + 0.5], [p.head_cx, tip + 1],
                  [p.head_cx + nw / 2, tip + 0.5], [p.head_cx + nw, tip - 1]]
    cx, cy, w, h = mouth_geometry(p, st)
    lip = 3.2 + (h - 0.5)
    xs = cx + w * np.array([-1.0, -0.6, -0.25, 0.0, 0.25, 0.6, 1.0])
    upper = cy - lip * np.array([0.0, 0.8, 1.0, 0.9, 1.0, 0.8, 0.0])
    lower = cy + lip * np.array([0.0, 0.8, 1.0, 1.0, 1.0, 0.8, 0.0])
    pts[48:55] = np.stack([xs, upper], 1)
    pts[55:60] = np.stack([xs[5:0:-1], lower[5:0:-1]], 1)
    inner = cx + w * np.array([-0.85, -0.4, 0.0, 0.4, 0.85])
    gap = (h - 0.5) * np.array([0.0, 0.8, 1.0, 0.8, 0.0])
    pts[60:65] = np.stack([inner, cy - gap], 1)
    pts[65:68] = np.stack([inner[3:0:-1], (cy + gap)[3:0:-1]], 1)
    return _Pen(np.zeros((1, 1, 3), np.uint8), p, st).tf(pts)


def face_points(p: IdentityParams, st: FaceState = FaceState()) -> np.ndarray:
    """float64 [5, 2]: the character's eye centres (image-left, image-right), nose tip and mouth corners (image-left,
    image-right) in frame pixels, under the pose."""
    from sdk.portrait.template import five_points

    return five_points(landmarks68(p, st))


def _mouth(pen: _Pen, p: IdentityParams, st: FaceState) -> None:
    cx, cy, w, h = mouth_geometry(p, st)
    lip = p.lip_color
    if st.mouth_open < 0.04:
        pen.fill(ellipse_pts(cx, cy, w + 1.5, 3.2, n=28), lip)
        pen.line(np.array([[cx - w, cy], [cx, cy + 0.6], [cx + w, cy]]), _darker(lip, 0.6), 2)
        return
    pen.fill(ellipse_pts(cx, cy, w + 3.0, h + 3.2, n=32), lip)
    pen.fill(ellipse_pts(cx, cy, w, h, n=32), MOUTH_INTERIOR)


def _face_marks(pen: _Pen, p: IdentityParams) -> None:
    cx, cy, rx, ry = p.head_cx, p.head_cy, p.head_rx, p.head_ry
    # highlights on forehead, nose bridge and cheeks: the light/dark pattern a frontal face detector expects
    lit = tuple(int(c + min(c * 0.4, (255 - c) * 0.55)) for c in p.skin)
    pen.fill(ellipse_pts(cx, cy - ry * 0.55, rx * 0.5, ry * 0.2), lit)
    pen.fill(ellipse_pts(cx, cy - ry * 0.02, rx * 0.09, ry * 0.25), lit)
    for sgn in (-1, 1):
        pen.fill(ellipse_pts(cx + sgn * rx * 0.45, cy + ry * 0.2, rx * 0.2, ry * 0.12), lit)
    if p.cheeks:
        for sgn in (-1, 1):
            pen.fill(ellipse_pts(cx + sgn * rx * 0.55, cy + ry * 0.22, 9, 5), (235, 140, 140))
    if p.freckles:
        for sgn in (-1, 1):
            for ox, oy in ((0.45, 0.12), (0.55, 0.18), (0.38, 0.2), (0.5, 0.26)):
                pen.fill(ellipse_pts(cx + sgn * rx * ox, cy + ry * oy, 1.3, 1.3, n=8), _darker(p.skin, 0.65))


def _accessories(pen: _Pen, p: IdentityParams) -> None:
    cx, cy, rx, ry = p.head_cx, p.head_cy, p.head_rx, p.head_ry
    if p.glasses:
        ey = cy - p.eye_y * ry
        for sgn in (-1, 1):
            ex = cx + sgn * p.eye_spacing * rx
            if p.glasses == 1:
                pen.line(ellipse_pts(ex, ey, p.eye_rx + 5, p.eye_ry + 6), p.glasses_color, 2, closed=True)
            else:
                r = np.array([[ex - p.eye_rx - 5, ey - p.eye_ry - 5], [ex + p.eye_rx + 5, ey - p.eye_ry - 5],
                              [ex + p.eye_rx + 5, ey + p.eye_ry + 5], [ex - p.eye_rx - 5, ey + p.eye_ry + 5]])
                pen.line(r, p.glasses_color, 2, closed=True)
        inner = p.eye_spacing * rx - p.eye_rx - 5
        pen.line(np.array([[cx - inner, ey - 2], [cx + inner, ey - 2]]), p.glasses_color, 2)
    if p.hat == "beanie":
        pen.fill(ellipse_pts(cx, cy - ry * 0.6, rx * 1.08, ry * 0.7, 180, 360, 28), p.hat_color)
        pen.fill(np.array([[cx - rx * 1.1, cy - ry * 0.74], [cx + rx * 1.1, cy - ry * 0.74],
                           [cx + rx * 1.1, cy - ry * 0.58], [cx - rx * 1.1, cy - ry * 0.58]]), _darker(p.hat_color, 0.8))
    elif p.hat == "cap":
        pen.fill(ellipse_pts(cx, cy - ry * 0.66, rx * 1.02, ry * 0.58, 180, 360, 28), p.hat_color)
        pen.fill(ellipse_pts(cx + rx * 0.35, cy - ry * 0.66, rx * 0.95, ry * 0.12, 180, 360, 20), _darker(p.hat_color, 0.75))
    elif p.hat == "tophat":
        pen.fill(np.array([[cx - rx * 0.7, cy - ry * 1.7], [cx + rx * 0.7, cy - ry * 1.7],
                           [cx + rx * 0.7, cy - ry * 0.85], [cx - rx * 0.7, cy - ry * 0.85]]), p.hat_color)
        pen.fill(ellipse_pts(cx, cy - ry * 0.85, rx * 1.15, ry * 0.12), _darker(p.hat_color, 0.7))


def draw_frame(p: IdentityParams, st: FaceState) -> np.ndarray:
    """One frame: uint8 [256,256,3] RGB."""
    img = _background(p).copy()
    _body(img, p, st)
    pen = _Pen(img, p, st)
    _hair_back(pen, p)
    ey = p.head_cy + p.head_ry * 0.05
    for sgn in (-1, 1):  # ears
        pen.fill(ellipse_pts(p.head_cx + sgn * p.head_rx * 0.97, ey, 8, 13), _darker(p.skin, 0.92))
        if p.earrings:
            pen.fill(ellipse_pts(p.head_cx + sgn * p.head_rx * 0.99, ey + 15, 3.0, 3.0, n=12), (235, 200, 60))
    face = head_outline(p)
    pen.fill(face, p.skin)
    pen.line(face, _darker(p.skin, 0.7), 2, closed=True)
    _face_marks(pen, p)
    _nose(pen, p)
    _mouth(pen, p, st)
    _hair_front(pen, p)
    _eyes(pen, p, st)
    _accessories(pen, p)
    return img


def _box(pts: np.ndarray, margin: float) -> list[int]:
    x0, y0 = pts.min(axis=0) - margin
    x1, y1 = pts.max(axis=0) + margin
    return [int(np.clip(np.floor(x0), 0, SIZE)), int(np.clip(np.floor(y0), 0, SIZE)),
            int(np.clip(np.ceil(x1), 0, SIZE)), int(np.clip(np.ceil(y1), 0, SIZE))]


def face_box(p: IdentityParams, st: FaceState = FaceState()) -> list[int]:
    """[x0, y0, x1, y1] of the face oval under the pose (pixels, clipped to the frame)."""
    return _box(_Pen(np.zeros((1, 1, 3), np.uint8), p, st).tf(head_outline(p, 32)), 1)


def mouth_box(p: IdentityParams, st: FaceState = FaceState()) -> list[int]:
    """[x0, y0, x1, y1] that holds the mouth at full opening and full width, under the pose."""
    cx, cy, _, _ = mouth_geometry(p, st)
    w = p.mouth_w * 1.2 + 5
    h = p.mouth_w * 0.55 + 5
    pts = np.array([[cx - w, cy - h], [cx + w, cy - h], [cx + w, cy + h], [cx - w, cy + h]])
    return _box(_Pen(np.zeros((1, 1, 3), np.uint8), p, st).tf(pts), 0)
