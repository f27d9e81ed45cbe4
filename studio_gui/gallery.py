"""The built-in character gallery as the studio sees it: PNG files in a folder (no engine_core import).

The corpus generator exports the gallery (``xstreamer data gallery --out DIR``) as ``<id>.png`` files and an
optional ``gallery.json`` (``[{"id": "c0001", "name": "Ada"}, ...]``). The studio looks, in order, in
``<config>/gallery`` and the ``gallery/`` folder shipped inside `studio_gui` (the first folder holding PNGs
wins), or only in ``$XSTREAMER_GALLERY_DIR`` when that is set. Picking a character sets
`Persona.character` to its id.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from sdk.portrait.characters import GALLERY_DIR

from .personas import config_dir

GALLERY_ENV = "XSTREAMER_GALLERY_DIR"
EMPTY_HINT = ("No built-in characters found. Export them with `xstreamer data gallery --out DIR` and put "
              "the PNGs in the studio's config folder under gallery/ (or set XSTREAMER_GALLERY_DIR).")


@dataclass(frozen=True)
class GalleryCharacter:
    """One built-in character: `id` (what `Persona.character` holds), a display `name` and its PNG."""

    id: str
    name: str
    image: Path


def gallery_dirs() -> list[Path]:
    """Folders searched for gallery PNGs, in priority order."""
    if os.environ.get(GALLERY_ENV):          # an explicit folder is the only one searched
        return [Path(os.environ[GALLERY_ENV]).expanduser()]
    return [config_dir() / "gallery", GALLERY_DIR]


def _names(folder: Path) -> dict[str, str]:
    manifest = folder / "gallery.json"
    try:
        entries = json.loads(manifest.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if isinstance(entries, dict):
        entries = entries.get("characters", [])
    out = {}
    for e in entries if isinstance(entries, list) else []:
        if isinstance(e, dict) and "id" in e:
            out[str(e["id"])] = str(e.get("name") or e["id"])
    return out


def load_gallery(folder: Path | None = None) -> list[GalleryCharacter]:
    """Characters of `folder` (or of the first folder of `gallery_dirs()` that has PNGs), sorted by id."""
    for d in [folder] if folder is not None else gallery_dirs():
        pngs = sorted(Path(d).glob("*.png")) if Path(d).is_dir() else []
        if pngs:
            names = _names(Path(d))
            return [GalleryCharacter(p.stem, names.get(p.stem, p.stem), p) for p in pngs]
    return []


def find_character(char_id: str, characters: list[GalleryCharacter] | None = None) -> GalleryCharacter | None:
    """The gallery character with id `char_id`, or None."""
    for c in characters if characters is not None else load_gallery():
        if c.id == char_id:
            return c
    return None
