"""The Unity bridge loads the persona files the studio writes (PersonaFile in Runtime/Core, run with mono).

The files are written at test time by the studio's own Python code: a library persona through
`studio_gui.personas.PersonaStore` (``<config>/personas/<slug>.json``), "Export to Unity" through
`studio_gui.export` (``<slug>.unity.json``, with the portrait embedded as base64 or referenced by path), the
OBS export (a persona file with its portrait beside it; an old studio's ``.obs.json`` is refused). The C# side
must decode the
same persona fields and the same portrait bytes as Python wrote, resolve relative portrait paths against the
JSON file's folder the way `PersonaStore.import_file` does, fill `AvatarStreamOptions`, and report each
broken file with its typed error. The Unity component side (`AvatarStreamClient.settingsFile`) is driven by
Tests~/Programs/UnityComponents.cs against the UnityEngine stand-in.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import os
import shutil
from pathlib import Path

import pytest
from unity_build import MONO, mb

ROOT = Path(__file__).resolve().parent.parent
PORTRAIT = ROOT / "sdk" / "portrait" / "gallery" / "ada.png"

pytestmark = MONO

personas = pytest.importorskip("studio_gui.personas")
export = pytest.importorskip("studio_gui.export")

PERSONA_FIELDS = ("name", "system_prompt", "greeting", "voice", "model", "character", "max_reply_sentences")
PROMPT = ('You are Ada — "quoted", a back\\slash, a new\nline, a\ttab, an emoji 🙂 (astral plane), é, 中文, '
          "and a </script> for good measure.")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load(*files: str | Path, cwd: Path | None = None) -> list[dict]:
    proc = mb.run_mono(mb.program("PersonaLoad"), *map(str, files), timeout=120, cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(out) == len(files), proc.stdout
    return out


def _export_unity(persona, folder: Path, embed: bool, daemon: str) -> Path:
    """export_unity, whatever its current keyword set (another engineer is changing it)."""
    params = inspect.signature(export.export_unity).parameters
    kw = {}
    if "embed_portrait" in params:
        kw["embed_portrait"] = embed
    elif not embed:
        pytest.skip("export_unity has no embed_portrait switch any more")
    if "daemon" in params:
        kw["daemon"] = daemon
    out = export.export_unity(persona, folder, **kw)
    paths = [Path(p) for p in (out if isinstance(out, (tuple, list)) else [out])]
    return next(p for p in paths if p.name.endswith(".unity.json"))


@pytest.fixture()
def studio(tmp_path, monkeypatch):
    """A studio config dir with one library persona (portrait: a copy of the gallery's ada.png)."""
    monkeypatch.setenv(personas.CONFIG_ENV, str(tmp_path / "config"))
    pics = tmp_path / "pics"
    pics.mkdir()
    portrait = pics / "ada.png"
    shutil.copy(PORTRAIT, portrait)
    store = personas.PersonaStore()
    persona = personas.StoredPersona(name="Ada Lovelace", system_prompt=PROMPT, greeting="Bonjour ! 👋",
                                     voice="joe", model="tiny", portrait=str(portrait))
    path = store.save(persona)
    assert path == tmp_path / "config" / "personas" / "ada-lovelace.json"
    return store, persona, path, portrait


def _assert_persona(got: dict, persona) -> None:
    want = persona.to_persona().model_dump()
    assert {k: got[k] for k in PERSONA_FIELDS} == {k: want[k] for k in PERSONA_FIELDS}


def test_library_persona(studio, tmp_path):
    store, persona, path, portrait = studio
    ascii_copy = tmp_path / "ascii.json"          # json.dumps' default: \u escapes, surrogate pairs
    ascii_copy.write_text(json.dumps(json.loads(path.read_text("utf-8"))), "ascii")
    obs_folder = tmp_path / "obs"
    obs_persona = export.export_obs(persona, obs_folder)      # the OBS export: a persona file + its portrait
    lib, esc, obs = _load(path, ascii_copy, obs_persona)
    for got in (lib, esc):
        assert got["ok"] is True and got["unity_export"] is False, got
        _assert_persona(got["persona"], persona)
        assert got["portrait_sha256"] == _sha(portrait.read_bytes())
        assert got["portrait_len"] == portrait.stat().st_size
        assert Path(got["portrait_source"]) == portrait
        opts = got["options"]
        _assert_persona(opts["persona"], persona)
        assert opts["portrait_sha256"] == got["portrait_sha256"]
        # a library persona carries no connection settings: ApplyTo leaves them alone
        connection = (opts["control_endpoint"], opts["client_name"], opts["jitter_target_ms"])
        assert connection == ("tcp://unset:1", "unset", 1)
    # the OBS export loads here too, with the portrait copied beside it
    assert obs["ok"] is True and obs["unity_export"] is False
    assert obs["portrait_sha256"] == _sha(portrait.read_bytes())
    assert Path(obs["portrait_source"]) == (obs_folder / "ada-lovelace.portrait.png").resolve()
    _assert_persona(obs["persona"], persona)


def test_relative_library_portrait_resolves_like_import_file(studio, tmp_path):
    store, persona, _, portrait = studio
    share = tmp_path / "share"
    (share / "img").mkdir(parents=True)
    shutil.copy(portrait, share / "img" / "ada.png")
    shared = share / "ada.json"
    shared.write_text(json.dumps(persona.model_copy(update={"portrait": "img/ada.png"}).model_dump(),
                                 ensure_ascii=False), "utf-8")
    exported = store.export_file(persona.name, _mkdir(tmp_path / "exported"))   # the studio's "Export…"
    elsewhere = _mkdir(tmp_path / "elsewhere")
    results = _load(shared, exported, cwd=elsewhere)                          # not resolved against the cwd
    for path, got in zip((shared, exported), results):
        imported = store.import_file(path)             # the studio's own resolution of the portrait path
        assert got["ok"] is True, got
        _assert_persona(got["persona"], persona)
        assert Path(got["portrait_source"]) == Path(imported.portrait)
        assert got["portrait_sha256"] == _sha(Path(imported.portrait).read_bytes())
        assert got["portrait_sha256"] == _sha(portrait.read_bytes())
    (text,) = _load(f"text:{shared}")                          # parsed without a folder: a typed error
    assert text["ok"] is False and text["error"] == "PortraitNotFound", text


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_unity_export_by_path(studio, tmp_path):
    _, persona, _, portrait = studio
    by_path = _export_unity(persona, tmp_path / "by_path", False, "tcp://127.0.0.1:7999")
    doc = json.loads(by_path.read_text("utf-8"))
    ref = doc.get("portrait_path") or doc.get("portrait")
    assert doc["format"] == "xstreamer-unity" and not doc.get("portrait_base64") and ref
    # the export folder moves into the game project: a relative portrait path must still resolve
    moved = tmp_path / "game" / "StreamingAssets" / "npc"
    shutil.copytree(by_path.parent, moved)
    shutil.rmtree(by_path.parent)
    (got,) = _load(moved / by_path.name, cwd=tmp_path)
    assert got["ok"] is True and got["unity_export"] is True, got
    want = Path(ref) if Path(ref).is_absolute() else (moved / ref).resolve()
    assert Path(got["portrait_source"]) == want
    assert got["portrait_sha256"] == _sha(want.read_bytes()) == _sha(portrait.read_bytes())
    _assert_persona(got["persona"], persona)
    assert got["options"]["control_endpoint"] == doc["control_endpoint"] == "tcp://127.0.0.1:7999"


def test_unity_export_embedded(studio, tmp_path):
    _, persona, _, portrait = studio
    original = portrait.read_bytes()
    embedded = _export_unity(persona, tmp_path / "embedded", True, "tcp://127.0.0.1:7999")
    doc = json.loads(embedded.read_text("utf-8"))
    assert doc["format"] == "xstreamer-unity" and doc.get("portrait_base64")
    portrait.write_bytes(b"\x89PNG\r\n\x1a\n-edited after the export")   # the embedded copy must win
    for stray in embedded.parent.iterdir():                                 # and any copy next to the JSON
        if stray != embedded:
            stray.write_bytes(b"not the exported portrait")
    emb, text = _load(embedded, f"text:{embedded}")        # from the file, and from its text alone
    for got in (emb, text):
        assert got["ok"] is True and got["unity_export"] is True, got
        assert got["portrait_source"] == "base64"
        assert got["portrait_sha256"] == _sha(base64.b64decode(doc["portrait_base64"])) == _sha(original)
        _assert_persona(got["persona"], persona)
        opts = got["options"]
        _assert_persona(opts["persona"], persona)
        assert opts["portrait_sha256"] == _sha(original)
        assert opts["control_endpoint"] == doc["control_endpoint"] == "tcp://127.0.0.1:7999"
        assert opts["client_name"] == doc["client_name"]
        assert opts["jitter_target_ms"] == doc["jitter_target_ms"]
        assert opts["output_sample_rate"] == doc["output_sample_rate"]


def test_unity_export_with_relative_portrait(studio, tmp_path):
    """The export layout being introduced: the portrait copied next to the JSON, referenced relatively."""
    _, persona, _, portrait = studio
    doc = export.unity_settings(persona, embed_portrait=False) if "embed_portrait" in inspect.signature(
        export.unity_settings).parameters else export.unity_settings(persona)
    folder = tmp_path / "Assets" / "StreamingAssets" / "ada"
    (folder / "portraits").mkdir(parents=True)
    shutil.copy(portrait, folder / "portraits" / "ada lovelace.png")
    doc.update(portrait_base64=None, portrait_path="portraits\\ada lovelace.png")   # as written on Windows
    json_path = folder / "ada-lovelace.unity.json"
    json_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False), "utf-8")
    (got,) = _load(json_path, cwd=tmp_path)
    assert got["ok"] is True, got
    assert Path(got["portrait_source"]) == folder / "portraits" / "ada lovelace.png"
    assert got["portrait_sha256"] == _sha(portrait.read_bytes())
    # JSON and image put apart: the image directly under StreamingAssets, the JSON in a sub-folder. The
    # JSON's folder comes first, then the search folders the caller gives (the Unity client: StreamingAssets).
    assets = folder.parent
    sub = _mkdir(assets / "npcs")
    shutil.move(str(json_path), sub / json_path.name)
    shutil.move(str(folder / "portraits"), assets / "portraits")
    alone, searched = _load(sub / json_path.name, f"{sub / json_path.name}::{assets}")
    assert alone["ok"] is False and alone["error"] == "PortraitNotFound", alone
    assert searched["ok"] is True
    assert Path(searched["portrait_source"]) == assets / "portraits" / "ada lovelace.png"
    assert searched["portrait_sha256"] == _sha(portrait.read_bytes())



POINTS = [(118.0, 130.5), (182.25, 130.0), (150.0, 170.0), (128.0, 205.0), (172.0, 205.75)]


def test_face_points_and_reply_cap(studio, tmp_path):
    """A persona with five face points (a picture whose face cannot be found) and a reply cap: the library file,
    the Unity export (embedded and by path) and the OBS export carry the points to the options the client opens
    with, next to their portrait; a file without a portrait leaves the options' points alone; broken points are
    Invalid."""
    store, persona, _, portrait = studio
    drawn = persona.model_copy(update={"name": "Drawn Fox", "face_points": POINTS, "max_reply_sentences": 2})
    lib = store.save(drawn)
    unity = _export_unity(drawn, tmp_path / "unity", True, "tcp://127.0.0.1:7999")
    doc = json.loads(unity.read_text("utf-8"))
    assert doc["face_points"] == [list(p) for p in POINTS]
    by_path = _write(tmp_path / "unity" / "by_path.unity.json", json.dumps({**doc, "portrait_base64": None}))
    obs = export.export_obs(drawn, tmp_path / "obs")
    no_portrait = _write(tmp_path / "np.json", json.dumps({**json.loads(lib.read_text("utf-8")), "portrait": None}))
    results = _load(lib, unity, by_path, obs, no_portrait)
    for got in results:
        assert got["ok"] is True, got
        _assert_persona(got["persona"], drawn)
        assert got["persona"]["max_reply_sentences"] == 2 and got["options"]["persona"]["max_reply_sentences"] == 2
        assert got["face_points"] == [list(p) for p in POINTS], got
    for got in results[:4]:
        assert got["options"]["face_points"] == got["face_points"], "the points go with their portrait"
        assert got["portrait_sha256"] == _sha(portrait.read_bytes())
    assert results[4]["portrait_len"] == -1 and results[4]["options"]["face_points"] is None

    bad = json.loads(lib.read_text("utf-8"))
    cases = {"four": POINTS[:4], "three_numbers": [[1, 2, 3]] * 5, "string": [["1", 2]] * 5, "flat": [1.0] * 10,
             "bool": [[True, 2]] * 5, "not_a_list": "eyes"}
    got = _load(*(_write(tmp_path / "bad" / f"{c}.json", json.dumps({**bad, "face_points": v})) for c, v in cases.items()))
    for case, g in zip(cases, got):
        assert g["ok"] is False and g["error"] == "Invalid" and "face_points" in g["message"], (case, g)
        if case not in ("string", "bool"):      # pydantic's lax floats take "1" and true; the C# reader wants numbers
            with pytest.raises(personas.PersonaStoreError):        # the studio refuses the others too
                personas.parse_persona(json.dumps({**bad, "face_points": cases[case]}))


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def test_broken_files_give_typed_errors(studio, tmp_path):
    _, persona, lib_path, portrait = studio
    good = lib_path.read_text("utf-8")
    unity = export.unity_settings(persona)
    bad = tmp_path / "bad"
    lib = json.loads(good)

    def lib_with(file: str, **changes) -> Path:
        return _write(bad / file, json.dumps({**lib, **changes}))

    def unity_with(file: str, **changes) -> Path:
        return _write(bad / file, json.dumps({**unity, **changes}))

    latin1 = good.encode("utf-8").replace("é".encode(), b"\xe9")
    cases = {
        "missing": (bad / "nope.json", "NotFound"),
        "folder": (tmp_path / "pics", "NotFound"),
        "truncated": (_write(bad / "truncated.json", good[: len(good) // 2]), "Malformed"),
        "trailing_comma": (_write(bad / "comma.json", good.rstrip().rstrip("}") + ",}"), "Malformed"),
        "not_utf8": (_write(bad / "latin1.json", latin1), "Malformed"),
        "array": (_write(bad / "array.json", "[1, 2]"), "Malformed"),
        "name_type": (lib_with("name_type.json", name=5), "Invalid"),
        "name_long": (lib_with("name_long.json", name="x" * 81), "Invalid"),
        "blank_prompt": (lib_with("blank.json", system_prompt="   "), "Invalid"),
        "obs_settings": (_write(bad / "old.obs.json", json.dumps({"format": "xstreamer-obs", "version": 1,
                                                                   "persona_file": "x.json"})), "Invalid"),
        "version_2": (unity_with("v2.unity.json", version=2), "Invalid"),
        "persona_not_object": (unity_with("p.unity.json", persona="Ada"), "Invalid"),
        "jitter_type": (unity_with("j.unity.json", jitter_target_ms="fast"), "Invalid"),
        "endpoint": (unity_with("e.unity.json", control_endpoint="localhost"), "Invalid"),
        "portrait_gone": (lib_with("gone.json", portrait=str(tmp_path / "x.png")), "PortraitNotFound"),
        "portrait_rel_gone": (unity_with("relgone.unity.json", portrait_base64=None, portrait_path="ada.png"),
                              "PortraitNotFound"),
        "base64": (unity_with("b64.unity.json", portrait_base64="not base64 !!"), "PortraitInvalid"),
        "empty_portrait": (lib_with("empty.json", portrait=str(_write(bad / "empty.png", b""))),
                           "PortraitInvalid"),
    }
    results = _load(*(p for p, _ in cases.values()))
    for (case, (path, error)), got in zip(cases.items(), results):
        assert got["ok"] is False, f"{case}: accepted {got}"
        assert got["error"] == error, f"{case}: {got}"
        assert got["message"], case
    by_case = dict(zip(cases, results))
    assert "line 1" not in by_case["truncated"]["message"] and "line " in by_case["truncated"]["message"]
    assert "version 2" in by_case["version_2"]["message"]
    assert by_case["portrait_rel_gone"]["path"] == str(bad / "ada.png")
    # the studio refuses the same library files
    for case in ("truncated", "trailing_comma", "not_utf8", "array", "name_type", "name_long"):
        with pytest.raises(personas.PersonaStoreError):
            personas.parse_persona(cases[case][0].read_bytes())


def test_unity_client_settings_file(studio, tmp_path):
    """AvatarStreamClient.settingsFile (relative to StreamingAssets) fills the options the client connects
    with; a missing or malformed file raises a typed onError event and does not connect."""
    _, persona, _, portrait = studio
    assets = tmp_path / "StreamingAssets"
    json_path = _export_unity(persona, assets / "npc", True, "tcp://127.0.0.1:7123")
    doc = json.loads(json_path.read_text("utf-8"))
    malformed = _write(tmp_path / "malformed.unity.json", json_path.read_text("utf-8")[:100])
    rel = os.path.relpath(json_path, assets)
    proc = mb.run_mono(mb.unity_program("UnityComponents"), str(assets), rel, str(tmp_path / "missing.json"),
                       str(malformed), timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS settings_file_errors_are_typed_events" in proc.stdout, proc.stdout
    line = next(x for x in proc.stdout.splitlines() if x.startswith("SETTINGS "))
    got = json.loads(line.split(" ", 1)[1])
    _assert_persona(got, persona)
    assert got["portrait_sha256"] == _sha(portrait.read_bytes())
    assert got["control_endpoint"] == doc["control_endpoint"] == "tcp://127.0.0.1:7123"
    assert got["jitter_target_ms"] == doc["jitter_target_ms"]
    assert got["output_sample_rate"] == 44100, "the mixer's rate wins over the file's"
    assert Path(got["settings_path"]) == json_path
