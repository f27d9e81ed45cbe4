"""One-click exports of a persona for OBS and for Unity: the files those plugins load (no Qt here).

Nothing the studio only has for a while goes into them: not the preview daemon's address (a free port of a
process that ends with the studio) nor its live session id. Where the daemon is, is the plugin's own setting
(the OBS script's "Daemon", the Unity component's "Control Endpoint"). Both copy the persona's portrait into
the export folder as ``<slug>.portrait.<ext>`` and name it relatively, so the folder is self-contained and
can be moved; the studio's Import… reads either file back with its portrait.

OBS (`export_obs`) writes ``<slug>.json``, a persona file (`sdk.persona_file`: the `Persona` fields plus
``portrait``). The OBS script's "Persona (JSON)" setting takes it (plugins/obs_source/obs_script/
xstreamer_obs.py); its bridge (``xstreamer obs --persona FILE``) reads the persona and the portrait beside it.

Unity (`export_unity`) writes ``<slug>.unity.json``, what `AvatarStreamClient.settingsFile` loads
(plugins/unity_bridge/Runtime/Core/PersonaFile.cs): ``{"format": "xstreamer-unity", "version": 1,
"client_name", "persona": {...}, "portrait_path": str|null, "portrait_base64": str|null, "face_points": five
[x, y] points|null, "jitter_target_ms", "output_sample_rate"}``, plus ``control_endpoint`` only when the caller
names a daemon (the studio does not).
``portrait_path`` is the copied image's name, relative to the JSON file; ``portrait_base64`` embeds the same
bytes (a TextAsset works without the image beside it).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from .personas import StoredPersona, copy_portrait_beside, slugify


class ExportError(ValueError):
    """An export could not be written (the message says why)."""


def _portrait(persona: StoredPersona) -> Path | None:
    if not persona.portrait:
        return None
    path = Path(persona.portrait)
    if not path.is_file():
        raise ExportError(f"the portrait {path} of {persona.name!r} does not exist any more; choose it again")
    return path


def _copy_portrait(persona: StoredPersona, folder: Path) -> str | None:
    """Copy the portrait into `folder`; its file name there (relative), or None without a portrait."""
    src = _portrait(persona)
    if src is None:
        return None
    try:
        return copy_portrait_beside(src, folder, slugify(persona.name))
    except OSError as exc:
        raise ExportError(f"cannot copy the portrait {src} into {folder}: {exc.strerror or exc}") from exc


def _write(path: Path, data: dict) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def export_obs(persona: StoredPersona, folder: str | Path) -> Path:
    """Write ``<slug>.json`` (the persona file the OBS script's "Persona (JSON)" setting takes) and the
    portrait's copy into `folder`; returns the persona file's path."""
    folder = Path(folder)
    portrait = _copy_portrait(persona, folder)
    stored = persona.model_copy(update={"portrait": portrait})
    return _write(folder / f"{slugify(persona.name)}.json", stored.model_dump())


def unity_settings(persona: StoredPersona, *, daemon: str | None = None, embed_portrait: bool = True,
                   portrait_file: str | None = None, jitter_target_ms: int = 160,
                   output_sample_rate: int = 48000) -> dict:
    """The Unity component's settings document for `persona` (see the module docstring). `portrait_file` is
    the ``portrait_path`` to write (the copy's relative name); by default the portrait's absolute path.
    `daemon` is written as ``control_endpoint`` only when given."""
    portrait = _portrait(persona)
    doc = {
        "format": "xstreamer-unity", "version": 1,
        "client_name": "xstreamer-unity/0.1.0",
        "persona": persona.to_persona().model_dump(),
        "portrait_path": (portrait_file or str(portrait.resolve())) if portrait else None,
        "portrait_base64": base64.b64encode(portrait.read_bytes()).decode("ascii")
        if portrait and embed_portrait else None,
        # where the portrait's face cannot be found: its five points (the Unity client sends them with open)
        "face_points": [list(p) for p in persona.face_points] if portrait and persona.face_points else None,
        "jitter_target_ms": int(jitter_target_ms),
        "output_sample_rate": int(output_sample_rate),
    }
    if daemon:
        doc["control_endpoint"] = daemon
    return doc


def export_unity(persona: StoredPersona, folder: str | Path, *, daemon: str | None = None,
                 embed_portrait: bool = True) -> Path:
    """Write ``<slug>.unity.json`` and the portrait's copy into `folder`; returns the JSON file's path."""
    folder = Path(folder)
    data = unity_settings(persona, daemon=daemon, embed_portrait=embed_portrait,
                          portrait_file=_copy_portrait(persona, folder))
    return _write(folder / f"{slugify(persona.name)}.unity.json", data)
