"""`xstreamer say TEXT --out FILE.mp4`: the avatar speaks TEXT verbatim; the utterance is written to an mp4.

Without `--connect` the engine runs in-process (no sockets); with `--connect tcp://HOST:PORT` a running
daemon renders it through the SDK client. Both paths write through `sdk.recorder.Recorder` (256x256 or
512x512 @ 25 fps H.264 + AAC; a transparent portrait over grey), from the utterance's first chunk to its
`utterance_end`. `--motion FILE.csv` also writes the motion channels of every frame (motion-space models).
`xstreamer chat` shares this code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sdk.protocol.constants import DEFAULT_CONTROL, FRAME_SIZE, MOTION_CHANNELS, VIDEO_SIZES

MAX_MEDIA_S = 120.0      # give up when an utterance is longer than this (seconds of media)


def parse_points(text: str) -> list[tuple[float, float]]:
    """"x,y;x,y;x,y;x,y;x,y" (or space-separated pairs) -> five (x, y) points (argparse type)."""
    pairs = [p for p in text.replace(";", " ").split() if p]
    try:
        pts = [tuple(float(v) for v in p.split(",")) for p in pairs]
    except ValueError:
        raise argparse.ArgumentTypeError(f"face points must be numbers: {text!r}") from None
    if len(pts) != 5 or any(len(p) != 2 for p in pts):
        raise argparse.ArgumentTypeError("give five x,y points: eye, eye, nose tip, mouth corner, mouth corner")
    return pts  # type: ignore[return-value]


class MotionLog:
    """The motion channels of the frames written, as CSV rows (frame, pts, then one column per channel)."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.rows: list[str] = []

    def add(self, pts: int, values: Any) -> None:
        if self.path is not None:
            self.rows.append(",".join([str(len(self.rows)), str(pts)] + [f"{float(v):.4f}" for v in values]))

    def close(self) -> None:
        if self.path is not None:
            self.path.write_text(",".join(["frame", "pts", *MOTION_CHANNELS]) + "\n" + "\n".join(self.rows) + "\n",
                                 encoding="utf-8")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help="what to say (verbatim)")
    add_common(parser)


def add_common(parser: argparse.ArgumentParser) -> None:
    """Options shared by `say` and `chat`."""
    parser.add_argument("--out", required=True, help="the mp4 to write")
    parser.add_argument("--portrait", help="portrait image (PNG/JPEG/WebP) of the avatar")
    parser.add_argument("--face-points", type=parse_points, default=None, metavar="X,Y;X,Y;X,Y;X,Y;X,Y",
                        help="where no face is found in the portrait: its eye centres, nose tip and mouth corners "
                             "(pixels; each pair left to right in the image)")
    parser.add_argument("--size", type=int, choices=VIDEO_SIZES, default=FRAME_SIZE, help="frame side in pixels")
    parser.add_argument("--motion", help="also write the motion channels of every frame to this CSV file")
    parser.add_argument("--persona", help="persona JSON file (sdk.protocol.Persona)")
    parser.add_argument("--model", default="default", help="model preset or checkpoint dir (in-process only)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (in-process only)")
    parser.add_argument("--glm4voice", metavar="DIR", default=None,
                        help="a directory with GLM-4-Voice's published parts (glm-4-voice-9b, glm-4-voice-tokenizer, "
                             "glm-4-voice-decoder) for a model whose Thinker is glm4voice (in-process only)")
    parser.add_argument("--actor-tokens", choices=["on", "off"], default=None,
                        help="on: the Actor writes and speaks the reply (its own text and audio tokens); off: the "
                             "Thinker's are streamed (default: the model's; in-process only)")
    parser.add_argument("--connect", help=f"control endpoint of a running daemon, e.g. {DEFAULT_CONTROL}")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for media (with --connect)")
    parser.add_argument("--keys", default=None, metavar="DIR",
                        help="CURVE client keys (a folder from `xstreamer keys client`), for a --keys daemon")


def join_text(pieces: list[str]) -> str:
    """The reply's text pieces as one string (a space between pieces that carry none themselves)."""
    out = ""
    for p in pieces:
        if out and p and not out[-1].isspace() and not p[0].isspace():
            out += " "
        out += p
    return out.strip()


def run(args: argparse.Namespace) -> int:
    return render(args, mode="speak")


def error_line(exc: BaseException) -> str:
    """"[code] message" of a typed engine or protocol error (the code once), else the exception's text.

    A ProtocolError's own text already starts with its "[code] " (sdk.protocol.errors); an engine error's
    does not."""
    code = getattr(exc, "code", None)
    code = getattr(code, "value", code)
    text = str(exc) or type(exc).__name__
    if not isinstance(code, str) or not code:
        return text
    prefix = f"[{code}] "
    return text if text.startswith(prefix) else prefix + text


def _inputs(args: argparse.Namespace) -> tuple[Any, bytes | None]:
    from sdk.protocol.messages import Persona

    persona = None
    if args.persona:
        persona = Persona.model_validate_json(Path(args.persona).read_text(encoding="utf-8"))
    portrait = Path(args.portrait).read_bytes() if args.portrait else None
    return persona, portrait


def render(args: argparse.Namespace, mode: str) -> int:
    """Render one utterance (`mode`: "speak" or "chat") to args.out; prints the reply text for chat."""
    if not str(args.text).strip():
        print("error: TEXT is empty", file=sys.stderr)
        return 2
    try:
        persona, portrait = _inputs(args)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if args.connect:
            text = _via_daemon(args, mode, persona, portrait, out)
        else:
            text = _in_process(args, mode, persona, portrait, out)
    except Exception as exc:   # typed engine/protocol errors: one clear line
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return 1
    if mode == "chat":
        print(text)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _in_process(args: argparse.Namespace, mode: str, persona: Any, portrait: bytes | None, out: Path) -> str:
    from engine_core.engine import Engine
    from sdk.recorder import Recorder

    tokens = getattr(args, "actor_tokens", None)
    engine = Engine.load(model=args.model, device=args.device, glm4voice=getattr(args, "glm4voice", None),
                         actor_tokens=None if tokens is None else tokens == "on")
    session = engine.open_session(portrait=portrait, persona=persona, face_points=args.face_points,
                                  video_size=args.size)
    texts: list[str] = []
    motion = MotionLog(args.motion)
    try:
        utt = session.speak(args.text) if mode == "speak" else session.chat(args.text)
        rec = Recorder(out)
        started = done = False
        media = 0.0
        while not done:
            chunk = session.next_chunk()
            media += chunk.num_frames / session.fps
            if media > MAX_MEDIA_S:
                raise TimeoutError(f"no utterance_end after {MAX_MEDIA_S:.0f} s of media")
            for ev in chunk.events:
                if ev.utt == utt and ev.event == "utterance_start":
                    started = True
                if ev.utt == utt and ev.event == "utterance_end":
                    done = True
                    if ev.reason.startswith("error"):
                        raise RuntimeError(f"the engine failed on this utterance: {ev.reason}")
            if started:
                texts += [t.text for t in chunk.texts if t.role == "assistant"]
                rec.add_chunk(chunk.pts, chunk.audio, chunk.frames)
                for i, m in enumerate(chunk.motion if chunk.motion is not None else []):
                    motion.add(chunk.pts + i * session.sample_rate // session.fps, m)
        rec.close()
        motion.close()
    finally:
        session.close()
    return join_text(texts)


def _via_daemon(args: argparse.Namespace, mode: str, persona: Any, portrait: bytes | None, out: Path) -> str:
    from sdk.client import Client
    from sdk.recorder import Recorder

    import numpy as np

    texts: list[str] = []
    motion = MotionLog(args.motion)
    with Client(args.connect, client_name=f"xstreamer-{mode}", timeout=10.0, keys=args.keys) as client:
        with client.open_session(persona=persona, portrait=portrait, face_points=args.face_points,
                                 video_size=args.size) as session:
            utt = session.speak(args.text) if mode == "speak" else session.chat(args.text)
            with Recorder(out) as rec:
                started = False
                for pkt, payload in session.packets(timeout=args.timeout):
                    if pkt.type == "event" and pkt.utt == utt and pkt.event == "utterance_start":
                        started = True
                    if pkt.type == "event" and pkt.utt == utt and pkt.event == "lost":
                        raise RuntimeError(f"the daemon lost this utterance ({pkt.reason})")
                    if not started:
                        continue
                    if pkt.type == "text" and pkt.role == "assistant":
                        texts.append(pkt.text)
                    if pkt.type == "motion" and payload is not None:
                        motion.add(pkt.pts, np.frombuffer(payload, "<f4"))
                    rec.add(pkt, payload)
                    if pkt.type == "event" and pkt.utt == utt and pkt.event in ("utterance_end", "interrupted"):
                        if pkt.reason.startswith("error"):
                            raise RuntimeError(f"the engine failed on this utterance: {pkt.reason}")
                        break
                    if rec.duration_s > MAX_MEDIA_S:
                        raise TimeoutError(f"no utterance_end after {MAX_MEDIA_S:.0f} s of media")
    motion.close()
    return join_text(texts)
