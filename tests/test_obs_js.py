"""Runs the OBS page's JavaScript tests (tests/js, node's built-in test runner) under pytest: the page's msgpack
decoder, media validation and XSB1 framing against the protocol golden vectors in tests/vectors, its audible
audio clock and pts queue (web/avclock.js), and its motion decoder (web/motion.js)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[1]
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed (apt-get install nodejs)")
def test_page_decoder_against_golden_vectors():
    files = sorted(str(p) for p in (ROOT / "tests" / "js").glob("*.test.js"))
    assert files
    res = subprocess.run([NODE, "--test", *files], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    passed = re.search(r"^# pass (\d+)", res.stdout, re.M)
    failed = re.search(r"^# fail (\d+)", res.stdout, re.M)
    assert res.returncode == 0 and failed and failed.group(1) == "0", res.stdout[-4000:] + res.stderr[-2000:]
    assert passed and int(passed.group(1)) >= 20, "every vector is a test: far fewer ran than expected"
