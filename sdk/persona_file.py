"""The persona file: one JSON document per persona, written by the studio and read by every client.

It holds the fields of `sdk.protocol.Persona` plus ``portrait``, the path of the identity image (absolute, or
relative to the file's folder) or null, and ``face_points`` (five [x, y] points placing the face in that image
where it cannot be found; usually null); a plain protocol Persona document is a valid persona file too::

    {"name": "Ada", "system_prompt": "...", "greeting": "Hi!", "voice": "joe", "model": "tiny",
     "character": null, "portrait": "/home/me/ada.png"}

The studio (studio_gui/personas.py) stores its library in this format, the OBS bridge's ``--persona`` reads
it, and the Unity bridge reads it in C# (plugins/unity_bridge/Runtime/Core/PersonaFile.cs).
"""

from __future__ import annotations

import json

from pydantic import ConfigDict, Field, ValidationError

from sdk.protocol import Persona


class PersonaFileError(ValueError):
    """A persona file could not be read, written, or named (the message says why)."""


class StoredPersona(Persona):
    """A protocol `Persona` plus the path of its identity portrait (what a persona file holds)."""

    model_config = ConfigDict(extra="forbid")
    portrait: str | None = Field(default=None, max_length=4096)
    # Where the portrait's face cannot be found: five [x, y] points in its pixels (eye centres, nose tip, mouth
    # corners, each pair left to right in the picture), sent with the session's `open`.
    face_points: list[tuple[float, float]] | None = Field(default=None, min_length=5, max_length=5)

    def to_persona(self) -> Persona:
        """The wire-level persona (drops the local portrait path and its face points)."""
        return Persona(**self.model_dump(exclude={"portrait", "face_points"}))


def parse_persona(data: bytes | str) -> StoredPersona:
    """Parse a persona JSON document; raises PersonaFileError with the reason."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PersonaFileError(f"not a JSON persona file: {exc}") from exc
    if not isinstance(raw, dict):
        raise PersonaFileError("a persona file must hold a JSON object")
    if raw.get("portrait") is not None and not isinstance(raw["portrait"], str):
        raise PersonaFileError('"portrait" must be a path or null')
    try:
        return StoredPersona.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "persona"
        raise PersonaFileError(f"invalid persona: {where}: {first['msg']}") from exc


__all__ = ["PersonaFileError", "StoredPersona", "parse_persona"]
