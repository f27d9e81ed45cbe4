"""The Unity-facing components (Runtime/Unity/*.cs) compile with mono's mcs against the signature-level
UnityEngine stand-in kept in plugins/unity_bridge/Tests~/UnityStub, with and without UNITY_EDITOR, and a
deliberately broken copy does not compile (so the check bites). Also checks the package manifests."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from unity_build import mb, mutated_sources

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "plugins" / "unity_bridge"


@pytest.mark.parametrize("defines", [[], ["UNITY_EDITOR"]], ids=["player", "editor"])
@pytest.mark.mono
@pytest.mark.skipif(mb.missing_tools() is not None, reason=str(mb.missing_tools()))
def test_unity_components_compile(defines, tmp_path):
    out = tmp_path / "Xstreamer.Avatar.Runtime.dll"
    refs = [mb.core_dll(), mb.unity_stub_dll()]
    proc = mb.mcs(out, mb.UNITY_SOURCES, refs, "library", defines, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out.stat().st_size > 0
    sample = mb.mcs(tmp_path / "NPCDemo.dll", [PKG / "Samples~/NPCDemo/NPCDemo.cs"],
                    [mb.core_dll(), mb.unity_stub_dll(), mb.tmp_stub_dll(), out], "library", defines, check=False)
    assert sample.returncode == 0, sample.stdout + sample.stderr
    if "UNITY_EDITOR" in defines:   # the Editor assembly exists only in the editor
        editor = mb.mcs(tmp_path / "Xstreamer.Avatar.Editor.dll", mb.EDITOR_SOURCES,
                        [mb.core_dll(), mb.unity_stub_dll(), out], "library", defines, check=False)
        assert editor.returncode == 0, editor.stdout + editor.stderr


BREAKS = [
    ("AvatarVideoOutput.cs", "_texture.LoadRawTextureData(_flipped);",
     "_texture.LoadRawTextureDta(_flipped);",
     "LoadRawTextureDta"),
    ("AvatarAudioOutput.cs", "b.Read(data, 0, frames, channels);",
     "b.Read(data, 0, frames);",
     "Read"),
    # the stand-in's test-only controls exist only in its harness build: runtime code using them can't compile
    ("AvatarAudioOutput.cs", "_source.Play();\n        }\n\n        private void OnAudioConfigurationChanged",
     "_source.Play(); StubHarness.SetDspBuffer(1, 1);\n        }\n\n"
     "        private void OnAudioConfigurationChanged",
     "StubHarness"),
    ("AvatarStreamClient.cs", "_core.DispatchEvents();", "_core.DispatchEvent();", "DispatchEvent"),
]


@pytest.mark.parametrize("fname,old,new,needle", BREAKS, ids=[b[3] for b in BREAKS])
@pytest.mark.mono
@pytest.mark.skipif(mb.missing_tools() is not None, reason=str(mb.missing_tools()))
def test_broken_copy_does_not_compile(fname, old, new, needle, tmp_path):
    sources = mutated_sources(tmp_path, fname, old, new)
    refs = [mb.core_dll(), mb.unity_stub_dll()]
    proc = mb.mcs(tmp_path / "broken.dll", sources, refs, "library", check=False)
    assert proc.returncode != 0
    assert "error CS" in proc.stdout + proc.stderr and needle in proc.stdout + proc.stderr


def test_package_manifests():
    pkg = json.loads((PKG / "package.json").read_text())
    assert pkg["name"] == "com.xstreamer.avatar" and pkg["unity"] == "2021.3"
    assert pkg["version"].count(".") == 2
    assert pkg["dependencies"]["com.unity.textmeshpro"] and pkg["dependencies"]["com.unity.ugui"]
    editor = json.loads((PKG / "Editor/Xstreamer.Avatar.Editor.asmdef").read_text())
    assert editor["includePlatforms"] == ["Editor"] and "Xstreamer.Avatar.Runtime" in editor["references"]
    core = json.loads((PKG / "Runtime/Core/Xstreamer.Avatar.Core.asmdef").read_text())
    runtime = json.loads((PKG / "Runtime/Xstreamer.Avatar.Runtime.asmdef").read_text())
    assert core["noEngineReferences"] is True and core["name"] == "Xstreamer.Avatar.Core"
    assert runtime["name"] == "Xstreamer.Avatar.Runtime" and "Xstreamer.Avatar.Core" in runtime["references"]
    assert (PKG / "Documentation~/index.md").read_text() == (ROOT / "docs/unity.md").read_text(), \
        "Documentation~/index.md must be a copy of docs/unity.md"
    for sample in pkg["samples"]:
        assert (PKG / sample["path"]).is_dir()
    # no native plug-in anywhere: the transport is managed (a DllImport would bring back a native library)
    for src in list(mb.CORE_SOURCES) + list(mb.UNITY_SOURCES):
        assert "DllImport" not in src.read_text() and "extern " not in src.read_text(), src.name
    assert not list(PKG.rglob("*.dll")) and not list(PKG.rglob("*.so")) and not list(PKG.rglob("*.dylib"))
    # the core must stay Unity-free and reflection-free (IL2CPP / AOT)
    for src in mb.CORE_SOURCES:
        code = re.sub(r"//[^\n]*", "", src.read_text())   # comments may mention anything
        for banned in (r"using UnityEngine", r"System\.Reflection", r"\bdynamic\s+\w", r"Activator\.",
                       r"\.GetField\("):
            assert not re.search(banned, code), f"{src.name} uses {banned!r}"


def test_every_asset_has_a_meta_file():
    """Git/tarball packages are immutable: Unity ignores an asset without its .meta (GUIDs must be unique)."""
    spec = importlib.util.spec_from_file_location("unity_make_meta", PKG / "Tests~/make_meta.py")
    mm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mm)
    guids = []
    for asset in mm.assets():
        meta = asset.with_name(asset.name + ".meta")
        assert meta.exists(), f"{meta} missing: run python plugins/unity_bridge/Tests~/make_meta.py"
        assert meta.read_text() == mm.meta_text(asset), f"{meta} stale"
        guids.append(meta.read_text().split("guid: ")[1][:32])
    assert len(guids) == len(set(guids)) and len(guids) > 15


def test_constants_match_sdk_protocol():
    """The C# core's copies of the shared constants equal sdk/protocol's (the one place they are written)."""
    from sdk.protocol import constants as c
    code = (PKG / "Runtime/Core/Protocol.cs").read_text()

    def const(name: str) -> int:
        m = re.search(rf"\b{name}\s*=\s*([^;,]+)[;,]", code)
        assert m, f"{name} missing from Protocol.cs"
        return int(eval(m.group(1).replace("SampleRate", str(c.SAMPLE_RATE)).replace("Fps", str(c.FPS))))

    assert const("SampleRate") == c.SAMPLE_RATE and const("Fps") == c.FPS
    assert const("SamplesPerFrame") == c.SAMPLES_PER_FRAME and const("FrameSize") == c.FRAME_SIZE
    assert const("MaxTextChars") == c.MAX_TEXT_CHARS and const("MaxPromptChars") == c.MAX_PROMPT_CHARS
    assert const("MaxPortraitBytes") == c.MAX_PORTRAIT_BYTES and const("MaxHeaderBytes") == c.MAX_HEADER_BYTES
    assert const("MotionChannelsDefault") == len(c.MOTION_CHANNELS)
    assert const("MaxReplySentences") == c.MAX_REPLY_SENTENCES
    names = re.search(r"MotionChannels =\s*\{([^}]*)\}", code).group(1)
    assert tuple(re.findall(r'"(\w+)"', names)) == tuple(c.MOTION_CHANNELS)
    sizes = re.search(r"VideoSizes = \{([^}]*)\}", code).group(1)
    assert tuple(int(x) for x in sizes.split(",")) == tuple(c.VIDEO_SIZES)
