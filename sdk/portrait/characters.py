"""The built-in characters: PNGs shipped once, in `sdk/portrait/gallery/`, read by the engine and the studio alike.

`gallery.json` lists each character's id (what `Persona.character` holds), display name, file, the corpus identity
it was drawn from and its 68 landmarks, from the drawing's own geometry (dlib's landmark model, trained on photos,
places a drawn mouth too low and its big eyes too small). `xstreamer data gallery --out sdk/portrait/gallery`
writes both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from sdk.portrait.errors import PortraitError

if TYPE_CHECKING:
    from sdk.portrait import Portrait

GALLERY_DIR = Path(__file__).resolve().parent / "gallery"


@dataclass(frozen=True)
class Character:
    """A built-in character: `id` (a slug), display `name`, its PNG `file`, the corpus `identity` id and its 68
    `landmarks` (pixels of the PNG)."""

    id: str
    name: str
    file: Path
    identity: int
    landmarks: tuple[tuple[float, float], ...]

    @property
    def face_points(self) -> list[list[float]]:
        """Its five face points (eye centres, nose tip, mouth corners)."""
        from sdk.portrait.template import five_points

        return five_points(np.array(self.landmarks)).tolist()

    def portrait(self, size: int = 256) -> "Portrait":
        """The character as a Portrait at `size`, with its own landmarks."""
        from sdk.portrait import load_portrait

        return load_portrait(self.file, landmarks=self.landmarks, size=size)


def characters(folder: Path = GALLERY_DIR) -> list[Character]:
    """The characters listed in `folder`/gallery.json, in its order."""
    entries = json.loads((folder / "gallery.json").read_text("utf-8"))
    return [Character(str(e["id"]), str(e["name"]), folder / str(e["file"]), int(e.get("identity", -1)),
                      tuple((float(x), float(y)) for x, y in e["landmarks"])) for e in entries]


def character(char_id: str | None = None) -> Character:
    """The character `char_id` (the first one for None); PortraitError for an unknown id."""
    chars = characters()
    if char_id is None:
        return chars[0]
    for c in chars:
        if c.id == char_id:
            return c
    raise PortraitError(f"unknown built-in character {char_id!r}; known: {', '.join(c.id for c in chars)}")
