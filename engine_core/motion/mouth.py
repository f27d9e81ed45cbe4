"""What a warp cannot take from the portrait: the inside of a mouth that opens wider than in the picture, and the
lash line of a closing eyelid.

The mouth's inside is drawn in the new opening, between the two copies of the rig's teeth line (an anti-aliased
polygon): a dark cavity, shadowed under the upper lip, the upper teeth's edge and, once the mouth is well open, the
lower teeth's and the tongue at the bottom, shaded darker towards the corners, softened by a slight blur and scaled
to the portrait's exposure (its cheeks' brightness) so it sits in a dim photo as in a bright drawing. Where the
portrait already shows teeth between its lips, they move with their lips and only the dark cavity is drawn.
"""

from __future__ import annotations

import cv2
import numpy as np

from engine_core.motion.rig import TEETH_LO, TEETH_UP

UPPER_CHAIN = (60, *TEETH_UP, 64)
LOWER_CHAIN = (60, *TEETH_LO, 64)
CAVITY = np.array([58.0, 14.0, 22.0])
TEETH = np.array([242.0, 232.0, 212.0])
LOWER_TEETH = np.array([222.0, 210.0, 188.0])
TONGUE = np.array([132.0, 46.0, 56.0])
FLAT_INTERIOR = np.array([42.0, 10.0, 18.0])   # a drawing's open mouth (the corpus's drawn characters use it)
SHOWS_TEETH = 0.06            # a portrait whose lips are this far apart (iod units) already shows its teeth
SUB = 4


def smooth_chain(pts: np.ndarray, samples: int = 6) -> np.ndarray:
    """A Catmull-Rom curve through the points (end points repeated), `samples` points per segment -> [m, 2]."""
    p = np.concatenate([pts[:1], pts, pts[-1:]])
    t = np.linspace(0.0, 1.0, samples, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
    out.append(pts[-1:])
    return np.concatenate(out)


def _chain_y(pts: np.ndarray, x: np.ndarray) -> np.ndarray:
    order = np.argsort(pts[:, 0])
    return np.interp(x, pts[order, 0], pts[order, 1])


def draw_mouth(out: np.ndarray, verts: np.ndarray, rig, gap: float, skin: np.ndarray,  # noqa: ANN001
               flat: bool = False) -> None:
    """Draw the mouth's inside into `out` (uint8 [S, S, C], in place) for vertex positions `verts` (pixels) whose
    teeth line is open by `gap` (face units); `rig` is the portrait's FaceRig, `skin` its cheeks' RGB. `flat`: a
    flat-shaded drawing's mouth, one dark colour (as such drawings draw it)."""
    upper_curve = smooth_chain(verts[list(UPPER_CHAIN)])
    lower_curve = smooth_chain(verts[list(LOWER_CHAIN)])
    inner = np.concatenate([upper_curve, lower_curve[::-1][1:-1]])
    x0, y0 = np.floor(inner.min(0)).astype(int) - 1
    x1, y1 = np.ceil(inner.max(0)).astype(int) + 2
    s = out.shape[0]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(s, x1), min(s, y1)
    if x1 - x0 < 2 or y1 - y0 < 1:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    poly = np.round((inner - [x0, y0]) * (1 << SUB)).astype(np.int32)
    cv2.fillPoly(mask, [poly], 255, lineType=cv2.LINE_AA, shift=SUB)
    if not mask.any():
        return
    xs = np.arange(x0, x1, dtype=np.float64) + 0.0
    ys = np.arange(y0, y1, dtype=np.float64)[:, None]
    top = _chain_y(upper_curve, xs)[None, :]
    bottom = _chain_y(lower_curve, xs)[None, :]
    height = np.maximum(bottom - top, 1e-3)
    v = np.clip((ys - top) / height, 0.0, 1.0)                        # 0 at the upper lip, 1 at the lower
    left, right = verts[60, 0], verts[64, 0]
    u = np.clip((xs[None, :] - (left + right) / 2) / max(1e-3, (right - left) / 2), -1.0, 1.0)
    iod = rig.iod
    if flat:
        colour = np.broadcast_to(FLAT_INTERIOR, (y1 - y0, x1 - x0, 3)).astype(np.float32)
        _blend(out, (x0, y0, x1, y1), colour, mask)
        return
    depth_px = ys - top                                                 # pixels below the upper edge
    corner = np.clip(1.0 - np.abs(u) ** 2.5, 0.0, 1.0)
    colour = CAVITY * (0.55 + 0.45 * np.clip(v * 1.6, 0, 1))[..., None] * (0.6 + 0.4 * corner)[..., None]
    if gap > 0.22:                                                      # the tongue, at the bottom of a wide mouth
        tongue = np.clip(1.0 - ((u / 0.65) ** 2 + ((v - 1.1) / 0.4) ** 2), 0.0, 1.0) ** 0.5
        tongue *= np.clip((gap - 0.22) / 0.12, 0.0, 1.0)
        shade = TONGUE * (0.7 + 0.3 * corner)[..., None]
        colour = colour * (1 - tongue[..., None]) + shade * tongue[..., None]
    if rig.rest_gap < SHOWS_TEETH:                                      # teeth the portrait does not show
        teeth_h = min(0.09 * iod, 0.35 * gap * iod)
        upper = np.clip((teeth_h - depth_px) / 1.2, 0.0, 1.0) * np.clip((0.85 - np.abs(u)) / 0.15, 0.0, 1.0)
        tooth = TEETH * (0.7 + 0.3 * corner)[..., None] * (0.88 + 0.12 * np.clip(depth_px / max(teeth_h, 1e-3),
                                                                                   0, 1))[..., None]
        colour = colour * (1 - upper[..., None]) + tooth * upper[..., None]
        low_h = min(0.05 * iod, max(0.0, 0.25 * (gap - 0.2) * iod))
        if low_h > 0.3:
            lower = np.clip((low_h - (bottom - ys)) / 1.2, 0.0, 1.0) * np.clip((0.6 - np.abs(u)) / 0.15, 0.0, 1.0)
            colour = colour * (1 - lower[..., None]) + LOWER_TEETH * (0.6 + 0.4 * corner)[..., None] * lower[..., None]
    exposure = np.clip(float(skin @ [0.299, 0.587, 0.114]) / 165.0, 0.45, 1.15)
    colour = cv2.GaussianBlur((colour * exposure).astype(np.float32), (0, 0), max(0.5, 0.008 * iod))
    _blend(out, (x0, y0, x1, y1), colour, mask)


def _blend(out: np.ndarray, box: tuple[int, int, int, int], colour: np.ndarray, mask: np.ndarray) -> None:
    x0, y0, x1, y1 = box
    a = (mask.astype(np.float32) / 255.0)[..., None]
    patch = out[y0:y1, x0:x1]
    rgb = patch[..., :3].astype(np.float32)
    patch[..., :3] = np.clip(rgb * (1 - a) + colour * a, 0, 255).astype(np.uint8)
    if patch.shape[2] == 4:
        patch[..., 3] = np.maximum(patch[..., 3], (a[..., 0] * 255).astype(np.uint8))


def draw_lashes(out: np.ndarray, verts: np.ndarray, pairs, amount: float, iod: float) -> None:  # noqa: ANN001
    """A dark line along a closing upper lid (the corners and the upper lid's points), `amount` in [0, 1]."""
    (a, _), (b, _) = pairs
    corner_a, corner_b = (36, 39) if a < 42 else (42, 45)
    line = verts[[corner_a, a, b, corner_b]]
    thick = max(1, int(round(0.035 * iod)))
    x0, y0 = np.floor(line.min(0)).astype(int) - thick - 2
    x1, y1 = np.ceil(line.max(0)).astype(int) + thick + 3
    s = out.shape[0]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(s, x1), min(s, y1)
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    pts = np.round((line - [x0, y0]) * (1 << SUB)).astype(np.int32)
    cv2.polylines(mask, [pts], False, 255, thickness=thick, lineType=cv2.LINE_AA, shift=SUB)
    alpha = (mask.astype(np.float32) / 255.0 * 0.8 * amount)[..., None]
    patch = out[y0:y1, x0:x1, :3].astype(np.float32)
    dark = patch * 0.25
    out[y0:y1, x0:x1, :3] = np.clip(patch * (1 - alpha) + dark * alpha, 0, 255).astype(np.uint8)


def draw_lid(out: np.ndarray, head: np.ndarray, pairs, blink: float, skin: np.ndarray, line: np.ndarray,  # noqa: ANN001
             iod: float) -> None:
    """A drawn closing lid: skin from just above the eye's rest upper edge down to `blink` of the way to its lower
    lid, with a line along its edge (a flat-shaded drawing's closed eye). `head`: head vertices in pixels."""
    (a, la), (b, lb) = pairs
    left, right = (36, 39) if a < 42 else (42, 45)
    top = smooth_chain(head[[left, a, b, right]])
    low = smooth_chain(head[[left, la, lb, right]])
    lid = top + blink * (low - top)
    lift = 0.05 * iod * np.sin(np.linspace(0.0, np.pi, len(top)))[:, None] * np.array([[0.0, 1.0]])
    poly = np.concatenate([top - lift, lid[::-1]])
    x0, y0 = np.floor(poly.min(0)).astype(int) - 2
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 3
    s = out.shape[0]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(s, x1), min(s, y1)
    if x1 <= x0 or y1 <= y0:
        return
    fill = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(fill, [np.round((poly - [x0, y0]) * (1 << SUB)).astype(np.int32)], 255, cv2.LINE_AA, SUB)
    edge = np.zeros_like(fill)
    thick = max(1, int(round(0.05 * iod)))
    cv2.polylines(edge, [np.round((lid - [x0, y0]) * (1 << SUB)).astype(np.int32)], False, 255, thick, cv2.LINE_AA,
                  SUB)
    patch = out[y0:y1, x0:x1, :3].astype(np.float32)
    a_fill = (fill.astype(np.float32) / 255.0)[..., None]
    a_edge = (edge.astype(np.float32) / 255.0 * min(1.0, blink * 1.5))[..., None]
    patch = patch * (1 - a_fill) + skin * a_fill
    patch = patch * (1 - a_edge) + line * a_edge
    out[y0:y1, x0:x1, :3] = np.clip(patch, 0, 255).astype(np.uint8)
