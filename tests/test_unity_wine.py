"""The Unity core as a Windows program: the same live scenario as tests/test_unity_live.py (open, persona,
say, interrupt, daemon restart, dispose, a second core), with the C# built by mcs and run by Microsoft's
.NET Core 3.1 runtime for Windows (dotnet.exe from PyPI's `dotnetcore2` win_amd64 wheel) under Debian's
wine64, against the live daemon on this machine. Its sockets are .NET's Windows implementation over
wine's Winsock; the process loads no libzmq DLL (checked in its module list).

Needs `wine64` (apt) and the runtime, which `bash scripts/setup.sh --test` puts in .venv/wine-dotnet
(or set XSTREAMER_WINE_DOTNET to a folder holding dotnet.exe). Marked slow (about a minute here).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from unity_build import mb

import test_unity_live as live

ROOT = Path(__file__).resolve().parent.parent
WINE = shutil.which("wine64") or ("/usr/lib/wine/wine64" if os.path.exists("/usr/lib/wine/wine64") else None)
WINESERVER = shutil.which("wineserver") or str(Path(WINE or "/usr/lib/wine/wine64").with_name("wineserver"))
DOTNET_DIR = Path(os.environ.get("XSTREAMER_WINE_DOTNET", ROOT / ".venv" / "wine-dotnet"))
DOTNET = DOTNET_DIR / "dotnet.exe"


def _missing() -> str | None:
    if mb.missing_tools():
        return mb.missing_tools()
    if not mb.NETFX_API.is_dir():
        return f"{mb.NETFX_API} missing (mono-devel's reference assemblies)"
    if WINE is None:
        return "wine64 not installed (apt-get install wine64)"
    if not DOTNET.exists():
        return f"{DOTNET} missing (scripts/setup.sh --test unpacks the dotnetcore2 win_amd64 wheel there)"
    return None


pytestmark = [pytest.mark.mono, pytest.mark.slow, pytest.mark.skipif(_missing() is not None, reason=str(_missing()))]

RUNTIMECONFIG = {"runtimeOptions": {"tfm": "netcoreapp3.1",
                                    "framework": {"name": "Microsoft.NETCore.App", "version": "3.1.23"}}}


def _windows_path(p: Path) -> str:
    return "Z:" + str(p).replace("/", "\\")      # wine maps drive Z: to /


@pytest.fixture(scope="module")
def wine_env(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("wineprefix")
    env = dict(os.environ, WINEPREFIX=str(prefix), WINEDEBUG="-all", DOTNET_CLI_TELEMETRY_OPTOUT="1")
    subprocess.run([WINE, "wineboot", "-i"], env=env, capture_output=True, timeout=300)
    subprocess.run([WINESERVER, "-w"], env=env, capture_output=True, timeout=120)
    yield env
    subprocess.run([WINESERVER, "-k"], env=env, capture_output=True, timeout=60)


def test_windows_build_under_wine_against_the_live_daemon(wine_env, monkeypatch):
    exe = mb.program("LiveTest", api=mb.NETFX_API)
    cfg = exe.with_name("LiveTest.runtimeconfig.json")
    cfg.write_text(json.dumps(RUNTIMECONFIG))
    for key, value in wine_env.items():
        monkeypatch.setenv(key, value)
    command = [WINE, str(DOTNET), "exec", "--runtimeconfig", cfg.name, exe.name]
    tags, out = live.run_live(command, cwd=str(exe.parent), portrait=_windows_path(live.PORTRAIT))
    assert tags["NATIVE"]["os"] == "Win32NT" and tags["NATIVE"]["runtime"].startswith("dotnet 3.1"), tags["NATIVE"]
    live.check_live(tags, out)
