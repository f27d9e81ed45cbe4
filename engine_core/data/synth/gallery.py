"""Built-in characters for users: fixed, named identities from the same generator as the corpus."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine_core.data.synth.characters import IdentityParams
from engine_core.data.synth.draw import landmarks68
from engine_core.data.synth.identities import identity_params
from engine_core.data.synth.render import render_portrait as _render, write_png

# name -> identity id (ids with id % 10 != 0: identities the default model has trained on)
_GALLERY: list[tuple[str, int]] = [
    ("Ada", 101), ("Bruno", 213), ("Chloe", 327), ("Dev", 432), ("Esme", 548), ("Farid", 651),
    ("Gia", 764), ("Hugo", 879), ("Ines", 983), ("Jonas", 1097), ("Kemi", 1203), ("Luca", 1316),
]


@dataclass(frozen=True)
class GalleryCharacter:
    """A named built-in character: `id` is a slug, `params` its full identity."""

    id: str
    name: str
    params: IdentityParams


def gallery_characters() -> list[GalleryCharacter]:
    """The 12 built-in characters, in a fixed order."""
    return [GalleryCharacter(id=name.lower(), name=name, params=identity_params(iid)) for name, iid in _GALLERY]


def render_portrait(char: GalleryCharacter) -> np.ndarray:
    """uint8 [256,256,3] RGB portrait (neutral closed mouth, eyes open)."""
    return _render(char.params)


def write_gallery(out_dir: Path) -> list[Path]:
    """Write `<id>.png` per character and `gallery.json` (id, name, file, identity id, its 68 landmarks from the
    drawing's own geometry) into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths, index = [], []
    for ch in gallery_characters():
        p = out / f"{ch.id}.png"
        write_png(p, render_portrait(ch))
        paths.append(p)
        points = [[round(float(v), 2) for v in pt] for pt in landmarks68(ch.params)]
        index.append({"id": ch.id, "name": ch.name, "file": p.name, "identity": ch.params.identity_id,
                      "landmarks": points})
    rows = ",\n".join(" " + json.dumps(e) for e in index)
    (out / "gallery.json").write_text("[\n" + rows + "\n]\n", encoding="utf-8")
    return paths
