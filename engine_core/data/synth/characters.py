"""The identity parameter space of the procedural characters: one seeded draw per identity id.

`sample_identity(identity_id, attempt)` is a pure function of its arguments (and of `IDENTITY_SPACE_VERSION`);
`identities.identity_params(identity_id)` picks the first draw the face detector accepts, so an identity is the
same character in every corpus, in the gallery and in evaluation. Colours are RGB uint8 tuples;
geometry is in pixels of the 256x256 frame (head centre, radii) or relative to the head (features).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

IDENTITY_SPACE_VERSION = 1
NUM_IDENTITIES = 100_000  # ids 0 .. NUM_IDENTITIES-1; id % 10 == 0 are held out

Color = tuple[int, int, int]

SKIN_TONES: list[Color] = [
    (255, 224, 196), (250, 214, 180), (241, 194, 160), (224, 172, 130), (210, 160, 120),
    (198, 140, 100), (180, 125, 90), (160, 108, 75), (141, 94, 66), (125, 84, 60),
    (110, 76, 56), (98, 68, 52),
]
HAIR_COLORS: list[Color] = [
    (20, 16, 14), (60, 40, 28), (95, 60, 35), (140, 90, 50), (185, 140, 80), (225, 195, 130),
    (170, 60, 30), (130, 130, 135), (215, 215, 215), (60, 80, 170), (170, 60, 140), (40, 130, 90),
]
EYE_COLORS: list[Color] = [(70, 45, 25), (40, 90, 160), (60, 120, 70), (110, 80, 40), (30, 30, 30), (90, 110, 120)]
CLOTH_COLORS: list[Color] = [
    (200, 40, 40), (40, 80, 180), (40, 140, 70), (230, 180, 40), (120, 50, 150), (240, 240, 240),
    (40, 40, 45), (230, 120, 40), (60, 160, 170), (150, 110, 80), (220, 100, 150), (100, 100, 110),
]
BG_COLORS: list[Color] = [
    (205, 225, 240), (240, 225, 200), (215, 240, 215), (240, 210, 220), (230, 230, 230), (200, 200, 235),
    (120, 160, 200), (170, 200, 150), (245, 240, 190), (90, 110, 140), (180, 150, 200), (150, 190, 190),
]
LIP_COLORS: list[Color] = [(196, 96, 96), (170, 80, 80), (150, 70, 72), (205, 120, 120), (140, 72, 64)]

HAIR_STYLES = ("bald", "short", "bob", "long", "spiky", "bun", "side_part", "afro")
BG_PATTERNS = ("plain", "gradient", "stripes", "dots", "checks")
CLOTH_STYLES = ("tshirt", "collar", "vneck", "hoodie")
HATS = ("none", "none", "none", "beanie", "cap", "tophat")


@dataclass(frozen=True)
class IdentityParams:
    """Everything that makes one character look like itself (a pure function of `identity_id`)."""

    identity_id: int
    # head: centre (x, y), radii (rx, ry) in pixels; jaw narrowing 0 (oval) .. 1 (pointed chin)
    head_cx: float
    head_cy: float
    head_rx: float
    head_ry: float
    jaw: float
    skin: Color
    # eyes: vertical position as a fraction of ry above centre, spacing as fraction of rx, size in px
    eye_y: float
    eye_spacing: float
    eye_rx: float
    eye_ry: float
    eye_color: Color
    brow_thickness: int
    brow_tilt: float
    brow_color: Color
    nose_style: int        # 0 line, 1 small triangle, 2 round, 3 button
    nose_len: float        # fraction of ry
    mouth_y: float         # fraction of ry below centre
    mouth_w: float         # half-width in px
    lip_color: Color
    hair_style: str
    hair_color: Color
    cloth_style: str
    cloth_color: Color
    cloth_color2: Color
    glasses: int           # 0 none, 1 round, 2 square
    glasses_color: Color
    earrings: bool
    hat: str
    hat_color: Color
    cheeks: bool
    freckles: bool
    bg_color: Color
    bg_color2: Color
    bg_pattern: str

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @staticmethod
    def from_dict(d: dict) -> "IdentityParams":
        """Inverse of `to_dict`."""
        kw = {}
        for f in fields(IdentityParams):
            v = d[f.name]
            kw[f.name] = tuple(int(c) for c in v) if isinstance(v, list) else v
        return IdentityParams(**kw)


def _jitter(rng: np.random.Generator, c: Color, amount: int) -> Color:
    return tuple(int(np.clip(v + rng.integers(-amount, amount + 1), 0, 255)) for v in c)  # type: ignore[return-value]


def _pick(rng: np.random.Generator, seq):  # noqa: ANN001, ANN202 - small helper
    return seq[int(rng.integers(len(seq)))]




def sample_identity(identity_id: int, attempt: int = 0) -> IdentityParams:
    """One raw draw from the identity space (no detector filtering)."""
    rng = np.random.default_rng([IDENTITY_SPACE_VERSION, 7919, int(identity_id), int(attempt)])
    head_ry = float(rng.uniform(66, 78))           # head height 2*ry ~ 52-61% of 256
    head_rx = float(head_ry * rng.uniform(0.74, 0.88))
    skin = _jitter(rng, _pick(rng, SKIN_TONES), 8)
    hair_style = _pick(rng, HAIR_STYLES)
    hair_color = _jitter(rng, _pick(rng, HAIR_COLORS), 10)
    bg = _pick(rng, BG_COLORS)
    bg2 = _jitter(rng, _pick(rng, BG_COLORS), 15)
    cloth = _jitter(rng, _pick(rng, CLOTH_COLORS), 15)
    return IdentityParams(
        identity_id=int(identity_id),
        head_cx=float(128 + rng.uniform(-6, 6)),
        head_cy=float(118 + rng.uniform(-6, 6)),
        head_rx=head_rx,
        head_ry=head_ry,
        jaw=float(rng.uniform(0.0, 0.6)),
        skin=skin,
        eye_y=float(rng.uniform(0.08, 0.2)),
        eye_spacing=float(rng.uniform(0.34, 0.42)),
        eye_rx=float(rng.uniform(9.5, 13.0)),
        eye_ry=float(rng.uniform(6.5, 8.5)),
        eye_color=_jitter(rng, _pick(rng, EYE_COLORS), 10),
        brow_thickness=int(rng.integers(3, 6)),
        brow_tilt=float(rng.uniform(-0.25, 0.25)),
        brow_color=_jitter(rng, hair_color if hair_style != "bald" else (60, 45, 35), 10),
        nose_style=int(rng.integers(0, 4)),
        nose_len=float(rng.uniform(0.18, 0.28)),
        mouth_y=float(rng.uniform(0.42, 0.52)),
        mouth_w=float(rng.uniform(14, 20)),
        lip_color=_jitter(rng, _pick(rng, LIP_COLORS), 10),
        hair_style=hair_style,
        hair_color=hair_color,
        cloth_style=_pick(rng, CLOTH_STYLES),
        cloth_color=cloth,
        cloth_color2=_jitter(rng, _pick(rng, CLOTH_COLORS), 15),
        glasses=int(rng.choice([0, 0, 0, 1, 2])),
        glasses_color=_jitter(rng, _pick(rng, [(30, 30, 30), (120, 70, 30), (160, 160, 170), (150, 30, 40)]), 10),
        earrings=bool(rng.random() < 0.25),
        hat=_pick(rng, HATS),
        hat_color=_jitter(rng, _pick(rng, CLOTH_COLORS), 15),
        cheeks=bool(rng.random() < 0.3),
        freckles=bool(rng.random() < 0.15),
        bg_color=bg,
        bg_color2=bg2,
        bg_pattern=_pick(rng, BG_PATTERNS),
    )


def identity_split(identity_id: int) -> str:
    """'heldout' when `identity_id % 10 == 0`, else 'train'."""
    return "heldout" if identity_id % 10 == 0 else "train"
