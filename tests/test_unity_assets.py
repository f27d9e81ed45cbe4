"""The package's hand-written Unity YAML (the "Avatar NPC" prefab and the NPC Demo sample scene) is
internally consistent: every local reference resolves, components and their GameObjects point at each
other, the transform tree is a tree, every script reference is one of the package's scripts (by the GUID
in its .meta) or a known Unity script, the scene's prefab instance names the prefab's GUID and existing
objects in it, and every serialised field of our scripts exists in the C# class (a renamed field would
silently lose its value in Unity)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "plugins" / "unity_bridge"
PREFAB = PKG / "Runtime" / "Prefabs" / "Avatar NPC.prefab"
SCENE = PKG / "Samples~" / "NPCDemo" / "NPCDemo.unity"

# Scripts of Unity's own packages the YAML may use (com.unity.ugui), by their fixed GUIDs.
UNITY_SCRIPTS = {"1344c3c82d62a2a41a3576d8abb8e3ea": "UnityEngine.UI.RawImage"}
CLASS_IDS = {1: "GameObject", 4: "Transform", 20: "Camera", 29: "OcclusionCullingSettings", 81: "AudioListener",
             82: "AudioSource", 104: "RenderSettings", 114: "MonoBehaviour", 157: "LightmapSettings",
             196: "NavMeshSettings", 222: "CanvasRenderer", 223: "Canvas", 224: "RectTransform",
             1001: "PrefabInstance"}
REF = re.compile(r"\{fileID: (-?\d+)(?:, guid: (\w+), type: (\d+))?\}")


def parse(path: Path) -> dict[int, dict]:
    text = path.read_text()
    assert text.startswith("%YAML 1.1\n%TAG !u! tag:unity3d.com,2011:\n"), path.name
    docs = {}
    for m in re.finditer(r"^--- !u!(\d+) &(\d+)\n(\w+):\n((?:(?!^--- ).*\n)*)", text, re.M):
        cls, fid, name, body = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
        assert CLASS_IDS.get(cls) == name, f"{path.name}: class {cls} is not {name}"
        assert fid not in docs, f"{path.name}: fileID {fid} twice"
        docs[fid] = {"class": name, "body": body}
    assert text.count("\n--- ") == len(docs), f"{path.name}: a document did not parse"
    return docs


def meta_guids() -> dict[str, Path]:
    out = {}
    for meta in PKG.rglob("*.meta"):
        guid = re.search(r"^guid: (\w{32})$", meta.read_text(), re.M).group(1)
        assert guid not in out, f"GUID {guid} twice"
        out[guid] = meta.with_suffix("")
    return out


def serialised_fields(cs: Path) -> set[str]:
    """Fields Unity serialises: [SerializeField] private ones and public non-static fields."""
    code = cs.read_text()
    fields = set(re.findall(r"\[SerializeField\]\s*(?:\[[^\]]*\]\s*)*private\s+[\w<>\[\]\.]+\s+(\w+)", code))
    fields |= set(re.findall(r"^\s*public\s+(?!static|const|readonly|override|sealed|enum|struct|class)"
                             r"[\w<>\[\]\.]+\s+(\w+)\s*=", code, re.M))
    return fields


def script_of(doc: dict, guids: dict[str, Path]) -> str | None:
    m = re.search(r"m_Script: \{fileID: 11500000, guid: (\w+), type: 3\}", doc["body"])
    if not m:
        return None
    return UNITY_SCRIPTS.get(m.group(1)) or guids[m.group(1)].name


def check_file(path: Path, docs: dict[int, dict], guids: dict[str, Path]) -> None:
    for fid, doc in docs.items():
        body = doc["body"]
        for m in REF.finditer(body):
            ref, guid = int(m.group(1)), m.group(2)
            if guid is None:
                assert ref == 0 or ref in docs, f"{path.name}: &{fid} refers to missing &{ref}"
            elif guid not in UNITY_SCRIPTS and not guid.startswith("0000000000000000"):
                assert guid in guids, f"{path.name}: &{fid} refers to unknown GUID {guid}"
        if doc["class"] == "GameObject":
            comps = [int(x) for x in re.findall(r"- component: \{fileID: (\d+)\}", body)]
            assert comps, f"{path.name}: GameObject &{fid} has no components"
            assert docs[comps[0]]["class"] in ("Transform", "RectTransform"), "a GameObject's first component is its transform"
            for c in comps:
                assert f"m_GameObject: {{fileID: {fid}}}" in docs[c]["body"], f"{path.name}: &{c} does not point back to &{fid}"
        go = re.search(r"m_GameObject: \{fileID: (\d+)\}", body)
        if go:
            owner = docs[int(go.group(1))]
            assert f"component: {{fileID: {fid}}}" in owner["body"], f"{path.name}: &{fid} not listed by its GameObject"
        if doc["class"] in ("Transform", "RectTransform"):
            father = int(re.search(r"m_Father: \{fileID: (\d+)\}", body).group(1))
            if father:
                assert f"- {{fileID: {fid}}}" in docs[father]["body"], f"{path.name}: &{father} does not list child &{fid}"
            for child in re.findall(r"^  - \{fileID: (\d+)\}", body.split("m_Father")[0], re.M):
                assert f"m_Father: {{fileID: {fid}}}" in docs[int(child)]["body"]
        if doc["class"] == "MonoBehaviour":
            script = re.search(r"m_Script: \{fileID: 11500000, guid: (\w+), type: 3\}", body)
            assert script, f"{path.name}: &{fid} has no script"
            guid = script.group(1)
            if guid in UNITY_SCRIPTS:
                continue
            cs = guids[guid]
            assert cs.suffix == ".cs", cs
            fields = re.findall(r"^  (\w+):", body.split("m_EditorClassIdentifier:")[1], re.M)
            missing = set(fields) - serialised_fields(cs)
            assert not missing, f"{path.name}: {cs.name} has no serialised field(s) {missing}"


def test_prefab():
    guids = meta_guids()
    docs = parse(PREFAB)
    check_file(PREFAB, docs, guids)
    scripts = {guids[g].name for g in re.findall(r"guid: (\w+), type: 3", PREFAB.read_text()) if g in guids}
    assert {"AvatarStreamClient.cs", "AvatarAudioOutput.cs", "AvatarVideoOutput.cs"} <= scripts
    assert "AudioSource" in {d["class"] for d in docs.values()}        # AvatarAudioOutput's [RequireComponent]
    roots = [d for d in docs.values() if d["class"] == "Transform" and "m_Father: {fileID: 0}" in d["body"]]
    assert len(roots) == 1, "a prefab has one root"
    # the video output shows the face on the prefab's own RawImage
    video = next(d for d in docs.values() if script_of(d, guids) == "AvatarVideoOutput.cs")
    raw = int(re.search(r"rawImage: \{fileID: (\d+)\}", video["body"]).group(1))
    assert script_of(docs[raw], guids) == "UnityEngine.UI.RawImage"


def test_sample_scene():
    guids = meta_guids()
    docs = parse(SCENE)
    check_file(SCENE, docs, guids)
    prefab_guid = re.search(r"^guid: (\w+)$", PREFAB.with_name(PREFAB.name + ".meta").read_text(), re.M).group(1)
    prefab_docs = parse(PREFAB)
    instances = [d for d in docs.values() if d["class"] == "PrefabInstance"]
    assert len(instances) == 1
    body = instances[0]["body"]
    assert f"m_SourcePrefab: {{fileID: 100100000, guid: {prefab_guid}, type: 3}}" in body
    for target in re.findall(rf"target: \{{fileID: (\d+), guid: {prefab_guid}, type: 3\}}", body):
        assert int(target) in prefab_docs, f"the scene modifies &{target}, which the prefab does not have"
    assert "m_TagString: MainCamera" in SCENE.read_text() and "AudioListener" in {d["class"] for d in docs.values()}
    assert [script_of(d, guids) for d in docs.values() if d["class"] == "MonoBehaviour"] == ["NPCDemo.cs"]


@pytest.mark.parametrize("path", [PREFAB, SCENE], ids=["prefab", "scene"])
def test_a_broken_reference_is_caught(path, tmp_path):
    """The checks bite: a dangling fileID and a misspelt field are reported."""
    guids = meta_guids()
    text = path.read_text()
    bad = tmp_path / path.name
    bad.write_text(text.replace("m_Father: {fileID: 0}", "m_Father: {fileID: 12345}", 1))
    with pytest.raises(AssertionError):
        check_file(bad, parse(bad), guids)
    field = "controlEndpoint" if path == PREFAB else "openingLine"
    bad.write_text(text.replace(f"  {field}:", f"  {field}X:"))
    with pytest.raises(AssertionError, match="no serialised field"):
        check_file(bad, parse(bad), guids)
