"""Viewer chat as input (plugins/obs_source/twitch_chat.py, chat_relay.py): the IRC parsing Twitch's tags need,
the streamer's filters, the reader against a Twitch-like IRC server over TLS on loopback (tests/twitch_irc_fake.py,
its certificate made by the test), and a chat line reaching a live daemon through the bridge.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import struct
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from plugins.obs_source.procs import BridgeProc, Daemon
from plugins.obs_source.twitch_chat import (ChatAuthError, ChatFilter, ChatLine, TwitchChatReader, TwitchConfig,
                                            chat_line, parse_line)
from sdk.protocol.codec import unpack_header

sys.path.insert(0, str(Path(__file__).resolve().parent))
from twitch_irc_fake import OPENSSL, TlsIrcServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
XSTREAMER = str(ROOT / ".venv" / "bin" / "xstreamer")
# the reader tests talk TLS to a loopback server (and the last one to a daemon subprocess): marked `process`
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command (a test certificate)")
live = pytest.mark.process


# ---- parsing ------------------------------------------------------------------------------------------------
def test_privmsg_with_twitch_tags_is_parsed():
    raw = (r"@badge-info=subscriber/8;badges=moderator/1,subscriber/6;color=#0D4200;display-name=Ronni\sthe\:Great;"
           r"emotes=25:0-4;id=b34ccfc7-4977-403a-8a94-33c6bac34fb8;mod=1;room-id=1337;subscriber=1;"
           r"tmi-sent-ts=1507246572675;turbo=0;user-id=1337;user-type=mod "
           ":ronni!ronni@ronni.tmi.twitch.tv PRIVMSG #dallas :!ask Kappa Keepo Kappa\r\n")
    msg = parse_line(raw)
    assert msg.command == "PRIVMSG" and msg.params == ["#dallas", "!ask Kappa Keepo Kappa"]
    assert msg.tags["display-name"] == "Ronni the;Great" and msg.nick == "ronni"
    line = chat_line(msg)
    assert (line.channel, line.login, line.display_name, line.text) == ("dallas", "ronni", "Ronni the;Great",
                                                                        "!ask Kappa Keepo Kappa")
    assert line.is_mod and not line.is_broadcaster and line.badges == {"moderator": "1", "subscriber": "6"}
    assert line.user_id == "1337" and line.message_id.startswith("b34ccfc7")


def test_broadcaster_actions_and_other_commands():
    line = chat_line(parse_line("@badges=broadcaster/1;mod=0;display-name= :me!me@me.tmi.twitch.tv PRIVMSG "
                                "#me :\x01ACTION waves\x01"))
    assert line.text == "waves" and line.is_mod and line.is_broadcaster and line.display_name == "me"
    assert parse_line("PING :tmi.twitch.tv").params == ["tmi.twitch.tv"]
    assert parse_line(":tmi.twitch.tv RECONNECT").command == "RECONNECT"
    assert chat_line(parse_line(":tmi.twitch.tv NOTICE * :Login authentication failed")) is None
    assert parse_line("") is None and parse_line("@a=b ") is None
    assert parse_line(r"@x=a\\b\ :n PRIVMSG #c :t").tags["x"] == "a\\b", "escaped backslash; lone trailing one"


# ---- the filters --------------------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def viewer(text: str, login: str = "viewer", mod: bool = False) -> ChatLine:
    return ChatLine(channel="c", login=login, display_name=login.title(), text=text, is_mod=mod,
                    is_broadcaster=False, badges={})


def test_filter_prefix_mods_and_cooldowns():
    clock = Clock()
    f = ChatFilter(prefix="!ask", user_cooldown_s=30, global_cooldown_s=10, clock=clock, ignore=frozenset({"bot"}))
    assert f.check(viewer("hello there")) == (None, "no_prefix")
    assert f.check(viewer("!asked something")) == (None, "no_prefix")
    assert f.check(viewer("!ask")) == (None, "empty")
    assert f.check(viewer("!ask hi", login="bot")) == (None, "ignored")
    assert f.check(viewer("!ASK  what game is this? ")) == ("what game is this?", "accepted")
    clock.now += 5
    assert f.check(viewer("!ask another", login="other")) == (None, "global_cooldown")
    clock.now += 6                                        # 11 s after the accepted line
    assert f.check(viewer("!ask again")) == (None, "user_cooldown")
    assert f.check(viewer("!ask my turn", login="other")) == ("my turn", "accepted")
    clock.now += 30
    assert f.check(viewer("!ask again")) == ("again", "accepted")

    mods = ChatFilter(prefix="", mods_only=True, user_cooldown_s=0, global_cooldown_s=0, max_chars=10, clock=clock)
    assert mods.check(viewer("plain line")) == (None, "not_mod")
    assert mods.check(viewer("a long line from a mod", mod=True)) == ("a long lin", "accepted")
    assert mods.check(viewer("again at once", mod=True))[1] == "accepted", "no cooldowns when set to 0"


# ---- the reader against a loopback TLS IRC server -------------------------------------------------------------
async def read_lines(config: TwitchConfig, irc: TlsIrcServer, actions, want: int, timeout: float = 20.0):
    """Run a reader until it delivered `want` lines; `actions(reader)` runs (in a thread) once it joined."""
    got: list[ChatLine] = []
    reader = TwitchChatReader(config, got.append, log=lambda m: None)
    task = asyncio.create_task(reader.run())
    try:
        deadline = time.monotonic() + timeout
        while reader.state != "joined":
            assert time.monotonic() < deadline and not task.done(), (reader.state, reader.last_error)
            await asyncio.sleep(0.02)
        await asyncio.to_thread(actions, reader)
        while len(got) < want:
            assert time.monotonic() < deadline and not task.done(), (reader.state, reader.last_error, got)
            await asyncio.sleep(0.02)
        return reader, got
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@live
@needs_openssl
def test_reader_speaks_twitch_irc_over_tls(tmp_path):
    with TlsIrcServer(tmp_path, token="s3cr3t") as irc:
        config = TwitchConfig(channel="#Channel", nick="MyBot", oauth="s3cr3t", host="127.0.0.1", port=irc.port,
                              cafile=str(irc.cafile))

        def chat(reader):
            irc.ping()
            irc.say("viewer_one", "!ask how are you?", badges="subscriber/3")
            irc.say("a_mod", "hello chat", mod=True, badges="moderator/1", display="A Mod")
            irc.say("viewer_one", "elsewhere", channel="#other")
        reader, got = asyncio.run(read_lines(config, irc, chat, want=2))
        sent = irc.received[0]
        assert sent[:4] == ["CAP REQ :twitch.tv/tags twitch.tv/commands", "PASS oauth:s3cr3t", "NICK mybot",
                            "JOIN #channel"], "the documented sequence, in order"
        irc.wait(lambda: "PONG :tmi.twitch.tv" in sent, 5, "the PONG")
        assert [(g.login, g.display_name, g.text, g.is_mod) for g in got] == [
            ("viewer_one", "Viewer_one", "!ask how are you?", False), ("a_mod", "A Mod", "hello chat", True)]
        assert reader.counts["pings"] == 1 and reader.counts["lines"] == 2, "another channel's line is not ours"


@live
@needs_openssl
def test_reader_reads_anonymously_and_comes_back_after_reconnect(tmp_path):
    with TlsIrcServer(tmp_path) as irc:
        config = TwitchConfig(channel="channel", host="127.0.0.1", port=irc.port, cafile=str(irc.cafile))

        def reconnect(reader):
            irc.reconnect()
            irc.wait_joined("#channel", count=2)
            irc.say("viewer", "!ask still there?")
        reader, got = asyncio.run(read_lines(config, irc, reconnect, want=1))
        first = irc.received[0]
        assert not any(line.startswith("PASS") for line in first), "anonymous: no PASS"
        assert first[1].startswith("NICK justinfan") and first[2] == "JOIN #channel"
        assert len(irc.received) == 2 and reader.counts["connects"] == 2 and got[0].text == "!ask still there?"


@live
@needs_openssl
def test_wrong_token_and_untrusted_server_are_errors(tmp_path):
    with TlsIrcServer(tmp_path, token="right") as irc:
        config = TwitchConfig(channel="channel", nick="bot", oauth="oauth:wrong", host="127.0.0.1", port=irc.port,
                              cafile=str(irc.cafile))
        reader = TwitchChatReader(config, lambda line: None, log=lambda m: None)
        with pytest.raises(ChatAuthError, match="Login authentication failed"):
            asyncio.run(asyncio.wait_for(reader.run(), 20))
        assert reader.state == "failed" and "oauth" not in (reader.last_error or "").split("Twitch refused")[0]

        untrusted = TwitchConfig(channel="channel", host="127.0.0.1", port=irc.port)   # the system's CAs only
        reader = TwitchChatReader(untrusted, lambda line: None, log=lambda m: None)

        async def attempt():
            task = asyncio.create_task(reader.run())
            deadline = time.monotonic() + 20
            while reader.last_error is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        asyncio.run(attempt())
        assert "CERTIFICATE_VERIFY_FAILED" in reader.last_error and reader.state != "joined"
    with pytest.raises(ValueError, match="nick"):
        TwitchChatReader(TwitchConfig(channel="c", oauth="x"), lambda line: None)


# ---- a chat line reaches the daemon through the bridge --------------------------------------------------------
def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


async def reply_packets(bridge: BridgeProc, irc: TlsIrcServer, want: int) -> tuple[dict, dict]:
    """Type a line into the chat, wait for the bridge to turn it into a chat request, and count the audio and
    video packets of that reply on the page's WebSocket."""
    counts = {"audio": 0, "video": 0}
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(bridge.api("ws").replace("http", "ws", 1), max_msg_size=0) as ws:
            irc.say("curious_viewer", "hello, not for the co-host")
            irc.say("curious_viewer", "!ask What game should I play next?", display="Curious Viewer")
            deadline = time.monotonic() + 60
            chat = {}
            while not (chat.get("recent") and chat["recent"][-1]["utt"]):
                assert time.monotonic() < deadline, chat
                chat = (await asyncio.to_thread(get_json, bridge.api("health")))["chat"]
                await asyncio.sleep(0.1)
            utt = chat["recent"][-1]["utt"]
            while min(counts.values()) < want:
                assert time.monotonic() < deadline, counts
                msg = await ws.receive(timeout=60)
                if msg.type != aiohttp.WSMsgType.BINARY:
                    continue
                hlen = struct.unpack(">I", msg.data[12:16])[0]
                header = unpack_header(msg.data[16:16 + hlen])
                if header.get("utt") == utt and header["type"] in counts:
                    counts[header["type"]] += 1
    return chat, counts


@live
@needs_openssl
def test_a_chat_line_becomes_a_reply_through_the_bridge(tmp_path):
    daemon = Daemon.start(XSTREAMER)
    try:
        with TlsIrcServer(tmp_path) as irc:
            bridge = BridgeProc.start(XSTREAMER, daemon.control, extra=(
                "--twitch-channel", "channel", "--twitch-server", f"127.0.0.1:{irc.port}",
                "--twitch-cafile", str(irc.cafile), "--chat-prefix", "!ask", "--chat-cooldown", "10"))
            try:
                irc.wait_joined("#channel")
                deadline = time.monotonic() + 30
                while not get_json(bridge.api("health"))["daemon"]:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
                chat, counts = asyncio.run(reply_packets(bridge, irc, want=10))
                assert chat["state"] == "joined" and chat["seen"] == 2 and chat["accepted"] == 1
                assert chat["refused"] == {"no_prefix": 1} and chat["sent"] == 1
                assert chat["recent"][-1]["question"] == "What game should I play next?"
                assert counts["audio"] >= 10 and counts["video"] >= 10
                irc.say("curious_viewer", "!ask And another one?")     # within the global cooldown
                irc.wait(lambda: get_json(bridge.api("health"))["chat"]["refused"].get("global_cooldown"), 10,
                         "the cooldown to refuse the next line")
                assert get_json(bridge.api("stats"))["chat"]["sent"] == 1
                log = "\n".join(bridge.proc.log)
                assert "Curious Viewer asks 'What game should I play next?'" in log
            finally:
                bridge.stop()
    finally:
        daemon.stop()
