"""The Python codec against the golden vectors in tests/vectors/ (the C# and JS clients test the same files)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

from sdk.protocol import ProtocolError, decode_client, decode_media, decode_server, pack_header

VEC = Path(__file__).resolve().parent / "vectors"
NAMES = json.loads((VEC / "index.json").read_text())["vectors"]
DECODERS = {"client": decode_client, "server": decode_server, "media": decode_media}


def payload(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


def frames_of(entry: dict, header: bytes) -> list[bytes]:
    """Rebuild the multipart message a vector describes."""
    body = payload(entry["payload_len"])
    if entry["direction"] == "media":
        return [entry["topic"].encode("ascii"), header] + [body] * (entry["frames"] - 2)
    return [header] + [body] * (entry["frames"] - 1)


def from_json(obj):
    if isinstance(obj, dict):
        if set(obj) == {"$hex"}:
            return bytes.fromhex(obj["$hex"])
        return {k: from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_json(v) for v in obj]
    return obj


def load(name: str) -> tuple[dict, bytes]:
    return json.loads((VEC / f"{name}.json").read_text(encoding="utf-8")), (VEC / f"{name}.msgpack").read_bytes()


def test_vector_set_covers_every_message_type():
    from sdk.protocol import messages as m
    seen = {(e["direction"], e["header"]["type"]) for e in (load(n)[0] for n in NAMES) if e["valid"]}
    for direction, union in (("client", m.ClientMessage), ("server", m.ServerMessage), ("media", m.MediaPacket)):
        for model in union.__origin__.__args__:
            assert (direction, model.model_fields["type"].default) in seen
    codes = {load(n)[0].get("error_code") for n in NAMES}
    assert {"malformed", "unsupported_version", "unknown_type", "invalid_audio", "empty_text"} <= codes


@pytest.mark.parametrize("name", NAMES)
def test_vector(name: str):
    entry, header = load(name)
    assert entry["name"] == name
    assert bytes.fromhex(entry["header_hex"]) == header
    assert hashlib.sha256(payload(entry["payload_len"])).hexdigest() == entry["payload_sha256"]
    decode = DECODERS[entry["direction"]]
    frames = frames_of(entry, header)
    if entry["valid"]:
        assert "error_code" not in entry
        msg, rest = decode(frames)
        # The decoded header equals the JSON; re-encoding the model reproduces the bytes exactly.
        assert msgpack.unpackb(header, raw=False) == from_json(entry["header"])
        assert msg.model_dump(mode="json") == entry["header"]
        assert pack_header(msg) == header
        blob = rest if entry["direction"] != "media" else ([] if rest is None else [rest])
        assert [hashlib.sha256(b).hexdigest() for b in blob] == [entry["payload_sha256"]] * (entry["payload_len"] > 0)
    else:
        with pytest.raises(ProtocolError) as info:
            decode(frames)
        assert info.value.code.value == entry["error_code"], str(info.value)


def test_generator_is_deterministic(tmp_path):
    """Re-running make_vectors.py reproduces the committed files byte for byte."""
    before = {p.name: p.read_bytes() for p in VEC.iterdir() if p.suffix in (".json", ".msgpack")}
    script = (VEC / "make_vectors.py").read_text()
    copy = tmp_path / "make_vectors.py"
    # Run a copy that writes into tmp_path (OUT is the script's own folder).
    copy.write_text(script.replace("ROOT = Path(__file__).resolve().parents[2]",
                                   f"ROOT = Path({str(VEC.parents[1])!r})"))
    subprocess.run([sys.executable, str(copy)], check=True, capture_output=True)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.suffix in (".json", ".msgpack")}
    assert after == before
