"""`xstreamer say` / `xstreamer chat` as subprocesses (tiny model): in-process and through a daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sdk.launcher import DaemonProcess
from test_recorder_mp4 import check_mp4

ROOT = Path(__file__).resolve().parents[1]


def xs(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xstreamer", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def daemon():
    with DaemonProcess(model="tiny") as d:
        yield d


@pytest.mark.parametrize("via", ["in-process", "daemon"])
def test_say_and_chat_write_valid_mp4s(tmp_path, daemon, via):
    persona = tmp_path / "p.json"
    persona.write_text(json.dumps({"name": "Ada", "system_prompt": "You are Ada.", "model": "tiny"}))
    extra = ["--connect", daemon.control] if via == "daemon" else []
    say = xs("say", "Hello from the command line.", "--out", str(tmp_path / "say.mp4"), "--model", "tiny", *extra)
    assert say.returncode == 0, say.stderr
    info = check_mp4(tmp_path / "say.mp4")
    assert 0.5 < info["video_s"] < 20
    assert float(abs(info["pcm"]).max()) > 0           # there is speech in the audio track
    chat = xs("chat", "What is the weather like?", "--out", str(tmp_path / "chat.mp4"), "--model", "tiny",
              "--persona", str(persona), *extra)
    assert chat.returncode == 0, chat.stderr
    reply = chat.stdout.strip()
    assert reply and "weather" in reply.lower()       # the toy thinker's reply refers to the question
    check_mp4(tmp_path / "chat.mp4")


def test_say_reports_typed_errors(tmp_path, daemon):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    r = xs("say", "Hi.", "--out", str(tmp_path / "x.mp4"), "--portrait", str(bad), "--connect", daemon.control)
    assert r.returncode == 1 and "[invalid_portrait]" in r.stderr
    r = xs("say", "   ", "--out", str(tmp_path / "x.mp4"), "--connect", daemon.control)
    assert r.returncode == 2 and "empty" in r.stderr


def test_reply_pieces_are_joined_with_single_spaces():
    from xstreamer.commands.say import join_text

    assert join_text(["Hello!", "I'm your co-host."]) == "Hello! I'm your co-host."
    assert join_text(["You ", "said ", "hi."]) == "You said hi."
    assert join_text([]) == ""
