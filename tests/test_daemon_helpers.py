"""Shared helpers of the daemon/SDK tests (no tests here): collecting one utterance's packets from a session."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import zmq

from sdk.protocol import decode_server, encode


@dataclass
class Stream:
    """Packets received by one session handle, with their arrival times."""

    packets: list[tuple[Any, bytes | None, float]] = field(default_factory=list)

    def of(self, kind: str) -> list[Any]:
        return [p for p, _, _ in self.packets if p.type == kind]

    def events(self, utt: int | None = None) -> list[tuple[str, int]]:
        return [(p.event, p.utt) for p in self.of("event") if utt is None or p.utt == utt]

    def text(self, utt: int) -> str:
        return "".join(p.text for p in self.of("text") if p.utt == utt and p.role == "assistant")


def collect_until(handle: Any, stop: Any, timeout: float = 90.0, stream: Stream | None = None) -> Stream:
    """Read packets from a SessionHandle until `stop(pkt)` is true (inclusive) or `timeout` s pass (fails)."""
    stream = stream or Stream()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out; last events: {stream.events()[-5:]}"
        item = handle.recv(timeout=min(left, 10.0))
        if item is None:
            continue
        pkt, payload = item
        stream.packets.append((pkt, payload, time.monotonic()))
        if stop(pkt):
            return stream


def is_end(utt: int):
    return lambda p: p.type == "event" and p.event == "utterance_end" and p.utt == utt


def check_continuity(stream: Stream, first_seq: int | None = None) -> None:
    """seq has no gap; audio pts step by 882 with a video packet of the same pts for each; pts never decrease."""
    seqs = [p.seq for p, _, _ in stream.packets]
    if first_seq is not None:
        assert seqs[0] == first_seq
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "seq gap"
    audio = [p.pts for p in stream.of("audio")]
    video = [p.pts for p in stream.of("video")]
    assert audio and all(b - a == 882 for a, b in zip(audio, audio[1:])), "audio pts not continuous"
    assert set(video) <= set(audio) and len(video) >= len(audio) - 1
    media = [p.pts for p, _, _ in stream.packets if p.type != "state"]
    assert all(b >= a for a, b in zip(media, media[1:])), "pts went backwards"
    for p, payload, _ in stream.packets:
        if p.type == "audio":
            assert len(payload) == 882 * 2
        elif p.type == "video":
            assert (p.width, p.height, len(payload)) == (256, 256, 256 * 256 * 3)


class RawControl:
    """A bare DEALER speaking protocol v2 by hand (for error/fuzz tests)."""

    def __init__(self, endpoint: str):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def send_frames(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(frames)

    def recv(self, timeout: float = 10.0) -> Any:
        assert self.sock.poll(int(timeout * 1000)), "no reply from the daemon"
        msg, _ = decode_server(self.sock.recv_multipart())
        return msg

    def call(self, msg: Any, *blobs: bytes, timeout: float = 10.0) -> Any:
        self.send_frames(encode(msg, *blobs))
        return self.recv(timeout)

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()
