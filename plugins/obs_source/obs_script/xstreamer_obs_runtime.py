"""The OBS script's side of the bridge process, without libobs: find xstreamer's Python, build the bridge's
command line, start it with a lifeline, stop it. Runs in OBS's own Python (3.11 on Debian; the one set under
Tools -> Scripts -> Python Settings on Windows and macOS), which does not have xstreamer installed: the bridge
runs in xstreamer's virtual environment.

Where xstreamer is (`find_runtime`), in this order:
1. the script's *xstreamer* setting: a virtual environment folder, its Python (`python`, `python.exe`), or the
   `xstreamer` / `xstreamer.exe` command;
2. the environment the script file itself lives in: `pip install "xstreamer[engine,obs]"` puts this file in
   `<venv>/Lib/site-packages/...` (Windows) or `<venv>/lib/python3.X/site-packages/...` (Linux, macOS), and a
   clone made by scripts/setup.sh has `<clone>/.venv`;
3. `xstreamer` on PATH.
A venv's Python is `Scripts\\python.exe` on Windows and `bin/python` elsewhere.

The bridge gets a pipe on stdin (`--exit-with-stdin`): it ends when OBS closes that pipe, exits or dies. Its
token and a Twitch OAuth token travel in its environment, never on its command line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Callable

TOKEN_ENV = "XSTREAMER_OBS_TOKEN"          # plugins/obs_source/web_guard.py reads it
TWITCH_OAUTH_ENV = "XSTREAMER_TWITCH_OAUTH"  # plugins/obs_source/bridge.py reads it
LOG_MAX_BYTES = 5 * 1024 * 1024             # the bridge's log is moved to <log>.1 beyond this, at its start
STOP_GRACE_S = 5.0                          # after closing the lifeline, before terminate()
KILL_GRACE_S = 3.0                          # after terminate(), before kill()


@dataclass(frozen=True)
class Host:
    """The OS facts the script depends on (injected by tests to run the Windows and macOS paths on Linux)."""

    platform: str = sys.platform

    @property
    def windows(self) -> bool:
        return self.platform == "win32"

    def venv_python(self, venv: Path) -> Path:
        return venv / "Scripts" / "python.exe" if self.windows else venv / "bin" / "python"

    def venv_command(self, venv: Path) -> Path:
        return venv / "Scripts" / "xstreamer.exe" if self.windows else venv / "bin" / "xstreamer"

    def pure(self, path: str) -> PurePath:
        """`path` parsed with this OS's rules (backslashes and drive letters on Windows)."""
        return PureWindowsPath(path) if self.windows else PurePosixPath(path)

    def popen_flags(self) -> dict:
        """No console window for the bridge on Windows (OBS is a GUI program)."""
        return {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0x08000000)} if self.windows else {}


@dataclass(frozen=True)
class Runtime:
    """How to run xstreamer: `prefix` + ["obs", ...]; `origin` says where it was found."""

    prefix: tuple[str, ...]
    origin: str

    def argv(self, *args: str) -> list[str]:
        return [*self.prefix, *args]


def _is_python(path: PurePath) -> bool:
    """python, python3, python3.11, pythonw, python.exe, ...: an interpreter rather than the xstreamer command."""
    name = path.name.lower()
    name = name[:-4] if name.endswith(".exe") else name
    return re.fullmatch(r"python(\d+(\.\d+)?)?w?", name) is not None


def find_runtime(setting: str, script_file: str, host: Host, which: Callable[[str], str | None] = shutil.which,
                 exists: Callable[[Path], bool] = Path.is_file) -> Runtime | None:
    """Where xstreamer is (see the module docstring), or None."""
    setting = setting.strip().strip('"')
    if setting:
        path = Path(os.path.expanduser(setting))
        if (path / "pyvenv.cfg").exists() or path.is_dir():
            python = host.venv_python(path)
            return Runtime((str(python), "-m", "xstreamer"), f"setting (venv {path})") if exists(python) else None
        if _is_python(host.pure(setting)):
            return Runtime((str(path), "-m", "xstreamer"), "setting (python)")
        return Runtime((str(path),), "setting (command)")
    here = Path(script_file).resolve().parent
    for folder in (here, *here.parents):
        for venv in (folder, folder / ".venv"):
            if (venv / "pyvenv.cfg").exists():
                python = host.venv_python(venv)
                if exists(python):
                    return Runtime((str(python), "-m", "xstreamer"), f"the environment at {venv}")
    command = which("xstreamer")
    return Runtime((command,), "PATH") if command else None


@dataclass
class BridgeSpec:
    """What the script wants the bridge to be; equal specs mean "no restart needed"."""

    port: int
    token: str
    start_daemon: bool = True
    model: str = "default"
    connect: str = ""
    keys: str = ""                  # CURVE client folder (`xstreamer keys client DIR NAME`) for a daemon off loopback
    persona: str = ""
    portrait: str = ""
    twitch_channel: str = ""
    twitch_nick: str = ""
    twitch_oauth: str = field(default="", repr=False)
    chat_prefix: str = "!ask"
    chat_mods_only: bool = False
    chat_user_cooldown: int = 30
    chat_cooldown: int = 10

    def args(self) -> list[str]:
        argv = ["obs", "--port", str(self.port), "--exit-with-stdin"]
        argv += ["--start-daemon", "--model", self.model] if self.start_daemon else ["--connect", self.connect]
        if self.keys and not self.start_daemon:
            argv += ["--keys", self.keys]
        if self.persona:
            argv += ["--persona", self.persona]
        if self.portrait:
            argv += ["--portrait", self.portrait]
        if self.twitch_channel:
            argv += ["--twitch-channel", self.twitch_channel, "--chat-prefix", self.chat_prefix,
                     "--chat-user-cooldown", str(self.chat_user_cooldown), "--chat-cooldown", str(self.chat_cooldown)]
            if self.twitch_nick:
                argv += ["--twitch-nick", self.twitch_nick]
            if self.chat_mods_only:
                argv.append("--chat-mods-only")
        return argv

    def env(self) -> dict[str, str]:
        env = {TOKEN_ENV: self.token, "PYTHONUNBUFFERED": "1"}
        if self.twitch_channel and self.twitch_oauth:
            env[TWITCH_OAUTH_ENV] = self.twitch_oauth
        return env


def rotate_log(path: str, max_bytes: int = LOG_MAX_BYTES) -> bool:
    """Move a log grown past `max_bytes` to `<path>.1` (replacing an older one); True when it did."""
    try:
        if os.path.getsize(path) <= max_bytes:
            return False
        os.replace(path, path + ".1")
        return True
    except OSError:
        return False


class BridgeProcess:
    """A bridge this script started: its Popen, the spec it was started with, its lifeline (stdin pipe)."""

    def __init__(self, popen: subprocess.Popen, spec: BridgeSpec, argv: list[str]) -> None:
        self.popen = popen
        self.spec = spec
        self.argv = argv

    @classmethod
    def start(cls, runtime: Runtime, spec: BridgeSpec, log_path: str, host: Host) -> "BridgeProcess":
        argv = runtime.argv(*spec.args())
        env = {k: v for k, v in os.environ.items() if k not in (TOKEN_ENV, TWITCH_OAUTH_ENV)} | spec.env()
        rotate_log(log_path)
        with open(log_path, "ab") as out:
            # cwd: a neutral folder, so that `python -m xstreamer` cannot pick up a same-named folder of OBS's
            popen = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, env=env,
                                     cwd=tempfile.gettempdir(), **host.popen_flags())
        return cls(popen, spec, argv)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def stop(self, wait: bool = False) -> None:
        """Close the lifeline (the bridge stops by itself, its daemon with it); terminate() after STOP_GRACE_S,
        kill() after KILL_GRACE_S more. Waited for here when `wait`, else by a daemon thread."""
        try:
            if self.popen.stdin is not None and not self.popen.stdin.closed:
                self.popen.stdin.close()
        except OSError:
            pass
        if wait:
            self._reap()
        else:
            threading.Thread(target=self._reap, name="xstreamer-obs-reaper", daemon=True).start()

    def _reap(self) -> None:
        for action, grace in ((None, STOP_GRACE_S), (self.popen.terminate, KILL_GRACE_S), (self.popen.kill, 5.0)):
            if action is not None and self.popen.poll() is None:
                try:
                    action()
                except OSError:
                    pass
            try:
                self.popen.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue
