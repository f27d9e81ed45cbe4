"""Viewer chat -> the co-host: each Twitch chat line that passes the streamer's filters becomes a `chat` request.

The reader (twitch_chat.py) never waits on the daemon: an accepted line is handed to a task, so PINGs are
answered while the daemon is busy. The question reaches the co-host as "<display name> asks: <question>".
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Callable

from sdk.protocol import ProtocolError

from .daemon_link import DaemonLink, LinkError
from .twitch_chat import ChatAuthError, ChatFilter, ChatLine, TwitchChatReader, TwitchConfig


def prompt_for(line: ChatLine, question: str) -> str:
    return f"{line.display_name} asks: {question}"


class ChatRelay:
    def __init__(self, config: TwitchConfig, chat_filter: ChatFilter, link: DaemonLink,
                 log: Callable[[str], None] = print) -> None:
        self.link = link
        self.filter = chat_filter
        self.log = log
        self.reader = TwitchChatReader(config, self.on_line, log=log)
        self.counts: dict[str, int] = {"seen": 0, "accepted": 0, "sent": 0, "failed": 0}
        self.refused: dict[str, int] = {}
        self.recent: deque[dict] = deque(maxlen=10)     # the last accepted lines and what became of them
        self._tasks: set[asyncio.Task] = set()

    def info(self) -> dict:
        return {"channel": self.reader.channel, "nick": self.reader.nick, "state": self.reader.state,
                "error": self.reader.last_error, "prefix": self.filter.prefix, "mods_only": self.filter.mods_only,
                "user_cooldown_s": self.filter.user_cooldown_s, "global_cooldown_s": self.filter.global_cooldown_s,
                **self.counts, "refused": dict(self.refused), "irc": dict(self.reader.counts),
                "recent": list(self.recent)}

    async def run(self) -> None:
        try:
            await self.reader.run()
        except ChatAuthError:
            return                      # logged by the reader; /health shows state "failed"
        finally:
            for task in list(self._tasks):
                task.cancel()

    def on_line(self, line: ChatLine) -> None:
        self.counts["seen"] += 1
        question, verdict = self.filter.check(line)
        if question is None:
            self.refused[verdict] = self.refused.get(verdict, 0) + 1
            return
        self.counts["accepted"] += 1
        entry = {"user": line.display_name, "question": question, "utt": None, "error": None}
        self.recent.append(entry)
        task = asyncio.get_running_loop().create_task(self._send(line, question, entry))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, line: ChatLine, question: str, entry: dict) -> None:
        try:
            answer = await self.link.chat(prompt_for(line, question))
        except (LinkError, ProtocolError) as exc:
            self.counts["failed"] += 1
            entry["error"] = str(exc)
            self.log(f"chat from {line.display_name} not answered: {exc}")
            return
        self.counts["sent"] += 1
        entry["utt"] = answer["utt"]
        self.log(f"chat: {line.display_name} asks {question!r} -> utterance {answer['utt']}")
