"""`xstreamer say` / `xstreamer chat` as subprocesses (tiny model): in-process and through a daemon; their
error lines; and (marked slow) the README's main job on the embedded default."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdk.launcher import DaemonProcess
from test_recorder_mp4 import check_mp4

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[1]
ADA = ROOT / "sdk" / "portrait" / "gallery" / "ada.png"      # a shipped gallery character: a valid portrait


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
    say = xs("say", "Hello from the command line.", "--out", str(tmp_path / "say.mp4"), "--model", "tiny",
             "--portrait", str(ADA), *extra)
    assert say.returncode == 0, say.stderr
    assert "error" not in say.stderr.lower()
    info = check_mp4(tmp_path / "say.mp4")
    assert 0.5 < info["video_s"] < 20
    assert float(abs(info["pcm"]).max()) > 0           # there is speech in the audio track
    chat = xs("chat", "What is the weather like?", "--out", str(tmp_path / "chat.mp4"), "--model", "tiny",
              "--persona", str(persona), "--portrait", str(ADA), *extra)
    assert chat.returncode == 0, chat.stderr
    reply = chat.stdout.strip()
    assert reply and "weather" in reply.lower()       # the toy thinker's reply refers to the question
    check_mp4(tmp_path / "chat.mp4")


def error_line(r: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_say_reports_typed_errors(tmp_path, daemon):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    r = xs("say", "Hi.", "--out", str(tmp_path / "x.mp4"), "--portrait", str(bad), "--connect", daemon.control)
    line = error_line(r)
    assert r.returncode == 1 and line.startswith("error: [invalid_portrait] ") and line.count("[") == 1, line
    r = xs("say", "   ", "--out", str(tmp_path / "x.mp4"), "--connect", daemon.control)
    assert r.returncode == 2 and "empty" in r.stderr


@pytest.mark.parametrize("via", ["in-process", "daemon"])
def test_too_long_text_is_text_too_long_both_ways(tmp_path, daemon, via):
    extra = ["--connect", daemon.control] if via == "daemon" else ["--model", "tiny"]
    r = xs("say", "x" * 5000, "--out", str(tmp_path / "x.mp4"), *extra)
    line = error_line(r)
    assert r.returncode == 1 and line.startswith("error: [text_too_long] ") and line.count("[") == 1, line
    assert "5000 characters" in line and not (tmp_path / "x.mp4").exists()


def test_model_and_checkpoint_errors_are_named(tmp_path):
    r = xs("say", "Hi.", "--out", str(tmp_path / "x.mp4"), "--model", "/nonexistent/dir")
    line = error_line(r)
    assert r.returncode == 1 and line.startswith("error: [bad_config] no such model directory or preset "
                                                 "'/nonexistent/dir'"), line
    assert "unknown model preset" not in line
    empty = tmp_path / "empty_model"
    empty.mkdir()
    r = xs("say", "Hi.", "--out", str(tmp_path / "x.mp4"), "--model", str(empty))
    line = error_line(r)
    assert line.startswith("error: [bad_checkpoint] model directory") and "actor.safetensors" in line
    junk = tmp_path / "junk_model"
    junk.mkdir()
    (junk / "actor.safetensors").write_bytes(b"junk")
    r = xs("say", "Hi.", "--out", str(tmp_path / "x.mp4"), "--model", str(junk))
    line = error_line(r)
    assert r.returncode == 1 and line.startswith("error: [bad_checkpoint] "), line
    assert "not a readable" in line


@pytest.mark.slow
def test_readme_main_job_on_the_default_model(tmp_path):
    """The README's first command, in-process on the embedded default (SmolLM2, Piper, shipped Actor/VAE)."""
    out = tmp_path / "reply.mp4"
    r = xs("chat", "Hi! Who are you?", "--out", str(out), timeout=600)
    assert r.returncode == 0, r.stderr
    assert "error:" not in r.stderr and f"wrote {out}" in r.stderr
    reply = r.stdout.strip()
    words = re.findall(r"[A-Za-z']+", reply)
    assert len(words) >= 3, reply                                     # a sentence, not a token or two
    assert sum(len(w) for w in words) >= 0.6 * len(reply.replace(" ", "")), reply   # mostly letters
    assert all(ord(ch) < 128 for ch in reply), reply                  # English text, no token junk
    assert not re.search(r"<\|[^>]*\|>|\[internal\]|Traceback", reply), reply
    info = check_mp4(out)                  # h264 256x256 @ 25 fps + aac 22,050 Hz, durations within 40 ms
    assert 1.0 < info["video_s"] < 60
    frames = np.stack([f.to_ndarray(format="rgb24") for f in info["frames"]]).astype(np.float32)
    assert frames.shape[1:] == (256, 256, 3)
    motion = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))        # per frame step
    assert frames.std(axis=0).mean() > 0.5 and motion.max() > 0.5, "the video is a still image"
    pcm = info["pcm"].astype(np.float64)
    if info["pcm"].dtype.kind == "f":      # AAC decodes to float, whose peaks may overshoot 1.0 a little
        pcm = pcm * 32767
    rms = np.sqrt(np.mean(pcm ** 2))
    assert rms > 300 and np.abs(pcm).max() > 3000, f"the audio is (nearly) silent: rms {rms:.0f}"


def test_reply_pieces_are_joined_with_single_spaces():
    from xstreamer.commands.say import join_text

    assert join_text(["Hello!", "I'm your co-host."]) == "Hello! I'm your co-host."
    assert join_text(["You ", "said ", "hi."]) == "You said hi."
    assert join_text([]) == ""
