"""Viewer chat as input: a Twitch chat reader (IRC over TLS) and the filters streamers use.

Twitch chat speaks IRC (RFC 1459 plus IRCv3 message tags) at irc.chat.twitch.tv:6697 over TLS. The reader sends
the documented sequence

    CAP REQ :twitch.tv/tags twitch.tv/commands
    PASS oauth:<token>            (left out when reading anonymously as justinfan<digits>)
    NICK <login>
    JOIN #<channel>

answers every `PING :x` with `PONG :x`, reconnects (with back-off) when the server sends `RECONNECT` or the
connection drops, and gives up with `ChatAuthError` on `NOTICE * :Login authentication failed` (or any
"improperly formatted auth" notice). Each `PRIVMSG #channel :text` becomes a `ChatLine` with the tags Twitch
sends (`display-name`, `mod`, `badges`, `user-id`, `id`); `ChatFilter` decides which lines the co-host answers:
a command prefix (`!ask`), mods only (the broadcaster counts as a mod), a per-user and a global cooldown, and a
length cap.

Only the standard library: asyncio streams with `ssl`.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

TWITCH_HOST = "irc.chat.twitch.tv"
TWITCH_TLS_PORT = 6697                # Twitch's documented IRC-over-TLS port (not one of ours)
CAPABILITIES = "twitch.tv/tags twitch.tv/commands"
MAX_LINE = 8192 + 512                 # IRCv3: 8191 bytes of tags + 512 of message
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
AUTH_FAILURES = ("login authentication failed", "improperly formatted auth", "invalid nick")
_TAG_UNESCAPE = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


class ChatAuthError(Exception):
    """Twitch refused the login (wrong or expired OAuth token, or a nick that does not match it)."""


@dataclass
class IrcMessage:
    """One IRC line: tags (unescaped), prefix, command, params (the trailing one included)."""

    command: str
    params: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    prefix: str = ""

    @property
    def nick(self) -> str:
        return self.prefix.split("!", 1)[0]


def _unescape_tag(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            out.append(_TAG_UNESCAPE.get(value[i + 1], value[i + 1]))
            i += 2
        elif ch == "\\":
            i += 1                      # a trailing lone backslash is dropped (IRCv3)
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_line(line: str) -> IrcMessage | None:
    """Parse one IRC line (without CR LF); None for an empty or command-less line."""
    line = line.rstrip("\r\n")
    tags: dict[str, str] = {}
    if line.startswith("@"):
        raw, _, line = line[1:].partition(" ")
        for item in raw.split(";"):
            if item:
                key, _, value = item.partition("=")
                tags[key] = _unescape_tag(value)
        line = line.lstrip(" ")
    prefix = ""
    if line.startswith(":"):
        prefix, _, line = line[1:].partition(" ")
        line = line.lstrip(" ")
    head, sep, trailing = line.partition(" :")
    words = head.split()
    if not words:
        return None
    params = words[1:] + ([trailing] if sep else [])
    return IrcMessage(command=words[0].upper(), params=params, tags=tags, prefix=prefix)


@dataclass
class ChatLine:
    """A viewer's chat message."""

    channel: str          # without '#'
    login: str            # the sender's login name (lower case)
    display_name: str     # `display-name` tag, else the login
    text: str
    is_mod: bool          # `mod=1`, or a moderator/broadcaster badge
    is_broadcaster: bool
    badges: dict[str, str]
    user_id: str = ""
    message_id: str = ""


def chat_line(msg: IrcMessage) -> ChatLine | None:
    """The ChatLine of a PRIVMSG (a `/me` action's text without its CTCP wrapping), else None."""
    if msg.command != "PRIVMSG" or len(msg.params) < 2:
        return None
    text = msg.params[-1]
    if text.startswith("\x01ACTION ") and text.endswith("\x01"):
        text = text[len("\x01ACTION "):-1]
    badges = {}
    for badge in filter(None, msg.tags.get("badges", "").split(",")):
        name, _, version = badge.partition("/")
        badges[name] = version
    broadcaster = "broadcaster" in badges
    mod = msg.tags.get("mod") == "1" or "moderator" in badges or broadcaster
    login = msg.nick.lower()
    return ChatLine(channel=msg.params[0].lstrip("#").lower(), login=login,
                    display_name=msg.tags.get("display-name") or login, text=text, is_mod=mod,
                    is_broadcaster=broadcaster, badges=badges, user_id=msg.tags.get("user-id", ""),
                    message_id=msg.tags.get("id", ""))


@dataclass
class ChatFilter:
    """Which chat lines reach the co-host. `prefix` ("" = every line) is stripped from the text; cooldowns are
    in seconds (0 = none) and only start when a line is accepted; `max_chars` caps the question."""

    prefix: str = "!ask"
    mods_only: bool = False
    user_cooldown_s: float = 30.0
    global_cooldown_s: float = 10.0
    max_chars: int = 300
    ignore: frozenset[str] = frozenset()          # logins never answered (e.g. the bot itself)
    clock: Callable[[], float] = time.monotonic
    _last_user: dict[str, float] = field(default_factory=dict, repr=False)
    _last_any: float | None = field(default=None, repr=False)

    def check(self, line: ChatLine) -> tuple[str | None, str]:
        """(question, "accepted") for a line to answer, else (None, reason): "no_prefix", "empty",
        "not_mod", "ignored", "global_cooldown", "user_cooldown"."""
        text = line.text.strip()
        if line.login in self.ignore:
            return None, "ignored"
        if self.prefix:
            word, _, rest = text.partition(" ")
            if word.lower() != self.prefix.lower():
                return None, "no_prefix"
            text = rest.strip()
        if not text:
            return None, "empty"
        if self.mods_only and not line.is_mod:
            return None, "not_mod"
        now = self.clock()
        if self.global_cooldown_s > 0 and self._last_any is not None and now - self._last_any < self.global_cooldown_s:
            return None, "global_cooldown"
        last = self._last_user.get(line.login)
        if self.user_cooldown_s > 0 and last is not None and now - last < self.user_cooldown_s:
            return None, "user_cooldown"
        self._last_any = now
        self._last_user[line.login] = now
        if len(self._last_user) > 10000:       # forget users whose cooldown is long over
            horizon = now - self.user_cooldown_s
            self._last_user = {k: t for k, t in self._last_user.items() if t >= horizon}
        return text[:self.max_chars], "accepted"


def anonymous_nick() -> str:
    """Twitch's read-only anonymous login (no PASS needed)."""
    return f"justinfan{random.randint(10000, 99999)}"


@dataclass
class TwitchConfig:
    channel: str
    nick: str = ""                   # "" -> anonymous (read-only) justinfan login
    oauth: str = ""                  # the token, with or without its "oauth:" prefix
    host: str = TWITCH_HOST
    port: int = TWITCH_TLS_PORT
    cafile: str | None = None        # trust this CA file instead of the system's (tests, self-hosted relays)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)


class TwitchChatReader:
    """Reads one channel's chat and calls `on_line(ChatLine)` for every message, forever (cancel to stop).

    `state` is "connecting", "joined", "reconnecting" or "failed"; `counts` counts lines, reconnects, pings;
    `last_error` is the latest connection problem (None once joined again).
    """

    def __init__(self, config: TwitchConfig, on_line: Callable[[ChatLine], Awaitable[None] | None],
                 log: Callable[[str], None] = print) -> None:
        if not config.channel.strip().lstrip("#"):
            raise ValueError("a Twitch channel name is required")
        self.config = config
        self.channel = config.channel.strip().lstrip("#").lower()
        if config.oauth.strip() and not config.nick.strip():
            raise ValueError("an OAuth token needs the nick (login) of the account it belongs to")
        self.nick = config.nick.strip().lower() if config.oauth.strip() else anonymous_nick()
        self.on_line = on_line
        self.log = log
        self.state = "connecting"
        self.last_error: str | None = None
        self.counts = {"lines": 0, "connects": 0, "reconnects": 0, "pings": 0}

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self._session()
                failures = 0                       # a clean RECONNECT: come back at once
            except ChatAuthError as exc:
                self.state, self.last_error = "failed", str(exc)
                self.log(f"twitch chat: {exc}")
                raise
            except asyncio.CancelledError:
                raise
            except (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
                message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if message != self.last_error:
                    self.log(f"twitch chat {self.config.host}:{self.config.port}: {message}; reconnecting")
                self.last_error = message
                failures += 1
            self.state = "reconnecting"
            self.counts["reconnects"] += 1
            await asyncio.sleep(BACKOFF_S[min(failures, len(BACKOFF_S) - 1)] if failures else 0.1)

    async def _session(self) -> None:
        cfg = self.config
        reader, writer = await within(15, asyncio.open_connection(
            cfg.host, cfg.port, ssl=cfg.ssl_context(), server_hostname=cfg.host, limit=MAX_LINE))
        self.counts["connects"] += 1
        try:
            send = _sender(writer)
            await send(f"CAP REQ :{CAPABILITIES}")
            if cfg.oauth:
                token = cfg.oauth.strip()
                await send(f"PASS {token if token.startswith('oauth:') else 'oauth:' + token}")
            await send(f"NICK {self.nick}")
            await send(f"JOIN #{self.channel}")
            while True:
                # Twitch PINGs about every 5 minutes; a silent connection for 6 minutes is a dead one.
                raw = await within(360, reader.readline())
                if not raw:
                    raise ConnectionError("the chat server closed the connection")
                msg = parse_line(raw.decode("utf-8", "replace"))
                if msg is None:
                    continue
                if msg.command == "PING":
                    self.counts["pings"] += 1
                    await send("PONG :" + (msg.params[-1] if msg.params else "tmi.twitch.tv"))
                elif msg.command == "RECONNECT":
                    self.log("twitch chat: the server asked to reconnect")
                    return
                elif msg.command == "NOTICE" and any(f in (msg.params[-1] if msg.params else "").lower()
                                                     for f in AUTH_FAILURES):
                    raise ChatAuthError(f"Twitch refused the login of {self.nick!r}: {msg.params[-1]} (check the "
                                        f"OAuth token and that the nick is the token's account)")
                elif msg.command == "JOIN" and msg.nick.lower() == self.nick:
                    self.state, self.last_error = "joined", None
                    self.log(f"twitch chat: reading #{self.channel} as {self.nick}")
                elif msg.command == "PRIVMSG":
                    line = chat_line(msg)
                    if line is not None and line.channel == self.channel:
                        self.counts["lines"] += 1
                        result = self.on_line(line)
                        if asyncio.iscoroutine(result):
                            await result
        finally:
            writer.close()
            try:
                await within(2, writer.wait_closed())
            except (OSError, ssl.SSLError, asyncio.TimeoutError):
                pass


async def within(seconds: float, awaitable: Awaitable):
    """`awaitable` with a time limit. Python 3.11's `asyncio.wait_for` can swallow a cancellation that arrives as
    the awaited read completes (the reader then never stops); `asyncio.timeout` (3.11+) does not."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


def _sender(writer: asyncio.StreamWriter) -> Callable[[str], Awaitable[None]]:
    async def send(line: str) -> None:
        if "\r" in line or "\n" in line:
            raise ValueError("an IRC line cannot contain CR or LF")
        writer.write(line.encode() + b"\r\n")
        await writer.drain()
    return send
