"""`xstreamer protocol schema` prints a JSON Schema naming every message; `xstreamer protocol tables` is
what docs/protocol.md's generated reference holds (no torch: the SDK's own command)."""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from sdk.protocol import messages as m

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {"client_messages": m.ClientMessage, "server_messages": m.ServerMessage,
          "media_packets": m.MediaPacket}


def xs(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "xstreamer", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _models(union) -> list[type]:
    return list(typing.get_args(typing.get_args(union)[0]))


def test_schema_names_every_message_type():
    schema = json.loads(xs("protocol", "schema"))
    assert schema["protocol_version"] == m.PROTOCOL_VERSION == 2
    for group, union in GROUPS.items():
        part = schema[group]
        expected = {model.model_fields["type"].default: model.__name__ for model in _models(union)}
        mapping = part["discriminator"]["mapping"]
        assert part["discriminator"]["propertyName"] == "type"
        assert set(mapping) == set(expected), group
        for type_name, model_name in expected.items():
            ref = mapping[type_name]
            assert ref == f"#/$defs/{model_name}", (group, type_name, ref)
            definition = part["$defs"][model_name]
            props = definition["properties"]
            assert props["type"]["const"] == type_name
            assert props["v"]["const"] == 2                        # every header carries the version
            assert set(props) == set(getattr(m, model_name).model_fields), model_name
        assert len(part["oneOf"]) == len(expected)
    # the media headers carry session / utt / seq / pts; Error carries every ErrorCode
    for model in _models(m.MediaPacket):
        props = schema["media_packets"]["$defs"][model.__name__]["properties"]
        assert {"session", "utt", "seq", "pts"} <= set(props), model.__name__
    codes = schema["server_messages"]["$defs"]["ErrorCode"]["enum"]
    assert codes == [c.value for c in m.ErrorCode]
    total = sum(len(_models(u)) for u in GROUPS.values())
    assert total == 11 + 6 + 6


def test_docs_hold_the_generated_tables():
    tables = xs("protocol", "tables").strip()
    doc = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    marker = "## Message reference (generated)\n"
    assert marker in doc
    generated = doc.split(marker, 1)[1].strip()
    assert generated == tables, "docs/protocol.md is stale: paste the output of `xstreamer protocol tables`"
    for group, union in GROUPS.items():
        for model in _models(union):
            assert f"#### `{model.model_fields['type'].default}` ({model.__name__})" in generated
    for code in m.ErrorCode:
        assert f"`{code.value}`" in generated
