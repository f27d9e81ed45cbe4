"""The install route that needs no bash (docs/obs.md): `pip install "xstreamer[engine,obs] @ ..."` must carry
what a streamer's machine needs without the clone: every shipped weight file under engine_core/weights, the
OBS script with its runtime helper, and the page. Builds the wheel from this checkout (no network, no build
isolation) and compares its contents with the files on disk."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.process   # subprocesses / loopback sockets (docs/testing.md's fast subset skips these)


def test_the_wheel_carries_weights_obs_script_and_page(tmp_path):
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                          "-q", "-w", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    wheel = next(tmp_path.glob("xstreamer-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(["git", "ls-files", "engine_core/weights", "plugins/obs_source/obs_script",
                              "plugins/obs_source/web"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert any(name.endswith(".safetensors") for name in tracked), "the default weights are in the repository"
    missing = sorted(set(tracked) - names)
    assert not missing, f"the wheel lacks {missing}"
