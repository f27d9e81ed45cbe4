"""The Unity bridge's mono build helpers (plugins/unity_bridge/Tests~/mono_build.py), loaded once for every
Unity test as `mb`; the marks of a test that needs mono; and mutated copies of the Unity sources."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "unity_mono_build", ROOT / "plugins/unity_bridge/Tests~/mono_build.py")
mb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mb)

# pytestmark of a module whose tests need mono's tools (mcs, mono)
MONO = [pytest.mark.mono, pytest.mark.skipif(mb.missing_tools() is not None, reason=str(mb.missing_tools()))]


def mutated_sources(tmp_path: Path, fname: str, old: str, new: str) -> list[Path]:
    """Copies of mb.UNITY_SOURCES in tmp_path, with `old` replaced by `new` in the one named `fname`."""
    sources = []
    for src in mb.UNITY_SOURCES:
        text = src.read_text()
        if src.name == fname:
            assert old in text, f"{fname} changed: update this test's mutation"
            text = text.replace(old, new)
        dst = tmp_path / src.name
        dst.write_text(text)
        sources.append(dst)
    return sources
