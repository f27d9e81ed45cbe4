"""A portrait's face rig: a triangle mesh over the picture and how each motion channel moves its vertices.

Vertices: the 68 landmarks, points of the forehead and crown, the head's outline (hair, ears), the neck, the frame's
border, and the *teeth line*: three points on the middle line between the inner lips, twice - one copy moves with
the upper lip, one with the lower. At rest the two copies coincide; when the mouth opens further than in the
portrait, the opening between them is new (nothing in the portrait shows it) and is drawn (engine_core/motion/
mouth.py), while whatever the portrait shows between its lips (teeth in a smile) moves with the lip it belongs to.
The mesh is a Delaunay triangulation of the rest pose taken with the lips, the teeth line and the eyelids held
apart, so each of those openings is triangles of its own whatever the portrait's expression.

Everything is computed in the *face frame* (origin between the eyes, x along the eye line to the image's right, y
down, one unit = the inter-ocular distance) and mapped to pixels with the portrait's own eye frame.

`displacements(frame)`: the vertices' offsets (pixels) for one motion frame: the blendshapes add up linearly (each
a field over the vertices, below), lips are kept from crossing, then the head pose turns the head vertices in 3D
(each vertex has a depth; orthographic projection) around a pivot behind the nose, the neck following in part and
the frame's border not at all. Left/Right channels act on the subject's left/right (the image's right/left).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine_core.motion.channels import INDEX, NUM_BLENDSHAPES
from sdk.portrait.template import eye_frame

N_LM = 68
JAW_DROP = 0.42                     # how far (inter-ocular units) the chin drops at jawOpen = 1
PIVOT = np.array([0.0, 1.0, -1.2])  # head rotation centre (face frame, z towards the viewer)
UPPER_INNER, LOWER_INNER = (61, 62, 63), (67, 66, 65)     # vertically paired inner-lip points
LID_PAIRS = {"right": ((37, 41), (38, 40)), "left": ((43, 47), (44, 46))}   # subject's eyes: (upper, lower)
MIN_GAP = 0.10                      # lips and lids are held this far apart (iod units) while triangulating


@dataclass(frozen=True)
class Extra:
    """A vertex beside the landmarks, in the face frame: landmark `anchor` (or the midpoint of `anchor` and `mid`)
    plus `offset`; its depth, head weight, and the share of its anchor's blendshape motion it follows."""

    name: str
    anchor: int
    offset: tuple[float, float]
    depth: float
    head: float = 1.0
    follow: float = 0.0
    mid: int | None = None
    t: float = 0.5                   # with `mid`: the share of the way from `anchor` to `mid`

    def position(self, lm: np.ndarray) -> np.ndarray:
        base = lm[self.anchor] if self.mid is None else (1 - self.t) * lm[self.anchor] + self.t * lm[self.mid]
        return base + self.offset


def _extras() -> list[Extra]:
    out = [Extra(f"forehead{i}", i, (0.0, -0.45), 0.4, follow=0.4) for i in (17, 19, 21, 22, 24, 26)]
    out += [Extra("crownA", 19, (-0.35, -1.05), 0.1), Extra("crown", 27, (0.0, -1.6), 0.1),
            Extra("crownB", 24, (0.35, -1.05), 0.1)]
    out += [Extra("templeA", 0, (-0.3, -0.6), 0.0), Extra("templeB", 16, (0.3, -0.6), 0.0),
            Extra("earA", 2, (-0.35, 0.0), -0.1), Extra("earB", 14, (0.35, 0.0), -0.1),
            Extra("jawbackA", 5, (-0.3, 0.15), -0.1, follow=0.3), Extra("jawbackB", 11, (0.3, 0.15), -0.1, follow=0.3)]
    out += [Extra("underchin", 8, (0.0, 0.32), 0.2, follow=0.7),
            Extra("neckA", 6, (0.0, 0.75), -0.4, head=0.45, follow=0.2),
            Extra("neckB", 10, (0.0, 0.75), -0.4, head=0.45, follow=0.2),
            Extra("neck", 8, (0.0, 0.95), -0.4, head=0.35, follow=0.1)]
    # the lids' creases: between each upper lid point and the brow above it, following a blink in part, so a closing
    # lid stretches the lid's own skin rather than pulling the brow down over the eye
    out += [Extra(f"crease{lid}", lid, (0.0, 0.0), 0.4, follow=0.35, mid=brow, t=0.4)
            for lid, brow in ((37, 19), (38, 20), (43, 23), (44, 24))]
    out += [Extra(f"teeth_up{k}", up, (0.0, 0.0), 0.6, follow=1.0, mid=lo)
            for k, (up, lo) in enumerate(zip(UPPER_INNER, LOWER_INNER))]
    out += [Extra(f"teeth_lo{k}", lo, (0.0, 0.0), 0.6, follow=1.0, mid=up)
            for k, (up, lo) in enumerate(zip(UPPER_INNER, LOWER_INNER))]
    return out


EXTRAS = _extras()
N_HEAD = N_LM + len(EXTRAS)         # vertices that belong to the head or neck; the frame's border follows
TEETH_UP = tuple(N_LM + i for i, e in enumerate(EXTRAS) if e.name.startswith("teeth_up"))
TEETH_LO = tuple(N_LM + i for i, e in enumerate(EXTRAS) if e.name.startswith("teeth_lo"))


def _landmark_depth() -> np.ndarray:
    z = np.zeros(N_LM)
    z[0:17] = 0.5 * (1 - np.abs(np.arange(17) - 8) / 8.0) ** 0.7
    z[17:27] = 0.45
    z[27:31] = [0.6, 0.75, 0.9, 1.05]
    z[31:36] = [0.75, 0.85, 0.9, 0.85, 0.75]
    z[36:48] = 0.35
    z[[36, 39, 42, 45]] = 0.3
    z[48:60] = 0.7
    z[[48, 54]] = 0.55
    z[60:68] = 0.65
    return z


def _side(lm: np.ndarray, i: int) -> float:
    """+1 for the subject's left (image right), -1 for the subject's right."""
    return 1.0 if lm[i, 0] > 0 else -1.0


def blendshape_basis(lm: np.ndarray) -> np.ndarray:
    """float64 [NUM_BLENDSHAPES, 68, 2]: each blendshape's full (weight 1) displacement of the landmarks, in face
    units, for a face whose rest landmarks are `lm` (face frame)."""
    b = np.zeros((NUM_BLENDSHAPES, N_LM, 2))

    def put(name: str, idx, d) -> None:  # noqa: ANN001
        b[INDEX[name], idx] += d

    j = JAW_DROP
    # jawOpen: the chin and lower jaw drop (cosine falloff towards the ears), the lower lip with them
    for i in range(3, 14):
        f = np.cos((i - 8) / 5.0 * np.pi / 2) ** 1.5
        put("jawOpen", i, (-0.05 * _side(lm, i) * f if i != 8 else 0.0, j * f))
    for i, f in zip((55, 56, 57, 58, 59), (0.72, 0.85, 0.9, 0.85, 0.72)):
        put("jawOpen", i, (0.0, j * f))
    for i, f in zip((65, 66, 67), (0.8, 0.92, 0.8)):
        put("jawOpen", i, (0.0, j * f))
    for i in (60, 64):
        put("jawOpen", i, (-0.03 * _side(lm, i), 0.35 * j))
    for i in (48, 54):
        put("jawOpen", i, (-0.04 * _side(lm, i), 0.3 * j))
    for i in (49, 50, 51, 52, 53, 61, 62, 63):
        put("jawOpen", i, (0.0, -0.03 * j))
    # mouthClose: lips together while the jaw is open (the lips' share of jawOpen, undone)
    lips = list(range(48, 68))
    b[INDEX["mouthClose"], lips] = -b[INDEX["jawOpen"], lips]
    b[INDEX["mouthClose"], [48, 54, 60, 64], 0] = 0.0
    put("mouthClose", [61, 62, 63], (0.0, 0.02))
    # mouthFunnel / mouthPucker: corners in; funnel opens and flares the lips, pucker narrows them
    for i in (48, 54, 60, 64):
        put("mouthFunnel", i, (-0.12 * _side(lm, i), 0.0))
        put("mouthPucker", i, (-0.16 * _side(lm, i), 0.0))
    put("mouthFunnel", [61, 62, 63], (0.0, -0.05))
    put("mouthFunnel", [65, 66, 67], (0.0, 0.08))
    put("mouthFunnel", [49, 50, 51, 52, 53], (0.0, -0.03))
    put("mouthFunnel", [55, 56, 57, 58, 59], (0.0, 0.05))
    for i in (49, 50, 52, 53, 55, 56, 58, 59):
        put("mouthPucker", i, (-0.07 * _side(lm, i) * min(1.0, abs(lm[i, 0]) / 0.3), 0.0))
    # smile / stretch / press, per side
    for name, sign in (("Left", 1.0), ("Right", -1.0)):
        corner, inner = (54, 64) if sign > 0 else (48, 60)
        near = (53, 55, 63, 65) if sign > 0 else (49, 59, 61, 67)
        cheek = (11, 12, 13) if sign > 0 else (3, 4, 5)
        lower_lid = (46, 47) if sign > 0 else (40, 41)
        for i, f in ((corner, 1.0), (inner, 0.9)):
            put(f"mouthSmile{name}", i, (0.1 * sign * f, -0.11 * f))
            put(f"mouthStretch{name}", i, (0.11 * sign * f, 0.05 * f))
        for i in near:
            put(f"mouthSmile{name}", i, (0.04 * sign, -0.05))
            put(f"mouthStretch{name}", i, (0.04 * sign, 0.02))
        put(f"mouthSmile{name}", list(cheek), (0.0, -0.03))
        put(f"mouthSmile{name}", list(lower_lid), (0.0, -0.02))
        half_upper = [i for i in (49, 50, 51, 52, 53) if lm[i, 0] * sign > -0.01]
        half_lower = [i for i in (55, 56, 57, 58, 59) if lm[i, 0] * sign > -0.01]
        put(f"mouthPress{name}", half_upper, (0.0, 0.04))
        put(f"mouthPress{name}", half_lower, (0.0, -0.04))
    put("mouthRollUpper", [49, 50, 51, 52, 53], (0.0, 0.06))
    put("mouthRollUpper", [61, 62, 63], (0.0, 0.01))
    put("mouthRollLower", [55, 56, 57, 58, 59], (0.0, -0.06))
    # eyelids: a blink brings each upper lid onto its lower lid
    for name, side in (("Left", "left"), ("Right", "right")):
        for up, low in LID_PAIRS[side]:
            put(f"eyeBlink{name}", up, (lm[low] - lm[up]) + (0.0, -0.01))
            put(f"eyeBlink{name}", low, (0.0, -0.01))
            put(f"eyeSquint{name}", low, (0.0, -0.05))
            put(f"eyeSquint{name}", up, (0.0, 0.02))
    # brows
    put("browInnerUp", [21, 22], (0.0, -0.14))
    put("browInnerUp", [20, 23], (0.0, -0.08))
    for name, brow, lids in (("Left", (22, 23, 24, 25, 26), (43, 44)), ("Right", (21, 20, 19, 18, 17), (38, 37))):
        for k, i in enumerate(brow):
            put(f"browDown{name}", i, (-0.04 * _side(lm, i) * (k == 0), 0.1 - 0.01 * k))
        put(f"browDown{name}", list(lids), (0.0, 0.02))
        put(f"browOuterUp{name}", [brow[3], brow[4]], (0.0, -0.14))
        put(f"browOuterUp{name}", brow[2], (0.0, -0.07))
    return b


class FaceRig:
    """The mesh of one portrait (size x size pixels, 68 landmarks in its pixels) and its motion fields."""

    def __init__(self, landmarks: np.ndarray, size: int, drawn_lids: bool = False) -> None:
        """`drawn_lids`: blinks leave the mesh alone and are drawn instead (the renderer does so for flat-shaded
        drawings, whose brows often touch the eyes: there is no lid skin to stretch)."""
        lm_px = np.asarray(landmarks, np.float64)
        self.size = size
        self.centre, self.iod, roll = eye_frame(lm_px)
        c, s = np.cos(roll), np.sin(roll)
        self.to_px = np.array([[c, -s], [s, c]]) * self.iod            # face frame -> pixel offsets
        self.to_face = np.linalg.inv(self.to_px)
        self.lm = (lm_px - self.centre) @ self.to_face.T                # rest landmarks, face frame
        self._extra_rest = np.array([e.position(self.lm) for e in EXTRAS])
        extra = self._extra_rest
        head = np.concatenate([self.lm, extra])
        border = _border_points(size)
        self.rest = np.concatenate([head @ self.to_px.T + self.centre, border])   # [V, 2] pixels
        self.num_vertices = len(self.rest)
        self.depth = np.concatenate([_landmark_depth(), [e.depth for e in EXTRAS]])
        self.head_weight = np.concatenate([np.ones(N_LM), [e.head for e in EXTRAS]])
        basis = blendshape_basis(self.lm)                                # [K, 68, 2]
        self.drawn_lids = drawn_lids
        if drawn_lids:
            basis[[INDEX["eyeBlinkLeft"], INDEX["eyeBlinkRight"]]] = 0.0
        follow = np.stack([basis[:, e.anchor] * e.follow for e in EXTRAS], axis=1)
        self.basis = np.concatenate([basis, follow], axis=1)            # [K, N_HEAD, 2] face units
        self.rest_gap = self.mouth_gap(head)
        self._pairs = list(zip(UPPER_INNER, LOWER_INNER)) + [pair for v in LID_PAIRS.values() for pair in v]
        self._overlap = [min(0.0, head[lo, 1] - head[up, 1]) for up, lo in self._pairs]
        self._teeth_slack = [(min(0.0, head[tu, 1] - head[up, 1]), min(0.0, head[lo, 1] - head[tl, 1]))
                             for up, lo, tu, tl in zip(UPPER_INNER, LOWER_INNER, TEETH_UP, TEETH_LO)]
        self.triangles = _triangulate(self._held_apart(head) @ self.to_px.T + self.centre, border)

    @staticmethod
    def mouth_gap(head: np.ndarray) -> float:
        """Mean vertical distance (face units) between the inner lips' paired points (0 for a closed mouth) of head
        vertices [N_HEAD, 2] in the face frame."""
        return float(np.mean([head[lo, 1] - head[up, 1] for up, lo in zip(UPPER_INNER, LOWER_INNER)]))

    @staticmethod
    def new_gap(head: np.ndarray) -> float:
        """Mean opening (face units) between the two copies of the teeth line: how much further the mouth is open
        than in the portrait (0 at rest)."""
        return float(np.mean([head[lo, 1] - head[up, 1] for up, lo in zip(TEETH_UP, TEETH_LO)]))

    def _held_apart(self, head: np.ndarray) -> np.ndarray:
        """The head vertices with lips, teeth line and lids pulled at least MIN_GAP apart (for the triangulation
        only): top to bottom, upper inner lip, upper teeth line, lower teeth line, lower inner lip."""
        h = head.copy()
        for k, (up, lo) in enumerate(zip(UPPER_INNER, LOWER_INNER)):
            mid = (h[up, 1] + h[lo, 1]) / 2
            half = max(1.5 * MIN_GAP, (h[lo, 1] - h[up, 1]) / 2)
            h[up, 1], h[lo, 1] = mid - half, mid + half
            h[TEETH_UP[k], 1], h[TEETH_LO[k], 1] = mid - MIN_GAP / 2, mid + MIN_GAP / 2
        for pairs in LID_PAIRS.values():
            for up, lo in pairs:
                gap = h[lo, 1] - h[up, 1]
                if gap < MIN_GAP:
                    h[up, 1] -= (MIN_GAP - gap) / 2
                    h[lo, 1] += (MIN_GAP - gap) / 2
        return h

    def face_points(self, frame: np.ndarray) -> np.ndarray:
        """The head vertices in the face frame for one motion frame, before the head pose: [N_HEAD, 2]."""
        w = np.asarray(frame[:NUM_BLENDSHAPES], np.float64)
        pts = np.concatenate([self.lm, self._extra_rest])
        pts = pts + np.tensordot(w, self.basis, axes=1)
        for up, lo in zip(TEETH_UP, TEETH_LO):         # the teeth line never crosses: it meets in the middle
            if pts[lo, 1] < pts[up, 1]:
                pts[up, 1] = pts[lo, 1] = (pts[up, 1] + pts[lo, 1]) / 2
        # nor do the lips or the lids close further than they touch (or than they overlap in the portrait itself)
        for (up, lo), allow in zip(self._pairs, self._overlap):
            if pts[lo, 1] - pts[up, 1] < allow:
                mid = (pts[up, 1] + pts[lo, 1]) / 2
                pts[up, 1], pts[lo, 1] = mid - allow / 2, mid + allow / 2
        for k, (up, lo, tu, tl) in enumerate(zip(UPPER_INNER, LOWER_INNER, TEETH_UP, TEETH_LO)):   # teeth line inside
            slack_up, slack_lo = self._teeth_slack[k]
            pts[tu, 1] = max(pts[tu, 1], pts[up, 1] + slack_up)
            pts[tl, 1] = max(min(pts[tl, 1], pts[lo, 1] - slack_lo), pts[tu, 1])
        return pts

    def pose(self, face_pts: np.ndarray, yaw: float, pitch: float, roll: float, dx: float, dy: float
             ) -> np.ndarray:
        """Head vertices (face frame) turned by yaw/pitch/roll (degrees) and shifted by dx/dy (face widths),
        each by its head weight -> pixels [N_HEAD, 2]."""
        ya, pi, ro = np.radians([yaw, pitch, roll])
        x, y = face_pts[:, 0] - PIVOT[0], face_pts[:, 1] - PIVOT[1]
        z = self.depth - PIVOT[2]
        x1 = x * np.cos(ya) - z * np.sin(ya)
        z1 = x * np.sin(ya) + z * np.cos(ya)
        y1 = y * np.cos(pi) + z1 * np.sin(pi)
        x2 = x1 * np.cos(ro) - y1 * np.sin(ro)
        y2 = x1 * np.sin(ro) + y1 * np.cos(ro)
        face_w = float(self.lm[16, 0] - self.lm[0, 0])
        moved = np.stack([x2 + PIVOT[0] + dx * face_w, y2 + PIVOT[1] + dy * face_w], axis=1)
        posed = face_pts + self.head_weight[:, None] * (moved - face_pts)
        return posed @ self.to_px.T + self.centre

    def vertices(self, frame: np.ndarray, face: np.ndarray | None = None) -> np.ndarray:
        """Every vertex's pixel position [V, 2] for one motion frame (channels of sdk.protocol.MOTION_CHANNELS);
        `face`: its `face_points`, when the caller has them already."""
        f = np.asarray(frame, np.float64)
        k = NUM_BLENDSHAPES
        head = self.pose(self.face_points(f) if face is None else face, f[k], f[k + 1], f[k + 2], f[k + 3], f[k + 4])
        return np.concatenate([head, self.rest[N_HEAD:]])


def _border_points(size: int, per_side: int = 4) -> np.ndarray:
    t = np.linspace(0.0, size - 1.0, per_side + 1)[:-1]
    e = size - 1.0
    return np.concatenate([np.stack([t, np.zeros_like(t)], 1), np.stack([np.full_like(t, e), t], 1),
                           np.stack([e - t, np.full_like(t, e)], 1), np.stack([np.zeros_like(t), e - t], 1)])


def _triangulate(head_px: np.ndarray, border: np.ndarray) -> np.ndarray:
    """Delaunay triangles (int32 [T, 3] vertex indices) over head vertices + border points (OpenCV's Subdiv2D)."""
    import cv2

    pts = np.concatenate([head_px, border])
    lo, hi = pts.min(0) - 10, pts.max(0) + 10
    sub = cv2.Subdiv2D((int(lo[0]), int(lo[1]), int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1))
    index: dict[tuple[float, float], int] = {}
    for i, p in enumerate(pts):
        key = (float(np.float32(p[0])), float(np.float32(p[1])))
        if key not in index:
            index[key] = i
            sub.insert((key[0], key[1]))
    tris = []
    for t in sub.getTriangleList():
        ids = [index.get((float(np.float32(t[k])), float(np.float32(t[k + 1])))) for k in (0, 2, 4)]
        if None not in ids:
            tris.append(ids)
    return np.asarray(tris, np.int32)
