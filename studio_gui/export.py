"""One-click exports of a persona for OBS and for Unity (plain JSON files; no Qt here).

Both copy the persona's portrait into the export folder as ``<slug>.portrait.<ext>``, so the folder is
self-contained and can be moved; the studio's Import… reads either JSON file back with its portrait.

OBS (`export_obs`) writes into a folder:
  * ``<slug>.persona.json`` - the wire-level `Persona` (what ``xstreamer obs --persona FILE`` loads);
  * ``<slug>.obs.json`` - ``{"format": "xstreamer-obs", "version": 1, "persona_name", "persona_file",
    "portrait", "obs_script_settings": {...}, "browser_source": {"url", "width", "height", "reroute_audio",
    "css"}, "bridge_command": [...]}``. ``persona_file`` and ``portrait`` are relative to the JSON file.
    ``obs_script_settings`` holds exactly the keys of plugins/obs_source/obs_script/xstreamer_obs.py
    (daemon, persona, portrait, bridge_port, width, height, xstreamer); its paths (and the bridge
    command's) are absolute paths of the copied files, because the script hands them verbatim to a bridge
    process that runs in OBS's working directory. The Browser Source URL is ``http://127.0.0.1:<port>/``
    with ``?session=<id>`` when attaching to a live session.

Unity (`export_unity`) writes ``<slug>.unity.json``, field for field the bridge's `AvatarStreamOptions`:
  ``{"format": "xstreamer-unity", "version": 1, "control_endpoint", "client_name", "persona": {...},
  "portrait_path": str|null, "portrait_base64": str|null, "jitter_target_ms", "output_sample_rate"}``.
  ``portrait_path`` is the copied image's name, relative to the JSON file; ``portrait_base64`` embeds the
  same bytes.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

from sdk.protocol.constants import DEFAULT_CONTROL

from .personas import StoredPersona, copy_portrait_beside, slugify

DEFAULT_DAEMON = DEFAULT_CONTROL
DEFAULT_BRIDGE_PORT = 8765
PAGE_CSS = "body { background-color: rgba(0, 0, 0, 0); margin: 0px auto; overflow: hidden; }"


class ExportError(ValueError):
    """An export could not be written (the message says why)."""


def browser_source_url(port: int = DEFAULT_BRIDGE_PORT, session: str | None = None) -> str:
    """The OBS Browser Source URL of the `xstreamer obs` bridge (attached to `session` when given)."""
    if not 1 <= int(port) <= 65535:
        raise ExportError(f"bridge port {port} is not a TCP port")
    return f"http://127.0.0.1:{int(port)}/" + (f"?session={session}" if session else "")


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


def export_obs(persona: StoredPersona, folder: str | Path, *, daemon: str = DEFAULT_DAEMON,
               port: int = DEFAULT_BRIDGE_PORT, session: str | None = None, width: int = 256,
               height: int = 256) -> tuple[Path, Path]:
    """Write the OBS settings and the persona file into `folder`; returns (settings path, persona path)."""
    folder = Path(folder)
    slug = slugify(persona.name)
    url = browser_source_url(port, session)
    portrait = _copy_portrait(persona, folder)
    portrait_abs = str((folder / portrait).resolve()) if portrait else ""
    persona_path = _write(folder / f"{slug}.persona.json", persona.to_persona().model_dump())
    exe = shutil.which("xstreamer") or "xstreamer"
    command = [exe, "obs", "--connect", daemon, "--port", str(port), "--persona", str(persona_path.resolve())]
    if portrait:
        command += ["--portrait", portrait_abs]
    if session:
        command += ["--session", session]
    settings = {
        "format": "xstreamer-obs", "version": 1,
        "persona_name": persona.name,
        "persona_file": persona_path.name,
        "portrait": portrait,
        "obs_script_settings": {
            "daemon": daemon, "persona": str(persona_path.resolve()),
            "portrait": portrait_abs,
            "bridge_port": int(port), "width": int(width), "height": int(height), "xstreamer": exe,
        },
        "browser_source": {"url": url, "width": int(width), "height": int(height), "reroute_audio": True,
                           "css": PAGE_CSS},
        "bridge_command": command,
    }
    return _write(folder / f"{slug}.obs.json", settings), persona_path


def unity_settings(persona: StoredPersona, *, daemon: str = DEFAULT_DAEMON, embed_portrait: bool = True,
                   portrait_file: str | None = None, jitter_target_ms: int = 160,
                   output_sample_rate: int = 48000) -> dict:
    """The Unity bridge's settings document for `persona` (see the module docstring). `portrait_file` is
    the ``portrait_path`` to write (the copy's relative name); by default the portrait's absolute path."""
    portrait = _portrait(persona)
    return {
        "format": "xstreamer-unity", "version": 1,
        "control_endpoint": daemon,
        "client_name": "xstreamer-unity/0.1.0",
        "persona": persona.to_persona().model_dump(),
        "portrait_path": (portrait_file or str(portrait.resolve())) if portrait else None,
        "portrait_base64": base64.b64encode(portrait.read_bytes()).decode("ascii")
        if portrait and embed_portrait else None,
        "jitter_target_ms": int(jitter_target_ms),
        "output_sample_rate": int(output_sample_rate),
    }


def export_unity(persona: StoredPersona, folder: str | Path, *, daemon: str = DEFAULT_DAEMON,
                 embed_portrait: bool = True) -> Path:
    """Write ``<slug>.unity.json`` and the portrait's copy into `folder`; returns the JSON file's path."""
    folder = Path(folder)
    data = unity_settings(persona, daemon=daemon, embed_portrait=embed_portrait,
                          portrait_file=_copy_portrait(persona, folder))
    return _write(folder / f"{slugify(persona.name)}.unity.json", data)
