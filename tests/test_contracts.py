"""What the SDK, engine, daemon, studio and plugins agree on is written once, in sdk/protocol (issue #26): no
copy of a shared number or of the ready line's pattern elsewhere, and each removed drift has its test here."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

from sdk.protocol import constants
from sdk.protocol.ready import ReadyLine, format_ready_line, parse_ready_line

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine_core", "sdk", "studio_gui", "plugins", "xstreamer")
# Numbers that are only ever one of the shared constants (a port, the audio clock, samples per frame).
SHARED_NUMBERS = {str(constants.DEFAULT_CONTROL_PORT), str(constants.DEFAULT_MEDIA_PORT),
                  str(constants.SAMPLE_RATE), str(constants.SAMPLES_PER_FRAME)}


# The OBS script runs inside OBS's own Python, without the SDK (pydantic, pyzmq): it keeps its own default.
STANDALONE = ("plugins/obs_source/obs_script/",)
ENDPOINT = re.compile(r"[rf]?[\"']tcp://[\w.]+:75[67]\d[\"']")       # a default endpoint written as a literal
READY_PATTERN = re.compile(r"re\.(compile|match|search)\([^)]*daemon ready")


def _sources() -> list[Path]:
    out = []
    for pkg in PACKAGES:
        out += [p for p in (ROOT / pkg).rglob("*.py")
                if "sdk/protocol" not in p.as_posix() and not any(s in p.as_posix() for s in STANDALONE)]
    return out


def _code_tokens(path: Path) -> list[tokenize.TokenInfo]:
    return list(tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline))


def test_no_module_outside_sdk_protocol_writes_a_shared_number():
    found = []
    for path in _sources():
        for tok in _code_tokens(path):
            if tok.type == tokenize.NUMBER and tok.string in SHARED_NUMBERS:
                found.append(f"{path.relative_to(ROOT)}:{tok.start[0]}: {tok.string}")
            elif tok.type == tokenize.STRING and ENDPOINT.fullmatch(tok.string):
                found.append(f"{path.relative_to(ROOT)}:{tok.start[0]}: {tok.string}")
    assert not found, "shared constants re-declared (import sdk.protocol.constants):\n" + "\n".join(found)


def test_the_ready_line_has_one_pattern():
    copies = [str(p.relative_to(ROOT)) for p in _sources()
              if READY_PATTERN.search(p.read_text(encoding="utf-8"))]
    assert copies == [], f"the ready line is parsed outside sdk/protocol/ready.py: {copies}"


def test_ready_line_round_trips_and_tolerates_later_fields():
    line = format_ready_line("tcp://127.0.0.1:40001", "tcp://127.0.0.1:40002", "tiny")
    want = ReadyLine("tcp://127.0.0.1:40001", "tcp://127.0.0.1:40002", "tiny")
    assert parse_ready_line(line + "\n") == want and parse_ready_line(line + " curve=on") == want
    assert parse_ready_line("INFO loading model") is None
    assert parse_ready_line("x " + line) is None


def test_the_engine_and_every_thinker_use_the_protocols_text_limit():
    """A 2,001-4,000 character line used to pass the protocol and the engine (4,000) and fail later in the
    cascade Thinker (2,000) as "error: TextTooLongError" after an ack. Now there is one limit."""
    from engine_core.engine.inputs import check_text
    from engine_core.errors import TextTooLongError
    from engine_core.thinker import cascade

    assert not hasattr(cascade, "MAX_TEXT_CHARS") or cascade.MAX_TEXT_CHARS is constants.MAX_TEXT_CHARS
    n = constants.MAX_TEXT_CHARS
    assert check_text("x" * n) and cascade._check_text("x" * n)
    for check in (check_text, cascade._check_text):
        with pytest.raises(TextTooLongError):
            check("x" * 3000)


def test_a_missing_persona_is_the_protocols_persona():
    from engine_core.engine.inputs import check_persona
    from sdk.protocol.messages import Persona

    assert check_persona(None) == Persona() and isinstance(check_persona(None), Persona)


def test_the_engine_clock_is_the_protocols():
    from engine_core.thinker import base

    assert (base.SAMPLE_RATE, base.FPS, base.SAMPLES_PER_FRAME) == \
        (constants.SAMPLE_RATE, constants.FPS, constants.SAMPLES_PER_FRAME)


@pytest.mark.process
def test_a_3000_character_line_is_refused_at_once_over_the_wire():
    """Refused with `text_too_long` in reply to the chat/speak itself (no ack, then an error event later)."""
    from sdk.client import Client
    from sdk.errors import InvalidInputError
    from sdk.launcher import DaemonProcess

    with DaemonProcess(model="tiny") as d, Client(d.control, heartbeat=False) as client, \
            client.open_session() as s:
        for say in (s.chat, s.speak):
            with pytest.raises(InvalidInputError) as info:
                say("x" * 3000)
            assert info.value.code.value == "text_too_long" and "3000 characters" in info.value.message
        assert s.speak("x" * constants.MAX_TEXT_CHARS) > 0


def test_a_thinker_backend_registered_once_is_known_to_the_config_and_the_engine(monkeypatch):
    """Adding a backend meant editing registry.py, config.py and engine.build_thinker; now one entry."""
    from engine_core.config import ModelConfig
    from engine_core.engine.engine import build_thinker
    from engine_core.errors import ConfigError
    from engine_core.thinker import registry
    from engine_core.thinker.toy import ToyThinker

    cfg = ModelConfig.from_name("tiny")
    with pytest.raises(ConfigError, match="unknown thinker 'echo'"):
        ModelConfig.from_dict({**cfg.to_dict(), "thinker": {**cfg.to_dict()["thinker"], "backend": "echo"}})
    built = []

    def echo(cfg, device, random_weights):
        built.append(device)
        return ToyThinker(hidden_size=cfg.thinker.hidden_size, vocab=cfg.thinker.text_vocab)
    monkeypatch.setitem(registry.BACKENDS, "echo",
                        registry.Backend("echo", lambda **kw: ToyThinker(**kw), echo))
    echo_cfg = ModelConfig.from_dict({**cfg.to_dict(),
                                      "thinker": {**cfg.to_dict()["thinker"], "backend": "echo"}})
    assert isinstance(build_thinker(echo_cfg, "cpu"), ToyThinker) and built == ["cpu"]
    assert isinstance(registry.load_thinker("echo", hidden_size=8, vocab=16), ToyThinker)


def _imports(path: Path) -> set[str]:
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_import_graph_points_down():
    """sdk, studio and plugins never import the engine; nothing in engine_core outside daemon/ imports the
    daemon."""
    wrong = []
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        for name in _imports(path):
            if rel.startswith(("sdk/", "studio_gui/", "plugins/")) and name.startswith("engine_core"):
                wrong.append(f"{rel} imports {name}")
            if rel.startswith("engine_core/") and not rel.startswith("engine_core/daemon/") \
                    and name.startswith("engine_core.daemon"):
                wrong.append(f"{rel} imports {name}")
    assert not wrong, "\n".join(wrong)
