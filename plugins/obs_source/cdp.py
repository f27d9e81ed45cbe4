"""A minimal Chrome DevTools Protocol client: headless Chromium for the OBS page's tests, latency measurement
and documentation screenshots. Needs only aiohttp (already a bridge dependency) and a `chromium` binary.

    async with Browser.launch() as browser:
        page = await browser.open("http://127.0.0.1:8765/?overlay=1")
        stats = await page.evaluate("window.xstreamerStats")
        png = await page.screenshot()
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required", "--disable-background-timer-throttling",
         "--disable-renderer-backgrounding", "--mute-audio", "--remote-debugging-port=0",
         "--hide-scrollbars", "--disable-backgrounding-occluded-windows"]


class CDPError(RuntimeError):
    """Chromium could not start, or a DevTools command failed."""


class Page:
    """One tab, driven through a flattened DevTools session."""

    def __init__(self, browser: "Browser", session_id: str, target_id: str) -> None:
        self.browser, self.session_id, self.target_id = browser, session_id, target_id

    async def send(self, method: str, **params: Any) -> dict:
        return await self.browser.send(method, session_id=self.session_id, **params)

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises are awaited)."""
        res = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise CDPError(f"JavaScript error: {res['exceptionDetails'].get('text')} "
                           f"{res['exceptionDetails'].get('exception', {}).get('description', '')}")
        return res["result"].get("value")

    async def screenshot(self, transparent: bool = True) -> bytes:
        """PNG bytes of the viewport (with an alpha channel when `transparent`)."""
        if transparent:
            await self.send("Emulation.setDefaultBackgroundColorOverride", color={"r": 0, "g": 0, "b": 0, "a": 0})
        res = await self.send("Page.captureScreenshot", format="png")
        return base64.b64decode(res["data"])

    async def close(self) -> None:
        await self.browser.send("Target.closeTarget", targetId=self.target_id)


class Browser:
    """A headless Chromium process and its DevTools WebSocket."""

    def __init__(self, proc: subprocess.Popen, profile: str, ws: aiohttp.ClientWebSocketResponse,
                 http: aiohttp.ClientSession) -> None:
        self.proc, self.profile, self.ws, self.http = proc, profile, ws, http
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def launch(cls, executable: str = CHROMIUM, width: int = 256, height: int = 256,
                     timeout: float = 30.0) -> "Browser":
        if not Path(executable).exists():
            raise CDPError(f"{executable} not found (apt-get install chromium)")
        profile = tempfile.mkdtemp(prefix="xs-chromium-")
        proc = subprocess.Popen([executable, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                                 "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)  # its own process group: close() ends all of it
        loop = asyncio.get_running_loop()
        http = None
        try:
            url = await asyncio.wait_for(loop.run_in_executor(None, _devtools_url, proc), timeout)
            http = aiohttp.ClientSession()
            ws = await http.ws_connect(url, max_msg_size=0)
        except BaseException as exc:
            if http is not None:
                await http.close()
            _end(proc)
            shutil.rmtree(profile, ignore_errors=True)
            if isinstance(exc, asyncio.TimeoutError):
                raise CDPError("chromium did not print its DevTools address in time") from None
            raise
        return cls(proc, profile, ws, http)

    async def __aenter__(self) -> "Browser":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def send(self, method: str, session_id: str | None = None, **params: Any) -> dict:
        msg_id = next(self._ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params}
        if session_id:
            msg["sessionId"] = session_id
        fut = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = fut
        await self.ws.send_str(json.dumps(msg))
        try:
            reply = await asyncio.wait_for(fut, 30.0)
        finally:
            self._waiting.pop(msg_id, None)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    async def open(self, url: str, width: int = 256, height: int = 256) -> Page:
        """A new tab showing `url` with a width x height viewport."""
        target = await self.send("Target.createTarget", url="about:blank", newWindow=True)
        attached = await self.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        page = Page(self, attached["sessionId"], target["targetId"])
        await page.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                        mobile=False)
        await page.send("Page.enable")
        await page.send("Page.navigate", url=url)
        return page

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            fut = self._waiting.get(data.get("id", -1))
            if fut is not None and not fut.done():
                fut.set_result(data)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.send("Browser.close"), 5.0)
        except Exception:  # noqa: BLE001 - the browser may already be gone
            pass
        self._reader.cancel()
        await self.ws.close()
        await self.http.close()
        _end(self.proc)
        shutil.rmtree(self.profile, ignore_errors=True)


def _end(proc: subprocess.Popen) -> None:
    """Stop chromium and every process of its group (renderers, GPU process, crash handler)."""
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _devtools_url(proc: subprocess.Popen) -> str:
    assert proc.stderr is not None
    for raw in proc.stderr:
        match = re.search(rb"DevTools listening on (ws://\S+)", raw)
        if match:
            threading.Thread(target=_drain, args=(proc,), daemon=True).start()
            return match.group(1).decode()
    raise CDPError(f"chromium exited (rc {proc.poll()}) before it printed its DevTools address")


def _drain(proc: subprocess.Popen) -> None:
    """Keep reading chromium's stderr so that it never blocks on a full pipe."""
    assert proc.stderr is not None
    for _ in proc.stderr:
        pass
