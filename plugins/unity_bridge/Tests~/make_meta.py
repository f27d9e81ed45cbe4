"""Writes the Unity .meta files of the package (deterministic GUIDs from the asset path).

Git/tarball UPM packages are immutable: Unity ignores assets without a .meta file. Run after adding a
file: `python plugins/unity_bridge/Tests~/make_meta.py` (`--check` only reports missing/stale ones).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent

TAIL = "  externalObjects: {}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n"
IMPORTERS = {
    ".cs": "MonoImporter:\n  externalObjects: {}\n  serializedVersion: 2\n  defaultReferences: []\n"
           "  executionOrder: 0\n"
           "  icon: {instanceID: 0}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n",
    ".asmdef": "AssemblyDefinitionImporter:\n" + TAIL,
    ".json": "PackageManifestImporter:\n" + TAIL,
    ".md": "TextScriptImporter:\n" + TAIL,
    ".xml": "TextScriptImporter:\n" + TAIL,
    ".prefab": "PrefabImporter:\n" + TAIL,
}


def assets() -> list[Path]:
    """Every file and folder Unity imports (skips `~` folders, hidden names and .meta files), and the
    samples' contents: Unity copies a sample into Assets/ with its .meta files, so the GUIDs its scene
    refers to (its own scripts) must ship with it."""
    out = []
    for p in sorted(PKG.rglob("*")):
        rel = p.relative_to(PKG)
        if p.suffix == ".meta" or any(part.startswith(".") for part in rel.parts):
            continue
        if any(part.endswith("~") for part in rel.parts):
            if rel.parts[0] != "Samples~" or len(rel.parts) < 3:   # a sample's folder itself is not imported
                continue
        out.append(p)
    return out


def meta_text(p: Path) -> str:
    rel = p.relative_to(PKG).as_posix()
    guid = hashlib.md5(f"com.xstreamer.avatar/{rel}".encode()).hexdigest()
    head = f"fileFormatVersion: 2\nguid: {guid}\n"
    if p.is_dir():
        return head + "folderAsset: yes\nDefaultImporter:\n" + TAIL
    return head + IMPORTERS.get(p.suffix, "DefaultImporter:\n" + TAIL)


def main(check: bool) -> int:
    bad = 0
    for p in assets():
        meta = p.with_name(p.name + ".meta")
        text = meta_text(p)
        if not meta.exists() or meta.read_text() != text:
            bad += 1
            if check:
                print(f"missing or stale: {meta.relative_to(PKG)}")
            else:
                meta.write_text(text)
    return 1 if check and bad else 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv))
