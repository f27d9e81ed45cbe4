"""A Twitch-chat-like IRC server over TLS on loopback, for tests (its certificate is made per test run).

It follows what Twitch's IRC docs describe: `CAP REQ` is ACKed, `PASS oauth:<token>` is checked when the server
is given a token (a wrong one gets `NOTICE * :Login authentication failed` and the connection closed), `NICK`
gets the 001 welcome, `JOIN #channel` is echoed with the client's nick, and the test sends viewer lines
(`say`: PRIVMSG with the tags Twitch sends: badges, display-name, mod, user-id, id, ...), `PING`s and
`RECONNECT`. Every line a client sent is kept in `received` (per connection).

    with TlsIrcServer(tmp_path) as irc:           # a thread with its own asyncio loop; irc.port, irc.cafile
        ...reader connects to 127.0.0.1:irc.port trusting irc.cafile...
        irc.wait_joined("#channel")
        irc.say("viewer", "!ask hello?", mod=False)
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import ssl
import subprocess
import threading
import time
from pathlib import Path

OPENSSL = shutil.which("openssl")


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost (valid one day): (cert.pem, key.pem)."""
    cert, key = folder / "irc-cert.pem", folder / "irc-key.pem"
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-addext", "basicConstraints=critical,CA:TRUE"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class TlsIrcServer:
    def __init__(self, folder: Path, token: str | None = None) -> None:
        self.cafile, key = make_certificate(folder)
        self.ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ssl.load_cert_chain(self.cafile, key)
        self.token = token
        self.received: list[list[str]] = []          # per connection, every line the client sent
        self.joined: list[tuple[str, str]] = []      # (nick, #channel)
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._ids = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="irc-server", daemon=True)
        self._server: asyncio.base_events.Server | None = None

    # ---- lifecycle -----------------------------------------------------------------------------------------
    def __enter__(self) -> "TlsIrcServer":
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._client, "127.0.0.1", 0, ssl=self.ssl))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            for w in list(self._writers):
                w.close()
            self._server.close()
            await self._server.wait_closed()
        self._call(close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # ---- what the test does ------------------------------------------------------------------------------
    def say(self, login: str, text: str, channel: str = "#channel", mod: bool = False, badges: str = "",
            display: str | None = None) -> None:
        """A viewer's chat line, with Twitch's tags (display names may need tag escaping)."""
        display = display if display is not None else login.capitalize()
        escaped = display.replace("\\", "\\\\").replace(" ", "\\s").replace(";", "\\:")
        tags = (f"@badge-info=;badges={badges};color=#1E90FF;display-name={escaped};emotes=;first-msg=0;"
                f"flags=;id=msg-{next(self._ids)};mod={1 if mod else 0};returning-chatter=0;room-id=1001;"
                f"subscriber=0;tmi-sent-ts={int(time.time() * 1000)};turbo=0;user-id={abs(hash(login)) % 10**8};"
                f"user-type={'mod' if mod else ''}")
        self.send(f"{tags} :{login}!{login}@{login}.tmi.twitch.tv PRIVMSG {channel} :{text}")

    def ping(self) -> None:
        self.send("PING :tmi.twitch.tv")

    def reconnect(self) -> None:
        """Twitch's RECONNECT: the client should come back (the server then closes the connection)."""
        self.send(":tmi.twitch.tv RECONNECT")

    def send(self, line: str) -> None:
        async def out() -> None:
            for w in list(self._writers):
                w.write(line.encode() + b"\r\n")
                await w.drain()
        self._call(out())

    def wait_joined(self, channel: str, count: int = 1, timeout: float = 20.0) -> None:
        self.wait(lambda: sum(1 for _, c in self.joined if c == channel) >= count, timeout, f"{count} JOIN {channel}")

    def wait(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; the server got {self.received}")

    # ---- the server side -----------------------------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines: list[str] = []
        self.received.append(lines)
        self._writers.append(writer)
        nick, authed = "", self.token is None

        def send(text: str) -> None:
            writer.write(text.encode() + b"\r\n")
        try:
            while raw := await reader.readline():
                line = raw.decode().rstrip("\r\n")
                lines.append(line)
                word, _, rest = line.partition(" ")
                if word == "CAP":
                    send(f":tmi.twitch.tv CAP * ACK :{rest.partition(':')[2]}")
                elif word == "PASS":
                    authed = self.token is None or rest == f"oauth:{self.token}"
                elif word == "NICK":
                    nick = rest.strip()
                    if not authed:
                        send(":tmi.twitch.tv NOTICE * :Login authentication failed")
                        await writer.drain()
                        break
                    send(f":tmi.twitch.tv 001 {nick} :Welcome, GLHF!")
                    send(f":tmi.twitch.tv 376 {nick} :>")
                elif word == "JOIN":
                    channel = rest.strip()
                    send(f":{nick}!{nick}@{nick}.tmi.twitch.tv JOIN {channel}")
                    send(f"@emote-only=0;room-id=1001 :tmi.twitch.tv ROOMSTATE {channel}")
                    self.joined.append((nick, channel))
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            if writer in self._writers:
                self._writers.remove(writer)
            writer.close()
