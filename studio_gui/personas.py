"""Persona library: one JSON file per persona in the user's config directory.

Layout: ``<config>/personas/<slug>.json`` where ``<config>`` is ``$XSTREAMER_CONFIG_DIR`` when set, else
``platformdirs.user_config_dir("xstreamer")``. Each file is a persona file (`sdk.persona_file`: the fields of
`sdk.protocol.Persona` plus ``portrait``, an absolute image path or null); the OBS bridge and the Unity bridge
read the same files.

Files written for someone else (`PersonaStore.export_file`, the OBS and Unity exports) travel with their
portrait: the image is copied beside them as ``<slug>.portrait.<ext>`` and referenced by that relative
name. `PersonaStore.import_file` reads persona files and the OBS/Unity export files back, resolving
relative portrait paths against the imported file's folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from sdk.persona_file import PersonaFileError, StoredPersona, parse_persona

CONFIG_ENV = "XSTREAMER_CONFIG_DIR"
MODEL_PRESETS = ("tiny", "default", "paper")
EXPORT_FORMATS = ("xstreamer-obs", "xstreamer-unity")     # the `format` of studio_gui.export's files


PersonaStoreError = PersonaFileError      # the studio's name for it (reading, writing or naming a file)


def config_dir() -> Path:
    """The studio's config directory (``$XSTREAMER_CONFIG_DIR`` overrides platformdirs)."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("xstreamer"))


def slugify(name: str) -> str:
    """File-system safe stem for a persona name: ``"Ada Lovelace!"`` -> ``"ada-lovelace"``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
    if not slug:
        raise PersonaStoreError(f"persona name {name!r} has no letters or digits to name its file")
    return slug[:80]


def copy_portrait_beside(portrait: str | Path, folder: Path, slug: str) -> str:
    """Copy `portrait` into `folder` as ``<slug>.portrait.<ext>``; returns that file name (relative to
    `folder`). OSError if it cannot be read or written."""
    src = Path(portrait)
    name = f"{slug}.portrait{src.suffix.lower() or '.png'}"
    dest = folder / name
    folder.mkdir(parents=True, exist_ok=True)
    if not (dest.exists() and dest.samefile(src)):
        shutil.copyfile(src, dest)
    return name


def persona_from_export(doc: dict, folder: Path) -> StoredPersona:
    """The persona of a Unity export (``<slug>.unity.json``) or an earlier studio's OBS settings file
    (``<slug>.obs.json``, no longer written); relative paths are resolved against `folder`. PersonaStoreError if the document is incomplete."""
    portrait: str | None
    if doc.get("format") == "xstreamer-unity":
        fields, portrait = doc.get("persona"), doc.get("portrait_path")
    else:
        settings = doc.get("obs_script_settings") or {}
        persona_file = doc.get("persona_file") or settings.get("persona")
        if not persona_file:
            raise PersonaStoreError("the OBS export names no persona file")
        try:
            fields = json.loads((folder / persona_file).read_bytes())
        except (OSError, ValueError) as exc:
            raise PersonaStoreError(f"cannot read the OBS export's persona file {persona_file}: "
                                    f"{exc}") from exc
        portrait = doc.get("portrait") or settings.get("portrait") or None
    if not isinstance(fields, dict):
        raise PersonaStoreError("the export holds no persona")
    return parse_persona(json.dumps({**fields, "portrait": portrait}))


def _read_persona_or_export(data: bytes, folder: Path) -> StoredPersona:
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raw = None
    if isinstance(raw, dict) and raw.get("format") in EXPORT_FORMATS:
        return persona_from_export(raw, folder)
    return parse_persona(data)


class PersonaStore:
    """CRUD over the persona directory. Names are unique case-insensitively (by slug)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else config_dir() / "personas"

    def path_for(self, name: str) -> Path:
        """The file a persona called `name` lives in."""
        return self.root / f"{slugify(name)}.json"

    def names(self) -> list[str]:
        """Names of every readable persona, sorted case-insensitively."""
        return sorted((p.name for p in self.list()), key=str.lower)

    def list(self) -> list[StoredPersona]:
        """Every readable persona in the directory (unreadable files are skipped)."""
        if not self.root.is_dir():
            return []
        out = []
        for path in sorted(self.root.glob("*.json")):
            try:
                out.append(parse_persona(path.read_bytes()))
            except (PersonaStoreError, OSError):
                continue
        return out

    def exists(self, name: str) -> bool:
        """Whether a file for persona `name` exists."""
        return self.path_for(name).is_file()

    def load(self, name: str) -> StoredPersona:
        """Read persona `name`; PersonaStoreError if absent or invalid."""
        path = self.path_for(name)
        if not path.is_file():
            raise PersonaStoreError(f"no persona named {name!r} in {self.root}")
        return parse_persona(path.read_bytes())

    def save(self, persona: StoredPersona, *, previous_name: str | None = None) -> Path:
        """Write `persona` (atomically). `previous_name` renames: the old file is removed.

        Refuses to overwrite a *different* persona whose name has the same slug."""
        path = self.path_for(persona.name)
        renaming = previous_name is not None and slugify(previous_name) != slugify(persona.name)
        if renaming and path.exists():
            raise PersonaStoreError(f"a persona named {persona.name!r} already exists")
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(persona.model_dump(), indent=2, ensure_ascii=False) + "\n", "utf-8")
        os.replace(tmp, path)
        if renaming:
            self.path_for(previous_name).unlink(missing_ok=True)
        return path

    def create(self, name: str = "New persona", **fields: object) -> StoredPersona:
        """Create and save a persona with a unique name derived from `name`."""
        persona = StoredPersona(name=self.unique_name(name), **fields)
        self.save(persona)
        return persona

    def delete(self, name: str) -> None:
        """Remove persona `name`'s file (PersonaStoreError if there is none)."""
        path = self.path_for(name)
        if not path.is_file():
            raise PersonaStoreError(f"no persona named {name!r} to delete")
        path.unlink()

    def duplicate(self, name: str, new_name: str | None = None) -> StoredPersona:
        """Copy persona `name` under `new_name` (default: "<name> copy", made unique)."""
        src = self.load(name)
        dup = src.model_copy(update={"name": self.unique_name(new_name or f"{src.name} copy")})
        self.save(dup)
        return dup

    def unique_name(self, base: str) -> str:
        """`base`, or `base 2`, `base 3`... whichever has no file yet."""
        base = base.strip()[:74] or "Persona"
        candidate, n = base, 2
        while self.exists(candidate):
            candidate, n = f"{base} {n}", n + 1
        return candidate

    def import_file(self, path: str | Path) -> StoredPersona:
        """Import a persona file, or a studio OBS/Unity export file (renamed if its name is taken).
        Relative portrait paths resolve against the imported file's folder."""
        src = Path(path)
        try:
            data = src.read_bytes()
        except OSError as exc:
            raise PersonaStoreError(f"cannot read {src}: {exc.strerror or exc}") from exc
        persona = _read_persona_or_export(data, src.parent)
        updates: dict[str, object] = {"name": self.unique_name(persona.name)}
        if persona.portrait and not Path(persona.portrait).is_absolute():
            updates["portrait"] = str((src.parent / persona.portrait).resolve())
        persona = persona.model_copy(update=updates)
        self.save(persona)
        return persona

    def export_file(self, name: str, dest: str | Path) -> Path:
        """Write persona `name` to `dest` (a file path, or a folder to put ``<slug>.json`` in), its portrait
        copied beside it and referenced by a relative name (a missing portrait keeps its stored path)."""
        persona = self.load(name)
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / f"{slugify(persona.name)}.json"
        if persona.portrait and Path(persona.portrait).is_file():
            rel = copy_portrait_beside(persona.portrait, dest.parent, slugify(persona.name))
            persona = persona.model_copy(update={"portrait": rel})
        dest.write_text(json.dumps(persona.model_dump(), indent=2, ensure_ascii=False) + "\n", "utf-8")
        return dest
