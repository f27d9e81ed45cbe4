"""The Unity bridge's C# core (built with Debian mono `mcs`) decodes every protocol v2 golden vector exactly.

Valid vectors: same decoded header (keys, values, int/float types), the header re-encodes to the exact
bytes, the typed client encoders reproduce the exact bytes, payload length and sha256 match. Invalid
vectors: rejected with the vector's error code. Also runs the core's unit program (buffers, clock).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from unity_build import MONO, mb

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"

pytestmark = MONO


def _same(a, b) -> bool:
    """JSON equality that also distinguishes int from float and bool from int."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _vectors() -> list[dict]:
    names = json.loads((VECTORS / "index.json").read_text())["vectors"]
    return [json.loads((VECTORS / f"{n}.json").read_text()) for n in names]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    if not (VECTORS / "index.json").exists():
        pytest.skip("tests/vectors/index.json missing (run tests/vectors/make_vectors.py)")
    manifest = tmp_path_factory.mktemp("vectors") / "manifest.tsv"
    manifest.write_text("".join(
        f"{v['name']}\t{v['direction']}\t{v['frames']}\t{v['payload_len']}\t{v.get('topic', '')}\n"
        for v in _vectors()))
    proc = mb.run_mono(mb.program("VectorCheck"), str(VECTORS), str(manifest), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return {r["name"]: r for r in out}


def test_every_vector_is_checked(results):
    names = {v["name"] for v in _vectors()}
    assert set(results) == names
    assert any(v["valid"] for v in _vectors()) and any(not v["valid"] for v in _vectors())


@pytest.mark.parametrize("vec", _vectors() if (VECTORS / "index.json").exists() else [],
                         ids=lambda v: v["name"])
def test_vector(vec, results):
    got = results[vec["name"]]
    if not vec["valid"]:
        assert got["valid"] is False, f"accepted an invalid vector: {got}"
        assert got["error_code"] == vec["error_code"], got.get("message")
        return
    assert got["valid"] is True, f"rejected: [{got.get('error_code')}] {got.get('message')}"
    assert _same(got["header"], vec["header"]), (got["header"], vec["header"])
    assert _same(got["raw_header"], vec["header"])
    assert got["reencoded_hex"] == vec["header_hex"]
    if "typed_encoder_hex" in got:
        assert got["typed_encoder_hex"] == vec["header_hex"]
    assert got["payload_len"] == vec["payload_len"]
    assert got["payload_sha256"] == vec["payload_sha256"]


def test_fast_media_path_agrees_with_the_validator(results):
    """The core's allocation-free path for audio/video headers accepts only what the full validator accepts,
    with the same values, and it does take the daemon's ordinary audio and video packets."""
    taken = set()
    for vec in _vectors():
        if vec["direction"] != "media":
            continue
        fast = results[vec["name"]]["fast"]
        if fast is None:
            continue
        taken.add(vec["name"])
        assert vec["valid"], f"fast path accepts invalid vector {vec['name']}"
        header = vec["header"]
        for key, value in fast.items():
            assert header[key] == value, (vec["name"], key)
    assert {"media_audio", "media_video", "media_video_idle_big_pts", "media_video_rgba512",
            "media_motion"} <= taken, taken


def test_typed_encoders_cover_client_requests(results):
    encoded = {n for n, r in results.items() if "typed_encoder_hex" in r}
    for kind in ("hello", "open_default", "open_portrait", "chat", "speak", "interrupt", "set_persona",
                 "ping", "load"):
        assert f"client_{kind}" in encoded


def test_open_with_face_points_and_reply_cap_matches_python(tmp_path):
    """`open` with five face points, video_size 512 and a reply cap: the C# typed encoder writes exactly the bytes
    sdk.protocol's codec writes (points as float64 pairs, whole numbers included), the core decodes them to the
    same header; points that are not five [x, y] pairs are refused with the code the Python decoder gives."""
    import msgpack

    from sdk.protocol import ProtocolError
    from sdk.protocol.codec import decode_client, encode
    from sdk.protocol.messages import Open, Persona

    persona = Persona(name="Fox", max_reply_sentences=3)
    good = {
        "client_open_face_points": Open(req=7, persona=persona, has_portrait=True, video_size=512,
                                        face_points=[(118, 130.5), (182.25, 130), (150, 170), (128, 205), (172, 205.75)]),
        "client_open_face_points_odd_floats": Open(req=2**40, has_portrait=True,
                                                   face_points=[(0.1, 1e-7), (123456.789, -0.0), (1 / 3, 2 / 3),
                                                                (5e300, 7), (-12.5, 4096)]),
    }
    header = encode(good["client_open_face_points"])[0]
    base = msgpack.unpackb(header)
    bad = {f"client_open_face_points_{k}": msgpack.packb({**base, "face_points": v})
           for k, v in {"four": [[1.0, 2.0]] * 4, "triple": [[1.0, 2.0, 3.0]] * 5, "flat": [1.0] * 10,
                        "text": "eyes", "map": [{"x": 1.0, "y": 2.0}] * 5}.items()}
    headers = {name: encode(msg)[0] for name, msg in good.items()} | bad
    for name, raw in headers.items():
        (tmp_path / f"{name}.msgpack").write_bytes(raw)
    (tmp_path / "manifest.tsv").write_text("".join(f"{name}\tclient\t2\t100\t\n" for name in headers))
    proc = mb.run_mono(mb.program("VectorCheck"), str(tmp_path), str(tmp_path / "manifest.tsv"), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = {r["name"]: r for r in map(json.loads, proc.stdout.splitlines())}
    for name, msg in good.items():
        r = got[name]
        assert r["valid"] is True, r
        assert r["typed_encoder_hex"] == r["reencoded_hex"] == headers[name].hex(), name
        assert r["header"]["face_points"] == [list(p) for p in msg.model_dump()["face_points"]]
        assert r["header"]["persona"]["max_reply_sentences"] == msg.persona.max_reply_sentences
    for name in bad:
        with pytest.raises(ProtocolError) as err:
            decode_client([headers[name], b"x" * 100])
        assert got[name]["valid"] is False and got[name]["error_code"] == err.value.code.value, got[name]

def test_core_units():
    proc = mb.run_mono(mb.program("CoreTests"), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passed = [line for line in proc.stdout.splitlines() if line.startswith("PASS ")]
    assert len(passed) == 11 and "ALL 11" in proc.stdout, proc.stdout
