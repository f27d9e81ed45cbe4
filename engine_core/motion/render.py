"""The portrait renderer: (portrait, its rig, one motion frame) -> the frame, made of the portrait's own pixels.

Per frame:
  1. the rig places every mesh vertex for the motion frame (engine_core/motion/rig.py);
  2. the moved triangles are rasterised into a triangle-id map over the region that can move (OpenCV's convex
     polygon fill, sub-pixel vertices); each output pixel is mapped back into the portrait by its triangle's
     affine map (an exact piecewise-affine backward warp: no seams, no holes);
  3. that region is resampled from the portrait: bilinearly from a 2x copy with the portrait's own pixels at even
     places and Catmull-Rom midpoints between (OpenCV's bicubic remap is ~20x slower), then the detail a sample
     between pixels loses is given back by an unsharp mask weighted by how far between pixels it fell
     (`restore_detail`); pixels the warp leaves in place keep their exact values, so detail, identity and resolution
     are the portrait's;
  4. where the lips part further than in the portrait, the mouth's inside is drawn (engine_core/motion/mouth.py),
     and a closing lid gets its lash line.
Alpha (a transparent portrait) is warped with the colour.
"""

from __future__ import annotations

import cv2
import numpy as np

from engine_core.motion.channels import INDEX, NUM_BLENDSHAPES
from engine_core.motion.mouth import draw_lashes, draw_lid, draw_mouth
from engine_core.motion.rig import LID_PAIRS, N_HEAD, TEETH_LO, TEETH_UP, FaceRig

SUBPIXEL_BITS = 4
DETAIL_MARGIN = 0.22        # inter-ocular units around the lips and eyes warped exactly, pixel by pixel
MOUTH = list(range(48, 68)) + list(TEETH_UP) + list(TEETH_LO)


class PortraitRenderer:
    """Renders motion frames of one portrait (uint8 [S, S, 3|4]) with its landmarks (float [68, 2], pixels)."""

    def __init__(self, image: np.ndarray, landmarks: np.ndarray) -> None:
        if image.ndim != 3 or image.shape[0] != image.shape[1] or image.shape[2] not in (3, 4):
            raise ValueError(f"the portrait must be a square RGB(A) image, got {image.shape}")
        self.image = np.ascontiguousarray(image)
        self.size = s = image.shape[0]
        self.flat = is_flat(self.image, landmarks)      # a flat-shaded drawing: lids are drawn, not stretched
        self.rig = FaceRig(landmarks, s, drawn_lids=self.flat)
        self._tri = self.rig.triangles
        self.step = max(1, s // 128)                    # the smooth part of the warp is computed on this grid
        self._up = _midpoint_upsample(self.image)        # sampled bilinearly: sharp, and exact where nothing moves
        n = s // self.step
        c = (np.arange(n, dtype=np.float32) + 0.5) * self.step - 0.5
        self._cx, self._cy = np.meshgrid(c, c)
        self._bary = _barycentric(self.rig.rest, self._tri, self._cx, self._cy)   # rest mesh on the coarse grid
        g = np.arange(s, dtype=np.float32)
        self._gx, self._gy = np.meshgrid(g, g)
        self._ids = np.zeros((s, s), np.int32)
        self.skin = _skin_tone(self.image, self.rig)
        self.line = _line_tone(self.image, self.rig)

    def render(self, frame: np.ndarray) -> np.ndarray:
        """One motion frame (float [NUM_CHANNELS]) -> uint8 [S, S, C] (C as the portrait's)."""
        frame = np.asarray(frame, np.float64)
        face = self.rig.face_points(frame)
        verts = self.rig.vertices(frame, face)
        out = self.image.copy()
        moved = np.abs(verts - self.rig.rest).max(1) > 1e-3
        if moved.any():
            box = self._moving_box(verts, moved)
            dx, dy = self._displacement(verts, box)
            x0, y0, x1, y1 = box
            mapx = (self._gx[y0:y1, x0:x1] + dx) * 2.0
            mapy = (self._gy[y0:y1, x0:x1] + dy) * 2.0
            warped = cv2.remap(self._up, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            out[y0:y1, x0:x1] = restore_detail(warped, mapx, mapy)
        opening = FaceRig.new_gap(face)
        if opening > 0.004:
            draw_mouth(out, verts, self.rig, opening, self.skin, self.flat)
        k = NUM_BLENDSHAPES
        for (side, pairs), name in zip(LID_PAIRS.items(), ("eyeBlinkLeft", "eyeBlinkRight")):
            if self.flat:
                blink = float(np.clip(frame[INDEX[name]], 0.0, 1.0))
                if blink > 0.02:
                    pose = self.rig.pose(face, *frame[k:k + 5])
                    draw_lid(out, pose, pairs, blink, self.skin, self.line, self.rig.iod)
                continue
            closed = 1.0 - np.mean([(face[lo, 1] - face[up, 1]) / max(1e-6, self.rig.lm[lo, 1] - self.rig.lm[up, 1])
                                    for up, lo in pairs])
            if closed > 0.35:
                draw_lashes(out, verts, pairs, min(1.0, (closed - 0.35) / 0.5), self.rig.iod)
        return out

    def _moving_box(self, verts: np.ndarray, moved: np.ndarray) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1): the pixels of every triangle with a moving vertex, at rest or now."""
        tris = self._tri[moved[self._tri].any(1)]
        pts = np.concatenate([verts[tris.ravel()], self.rig.rest[tris.ravel()]])
        return _clip_box(pts, 0.0, self.size)

    def _displacement(self, verts: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """float32 (dx, dy) over the box: the portrait pixel each output pixel comes from, minus its own place.

        Smooth skin: the mesh's forward motion is interpolated on a coarse grid of the rest mesh and inverted there
        by fixed-point iteration (q = p - F(q)), then upsampled. Lips and eyes, where the motion folds and
        stretches: each output pixel through its own triangle's affine map, exactly."""
        x0, y0, x1, y1 = box
        st, s = self.step, self.size
        if st > 1:
            fwd = _forward_field(self._bary, verts - self.rig.rest)           # [n, n, 2] at the rest grid
            back = _invert(fwd, self._cx, self._cy, st)
            dx = cv2.resize(back[..., 0], (s, s), interpolation=cv2.INTER_LINEAR)[y0:y1, x0:x1]
            dy = cv2.resize(back[..., 1], (s, s), interpolation=cv2.INTER_LINEAR)[y0:y1, x0:x1]
            detail = [self._detail_box(verts, idx) for idx in (MOUTH, range(36, 42), range(42, 48))]
        else:
            dx = np.zeros((y1 - y0, x1 - x0), np.float32)
            dy = np.zeros_like(dx)
            detail = [box]
        aff = _coefficients(verts[self._tri], self.rig.rest[self._tri])        # [T + 1, 6], row 0 = identity
        lo = np.minimum(verts[self._tri].min(1), self.rig.rest[self._tri].min(1))
        hi = np.maximum(verts[self._tri].max(1), self.rig.rest[self._tri].max(1))
        for bx0, by0, bx1, by1 in detail:
            bx0, by0, bx1, by1 = max(bx0, x0), max(by0, y0), min(bx1, x1), min(by1, y1)
            if bx1 <= bx0 or by1 <= by0:
                continue
            near = np.flatnonzero((hi[:, 0] >= bx0) & (lo[:, 0] <= bx1) & (hi[:, 1] >= by0) & (lo[:, 1] <= by1))
            ids = self._ids[by0:by1, bx0:bx1]
            _raster(ids, verts - [bx0, by0], self._tri, near)
            ddx, ddy = _apply(aff, ids, self._gx[by0:by1, bx0:bx1], self._gy[by0:by1, bx0:bx1])
            dx[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] = ddx
            dy[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] = ddy
        return dx, dy

    def _detail_box(self, verts: np.ndarray, idx: range) -> tuple[int, int, int, int]:
        idx = list(idx)
        pts = np.concatenate([verts[idx], self.rig.rest[idx]])
        return _clip_box(pts, DETAIL_MARGIN * self.rig.iod, self.size)


RESTORE = 0.6    # unsharp-mask strength at a sample halfway between pixels (keeps the frames' Laplacian variance
                 # at the portrait's for a swaying head: docs/default-model.md)


def restore_detail(warped: np.ndarray, mapx2: np.ndarray, mapy2: np.ndarray) -> np.ndarray:
    """Give back the high frequencies bilinear sampling takes: `warped` sampled at (mapx2, mapy2) on the 2x grid.
    A sample on a pixel (fraction 0) is left exactly as it is; halfway between (0.5) it gets the full RESTORE."""
    fx = mapx2 - np.floor(mapx2)
    fy = mapy2 - np.floor(mapy2)
    w = 1.0 - (1.0 - 2.0 * np.minimum(fx, 1.0 - fx)) * (1.0 - 2.0 * np.minimum(fy, 1.0 - fy))
    if not w.any():
        return warped
    rgb = warped[..., :3].astype(np.float32)
    detail = rgb - cv2.GaussianBlur(rgb, (3, 3), 0.8)
    out = warped.copy()
    out[..., :3] = np.clip(rgb + (RESTORE * w)[..., None] * detail + 0.5, 0, 255).astype(np.uint8)
    return out


def _clip_box(pts: np.ndarray, margin: float, size: int) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(pts.min(0) - margin).astype(int) - 2
    x1, y1 = np.ceil(pts.max(0) + margin).astype(int) + 3
    return max(0, x0), max(0, y0), min(size, x1), min(size, y1)


def _raster(ids: np.ndarray, verts: np.ndarray, tris: np.ndarray, which: np.ndarray) -> None:
    """Fill `ids` with 1 + the index of the triangle (of `which`; vertices in `ids`' pixel coordinates) covering
    each pixel; 0 where none does."""
    ids.fill(0)
    fixed = np.round(verts * (1 << SUBPIXEL_BITS)).astype(np.int32)[tris[which]]
    for k, poly in zip(which.tolist(), fixed):
        cv2.fillConvexPoly(ids, poly, k + 1, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)


def _barycentric(rest: np.ndarray, tris: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> tuple[np.ndarray, ...]:
    """For each grid point (gx, gy): the three vertex indices of the rest triangle holding it and its three
    barycentric weights, each [n, n] (a point in no triangle: weights 0, so it never moves)."""
    n = gx.shape[0]
    step = (gx[0, 1] - gx[0, 0]) if n > 1 else 1.0
    ids = np.zeros((n, n), np.int32)
    _raster(ids, (rest + 0.5) / step - 0.5, tris, np.arange(len(tris)))
    verts = np.zeros((n, n, 3), np.int32)
    weights = np.zeros((n, n, 3), np.float32)
    inside = ids > 0
    t = tris[ids[inside] - 1]                                                  # [m, 3]
    a, b, c = rest[t[:, 0]], rest[t[:, 1]], rest[t[:, 2]]
    p = np.stack([gx[inside], gy[inside]], 1).astype(np.float64)
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-9, 1e-9, den)
    w1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    w2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    verts[inside] = t
    weights[inside] = np.stack([1 - w1 - w2, w1, w2], 1)
    return (tuple(np.ascontiguousarray(verts[..., k]) for k in range(3))
            + tuple(np.ascontiguousarray(weights[..., k]) for k in range(3)))


def _forward_field(bary: tuple[np.ndarray, ...], moves: np.ndarray) -> np.ndarray:
    """float32 [n, n, 2]: how far each rest grid point moves (the mesh's motion, interpolated in its triangle)."""
    v0, v1, v2, w0, w1, w2 = bary
    out = []
    for axis in (0, 1):
        m = moves[:, axis].astype(np.float32)
        out.append(m[v0] * w0 + m[v1] * w1 + m[v2] * w2)        # three 1-D gathers: ~50x the speed of one 4-D
    return np.stack(out, axis=-1)


def _invert(fwd: np.ndarray, gx: np.ndarray, gy: np.ndarray, step: int, rounds: int = 3) -> np.ndarray:
    """float32 [n, n, 2] backward displacement G with p + G(p) the rest point that moves onto grid point p
    (fixed-point iteration of q = p - F(q), F sampled bilinearly)."""
    g = -fwd
    for _ in range(rounds):
        qx = (gx + g[..., 0] + 0.5) / step - 0.5
        qy = (gy + g[..., 1] + 0.5) / step - 0.5
        g = -cv2.remap(fwd, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return g


def _apply(coef: np.ndarray, ids: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The displacement (source - target) at pixels (gx, gy) through each pixel's triangle's affine map."""
    c = [np.take(coef[:, k], ids) for k in range(6)]
    dx = (c[0] - 1.0) * gx + c[1] * gy + c[2]
    dy = c[3] * gx + (c[4] - 1.0) * gy + c[5]
    return dx.astype(np.float32), dy.astype(np.float32)


def _coefficients(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """float32 [T + 1, 6]: row 0 the identity, row 1 + t the affine map taking triangle t's dst corners onto its src
    corners (a, b, c, d, e, f: x' = a x + b y + c, y' = d x + e y + f)."""
    return np.concatenate([np.array([[1, 0, 0, 0, 1, 0]], np.float32), _affines(dst, src).reshape(-1, 6)])


def _midpoint_upsample(image: np.ndarray) -> np.ndarray:
    """The image at twice the resolution with its own pixels at the even positions and Catmull-Rom midpoints
    between them: sampled bilinearly at 2 * (x, y), it gives exactly the original pixels at whole positions and a
    near-cubic interpolation in between (OpenCV's bicubic remap is ~20x slower)."""
    k = np.array([[-1.0, 9.0, 9.0, -1.0]], np.float32) / 16.0
    img = image.astype(np.float32)
    h, w = img.shape[:2]
    wide = np.empty((h, 2 * w) + img.shape[2:], np.float32)
    wide[:, 0::2] = img
    wide[:, 1::2] = cv2.filter2D(img, -1, k, anchor=(1, 0), borderType=cv2.BORDER_REPLICATE)
    tall = np.empty((2 * h, 2 * w) + img.shape[2:], np.float32)
    tall[0::2] = wide
    tall[1::2] = cv2.filter2D(wide, -1, k.T, anchor=(0, 1), borderType=cv2.BORDER_REPLICATE)
    return np.clip(np.round(tall), 0, 255).astype(np.uint8)


def _affines(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """float32 [T, 2, 3]: for each triangle, the affine map taking its dst corners onto its src corners (the
    identity for a degenerate dst triangle)."""
    t = len(dst)
    m = np.concatenate([dst, np.ones((t, 3, 1))], axis=2)                  # [T, 3, 3] rows (x, y, 1)
    det = np.linalg.det(m)
    ok = np.abs(det) > 1e-6
    out = np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (t, 1, 1))
    if ok.any():
        sol = np.linalg.solve(m[ok], src[ok])                               # [n, 3, 2]: m @ sol = src
        out[ok] = sol.transpose(0, 2, 1)
    return out.astype(np.float32)


def _skin_tone(image: np.ndarray, rig: FaceRig) -> np.ndarray:
    """The median RGB of the cheeks (between the eyes' bottom and the mouth corners): mouth shading is matched to
    it."""
    lm = rig.rest[:68]
    pts = np.concatenate([lm[[1, 2, 3, 31, 48]], lm[[15, 14, 13, 35, 54]]])
    mask = np.zeros(image.shape[:2], np.uint8)
    for poly in (pts[:5], pts[5:]):
        cv2.fillConvexPoly(mask, np.round(poly).astype(np.int32), 1)
    px = image[:, :, :3][mask > 0]
    return np.median(px, axis=0) if len(px) else np.array([200.0, 160.0, 140.0])


def _line_tone(image: np.ndarray, rig: FaceRig) -> np.ndarray:
    """The darkest tone around the eyes (a drawing's outline colour): a drawn closed lid's line."""
    lm = rig.rest[:68]
    x0, y0 = np.floor(lm[36:48].min(0)).astype(int)
    x1, y1 = np.ceil(lm[36:48].max(0)).astype(int) + 1
    patch = image[max(0, y0):max(1, y1), max(0, x0):max(1, x1), :3].reshape(-1, 3).astype(np.float64)
    if not len(patch):
        return np.array([40.0, 30.0, 30.0])
    lum = patch @ [0.299, 0.587, 0.114]
    return patch[lum <= np.percentile(lum, 10)].mean(0)


def is_flat(image: np.ndarray, landmarks: np.ndarray, share: float = 0.55) -> bool:
    """Whether the face is flat-shaded (a drawing): most pixels of its box sit in regions of (nearly) one colour."""
    lm = np.asarray(landmarks)
    x0, y0 = np.maximum(np.floor(lm.min(0)).astype(int), 0)
    x1, y1 = np.ceil(lm.max(0)).astype(int) + 1
    face = image[y0:y1, x0:x1, :3].astype(np.int16)
    if face.shape[0] < 3 or face.shape[1] < 3:
        return False
    dx = np.abs(np.diff(face, axis=1)).max(2)[:-1]
    dy = np.abs(np.diff(face, axis=0)).max(2)[:, :-1]
    return float(((dx <= 2) & (dy <= 2)).mean()) > share
