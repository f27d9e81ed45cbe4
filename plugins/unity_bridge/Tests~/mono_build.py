"""Builds the Unity bridge's C# core and test programs with Debian's mono `mcs`.

Used by tests/test_unity_*.py.

Outputs are cached in a temp directory keyed by a hash of the sources, so each program is compiled once
per source version (all test modules of a session share it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent            # plugins/unity_bridge
TESTS = PKG / "Tests~"
CORE_SOURCES = sorted((PKG / "Runtime" / "Core").glob("*.cs"))
UNITY_SOURCES = sorted((PKG / "Runtime" / "Unity").glob("*.cs"))
EDITOR_SOURCES = sorted((PKG / "Editor").glob("*.cs"))
TMP_STUB = TESTS / "UnityStub" / "TextMeshPro.cs"
STUB = TESTS / "UnityStub" / "UnityEngine.cs"


def missing_tools() -> str | None:
    """A reason to skip (mcs/mono missing), or None."""
    for tool in ("mcs", "mono"):
        if shutil.which(tool) is None:
            return f"`{tool}` not found: apt-get install -y mono-mcs mono-devel"
    return None


def _key(paths: list[Path], extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def build_dir() -> Path:
    d = Path(tempfile.gettempdir()) / f"xstreamer_unity_build_{os.getuid()}"
    d.mkdir(parents=True, exist_ok=True)
    return d


# .NET Framework reference assemblies shipped with mono: a build against them runs on .NET (Core) too,
# where mono's own mscorlib puts some types (Queue<T>, ...) in other assemblies than .NET's facades expect.
NETFX_API = Path("/usr/lib/mono/4.7.2-api")


def mcs(out: Path, sources: list[Path], refs: list[Path] = (), target: str = "exe",
        defines: list[str] = (), check: bool = True, api: Path | None = None) -> subprocess.CompletedProcess:
    """Run mcs; returns the process (raises with the compiler output when `check` and it fails). With
    `api`, compile against that folder's reference assemblies instead of mono's runtime ones."""
    cmd = ["mcs", f"-target:{target}", f"-out:{out}", "-nologo", "-warnaserror+", "-nowarn:67,414,649"]
    if api is None:
        cmd.append("-r:System.Core")
    else:
        cmd += ["-nostdlib"] + [f"-r:{api / n}" for n in ("mscorlib.dll", "System.dll", "System.Core.dll")]
    cmd += [f"-r:{r}" for r in refs] + [f"-define:{d}" for d in defines] + [str(s) for s in sources]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise RuntimeError(f"mcs failed ({out.name}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _cached(name: str, sources: list[Path], refs: list[Path], target: str, defines: list[str] = (),
            api: Path | None = None) -> Path:
    key = _key(sources + refs, f"{target}{defines}{api}")
    out = build_dir() / key / name
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        # build under the final file name (mcs names the assembly after it; .NET Core's loader checks the
        # name), in a private folder, then move it into place
        tmp_dir = Path(tempfile.mkdtemp(dir=out.parent))
        try:
            mcs(tmp_dir / name, sources, refs, target, defines, api=api)
            os.replace(tmp_dir / name, out)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return out


def core_dll(api: Path | None = None) -> Path:
    """Xstreamer.Avatar.Core.dll (managed only: it loads no native library)."""
    return _cached("Xstreamer.Avatar.Core.dll", CORE_SOURCES, [], "library", api=api)


def program(name: str, api: Path | None = None) -> Path:
    """Build Tests~/Programs/NAME.cs (+ JsonOut.cs) into an exe next to a copy of the core dll (with `api`,
    both against those reference assemblies: NETFX_API makes a build .NET on Windows runs)."""
    core = core_dll(api)
    srcs = [TESTS / "Programs" / f"{name}.cs", TESTS / "Programs" / "JsonOut.cs"]
    exe = _cached(f"{name}.exe", srcs, [core], "exe", api=api)
    for f in (core,):
        if not (exe.parent / f.name).exists():
            shutil.copy(f, exe.parent / f.name)
    return exe


def unity_stub_dll(harness: bool = False) -> Path:
    """The UnityEngine stand-in; `harness` adds the test-only StubHarness controls (STUB_HARNESS)."""
    return _cached("UnityEngine.dll", [STUB], [], "library", ["STUB_HARNESS"] if harness else [])


def tmp_stub_dll() -> Path:
    """The TextMeshPro stand-in (signatures only), for the sample."""
    return _cached("Unity.TextMeshPro.dll", [TMP_STUB], [unity_stub_dll()], "library")


def unity_program(name: str, unity_sources: list[Path] | None = None) -> Path:
    """Build Tests~/Programs/NAME.cs against the core, the Unity components (Runtime/Unity, or
    `unity_sources`, e.g. mutated copies) and the harness stand-in of UnityEngine, into an exe with those
    dlls next to it (mono runs it as is)."""
    core, stub = core_dll(), unity_stub_dll(harness=True)
    runtime = _cached("Xstreamer.Avatar.Runtime.dll", list(unity_sources or UNITY_SOURCES), [core, stub],
                      "library")
    srcs = [TESTS / "Programs" / f"{name}.cs", TESTS / "Programs" / "JsonOut.cs"]
    exe = _cached(f"{name}.exe", srcs, [core, stub, runtime], "exe")
    for f in (core, stub, runtime):
        if not (exe.parent / f.name).exists():
            shutil.copy(f, exe.parent / f.name)
    return exe


def run_mono(exe: Path, *args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """Run a built program with mono; returns the finished process."""
    return subprocess.run(["mono", "--debug", str(exe), *args], capture_output=True, text=True,
                          timeout=timeout, **kw)
