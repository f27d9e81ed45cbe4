"""Protocol v2 messages: the single source of truth for the wire format.

Every message is a ZeroMQ multipart message whose *header* frame is a msgpack map validated by one of
the pydantic models below; large binary data (portrait bytes, PCM16 audio, RGB24 video) travels in the
frames that follow the header, never inside it.

Sockets (see docs/protocol.md):

* control: the daemon binds a ROUTER, each client connects a DEALER.
  client -> daemon:  [header, *blobs]        daemon -> client:  [header, *blobs]
* media: the daemon binds an XPUB (manual mode); a client SUBscribes to its session's topic, an unguessable
  key handed out only in `opened` (any other subscription is ignored).
  daemon -> client:  [topic, header, payload?]      topic = b"xs2/" + media key (ASCII)

Every header carries ``v`` (the protocol version) and ``type``; every field is strictly typed (an integer is
never "7", 7.0 or true). Media headers also carry ``session``,
``utt`` (utterance id, 0 while idle), ``seq`` (per-session counter over every media packet: a gap means
packets were dropped) and ``pts`` (presentation time in samples of the session's audio clock).
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, Strict

from .constants import (FPS, FRAME_SIZE, MAX_AUDIO_RATE, MAX_AUDIO_SAMPLES, MAX_NAME_CHARS,  # noqa: F401
                        MAX_PORTRAIT_BYTES, MAX_PROMPT_CHARS, MAX_REPLY_SENTENCES, MAX_TEXT_CHARS,
                        MIN_AUDIO_RATE, MOTION_BLENDSHAPES, MOTION_CHANNELS, MOTION_HEAD, SAMPLE_RATE,
                        SAMPLES_PER_FRAME, VIDEO_FORMATS, VIDEO_SIZES, VOICES, HEARTBEAT_MS,
                        SESSION_TIMEOUT_S)

PROTOCOL_VERSION = 2
SUPPORTED_VERSIONS = (2,)
TOPIC_PREFIX = b"xs2/"


class ErrorCode(str, Enum):
    """Typed error codes a daemon sends back; clients raise `sdk.errors.ProtocolError` subclasses."""

    UNSUPPORTED_VERSION = "unsupported_version"
    MALFORMED = "malformed"                  # not msgpack, not a map, wrong field types, missing blob
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_SESSION = "unknown_session"
    NOT_OWNER = "not_owner"                  # the session belongs to another connection (resume it: secret)
    NOT_WELCOMED = "not_welcomed"            # a request before hello
    INVALID_PORTRAIT = "invalid_portrait"    # not an image, no face, several faces, face too small
    INVALID_PERSONA = "invalid_persona"
    EMPTY_TEXT = "empty_text"
    TEXT_TOO_LONG = "text_too_long"
    INVALID_AUDIO = "invalid_audio"
    TOO_MANY_SESSIONS = "too_many_sessions"  # the daemon's or this connection's limit
    RATE_LIMITED = "rate_limited"            # too many requests a second, or too many turns queued
    BUSY = "busy"                            # open refused: the daemon holds no more sessions in real time
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"              # client side only: no answer from the daemon (down, restarting)


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    v: Literal[2] = 2


# ---------------------------------------------------------------------------------------------------
# Shared value types


class Persona(BaseModel):
    """Who the avatar is. Stored by the studio as JSON; read by the OBS script and the Unity bridge."""

    # (Not strict like the messages: persona files are read with it too, and StoredPersona extends it.)
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="Avatar", min_length=1, max_length=MAX_NAME_CHARS)
    system_prompt: str = Field(default="You are a friendly, concise assistant.", min_length=1,
                               max_length=MAX_PROMPT_CHARS)
    greeting: str = Field(default="", max_length=MAX_PROMPT_CHARS)
    voice: str = Field(default="joe", max_length=MAX_NAME_CHARS)
    model: str = Field(default="default", max_length=MAX_NAME_CHARS)   # a preset (tiny/default/paper)
    character: str | None = Field(default=None, max_length=MAX_NAME_CHARS)   # a built-in gallery character id
    # The reply stops after this many sentences (0: no cap but the model's own length limit).
    max_reply_sentences: int = Field(default=0, ge=0, le=MAX_REPLY_SENTENCES)


# ---------------------------------------------------------------------------------------------------
# Control: client -> daemon (DEALER -> ROUTER). `req` is echoed in the reply for correlation.


class Hello(_Msg):
    """First message of a connection: the client lists the protocol versions it speaks."""

    type: Literal["hello"] = "hello"
    req: int = 0
    versions: list[int] = Field(min_length=1, max_length=16)
    client: str = Field(default="", max_length=120)


class Open(_Msg):
    """Open a session. Blob 0 (optional) is the portrait image file (PNG/JPEG/WebP bytes)."""

    type: Literal["open"] = "open"
    req: int = 0
    persona: Persona = Field(default_factory=Persona)
    has_portrait: bool = False
    video_size: Literal[256, 512] = FRAME_SIZE    # side of the square video frames (one of VIDEO_SIZES)
    # where the portrait's face cannot be found: five [x, y] points in its pixels (eye centres, nose tip, mouth
    # corners; each pair left to right in the image)
    face_points: list[Annotated[tuple[float, float], Strict(False)]] | None = Field(
        default=None, min_length=5, max_length=5)      # (a pair arrives as a msgpack array: a list)
    # The session's first utterance id (a client re-opening after a restart passes its last + 1: no repeats).
    first_utt: int = Field(default=1, ge=1, le=2 ** 31)


class Resume(_Msg):
    """Hold a session opened by another (earlier) connection of this client, e.g. after its connection was
    dropped: the `secret` from its `opened`. Answered by `opened` (the same session, topic and secret)."""

    type: Literal["resume"] = "resume"
    req: int = 0
    session: str
    secret: str = Field(max_length=128)


class Chat(_Msg):
    """A user turn in text: the persona answers it."""

    type: Literal["chat"] = "chat"
    req: int = 0
    session: str
    text: str


class Speak(_Msg):
    """The avatar speaks `text` verbatim (scripted lines, announcements)."""

    type: Literal["speak"] = "speak"
    req: int = 0
    session: str
    text: str


class Audio(_Msg):
    """The user's voice: blob 0 is PCM16 little-endian mono at `sample_rate`. `final` ends the user's turn."""

    type: Literal["audio"] = "audio"
    req: int = 0
    session: str
    sample_rate: int = Field(default=16000, ge=MIN_AUDIO_RATE, le=MAX_AUDIO_RATE)
    final: bool = False


class Interrupt(_Msg):
    """Barge-in: stop the current reply; queued media is flushed within one chunk."""

    type: Literal["interrupt"] = "interrupt"
    req: int = 0
    session: str


class SetPersona(_Msg):
    """Replace the persona of a running session (takes effect at the next turn)."""

    type: Literal["set_persona"] = "set_persona"
    req: int = 0
    session: str
    persona: Persona


class Close(_Msg):
    """End a session: the daemon publishes `session_closed` and a `closed` state, then forgets it."""

    type: Literal["close"] = "close"
    req: int = 0
    session: str


class Ping(_Msg):
    """Heartbeat; the daemon answers Pong. A session whose client sends nothing for `session_timeout_s`
    (see Welcome) is closed."""

    type: Literal["ping"] = "ping"
    req: int = 0
    session: str | None = None


class Load(_Msg):
    """How loaded the daemon is (after hello); answered by `load_report`."""

    type: Literal["load"] = "load"
    req: int = 0


# ---------------------------------------------------------------------------------------------------
# Control: daemon -> client


class Welcome(_Msg):
    """Answer to hello: the chosen version, the media endpoint to SUBscribe to, heartbeat settings."""

    type: Literal["welcome"] = "welcome"
    req: int = 0
    version: int
    server: str
    media_endpoint: str
    heartbeat_ms: int = HEARTBEAT_MS
    session_timeout_s: float = SESSION_TIMEOUT_S


class Opened(_Msg):
    """Answer to open: the session id and its media topic; `warnings` e.g. about the portrait."""

    type: Literal["opened"] = "opened"
    req: int = 0
    session: str
    topic: str                  # the SUB topic (ASCII): "xs2/" + the session's media key (sent only here)
    secret: str                 # lets a new connection of this client `resume` the session: keep it private
    sample_rate: int = SAMPLE_RATE
    fps: int = FPS
    width: int = FRAME_SIZE
    height: int = FRAME_SIZE
    video_format: Literal["rgb24", "rgba32"] = "rgb24"   # rgba32 where the portrait has an alpha channel
    motion_channels: list[str] = Field(default_factory=list)   # names of `motion` packet values (MOTION_CHANNELS);
                                                               # empty: this model publishes no motion
    model: str = ""
    warnings: list[str] = Field(default_factory=list)


class Ack(_Msg):
    """Accepted. For chat/speak, `utt` is the utterance id the reply's media will carry."""

    type: Literal["ack"] = "ack"
    req: int = 0
    session: str | None = None
    utt: int = 0


class Pong(_Msg):
    """Answer to ping (also before hello): the number of sessions this connection holds (0 before hello)."""

    type: Literal["pong"] = "pong"
    req: int = 0
    sessions: int = 0
    state: str = "ok"


class LoadReport(_Msg):
    """Answer to load: the sessions open (all of the daemon's), how many it holds in real time (`capacity`, and where
    that figure comes from: "bench" = the session benchmark's figure for this model and device, "calibrated" =
    measured at start-up, "configured" = serve --capacity N, "unmeasured" = --max-sessions), whether a new session
    would be accepted now (`accepting`, else `reason`), the engine's share of wall time spent computing over the
    last seconds (`utilization`, 0..1), the slowest session's generation rate (`fps_min`, frames/s; 25 = real time),
    the daemon's memory, and its engine replicas (1, or the live Ray replicas)."""

    type: Literal["load_report"] = "load_report"
    req: int = 0
    model: str = ""
    sessions: int = 0
    capacity: int = 0
    capacity_source: Literal["bench", "calibrated", "configured", "unmeasured"] = "unmeasured"
    accepting: bool = True
    reason: str = ""
    utilization: float = 0.0
    fps_min: float = 0.0
    rss_mb: float = 0.0
    gpu_mb: float = 0.0
    replicas: int = 1


class Error(_Msg):
    """A refused request (`req` echoed when it could be read); the daemon goes on."""

    type: Literal["error"] = "error"
    req: int = 0
    code: ErrorCode = Field(strict=False)     # (the wire carries the code's string)
    message: str = ""
    session: str | None = None
    supported_versions: list[int] = Field(default_factory=lambda: list(SUPPORTED_VERSIONS))


ClientMessage = Annotated[Union[Hello, Open, Resume, Chat, Speak, Audio, Interrupt, SetPersona, Close, Ping, Load],
                          Field(discriminator="type")]
ServerMessage = Annotated[Union[Welcome, Opened, Ack, Pong, LoadReport, Error], Field(discriminator="type")]


# ---------------------------------------------------------------------------------------------------
# Media: daemon -> subscribers (PUB -> SUB), topic = TOPIC_PREFIX + session id.


class _Media(_Msg):
    session: str
    utt: int = Field(ge=0)
    seq: int = Field(ge=0)
    pts: int = Field(ge=0)


class AudioPacket(_Media):
    """Payload: `samples` PCM16 little-endian mono samples at `sample_rate` (40 ms)."""

    type: Literal["audio"] = "audio"
    sample_rate: int = SAMPLE_RATE
    samples: int = SAMPLES_PER_FRAME


class VideoPacket(_Media):
    """Payload: one frame, rows top to bottom: `width`*`height`*3 bytes RGB24, or *4 bytes RGBA32 (straight,
    not premultiplied, alpha) for a portrait with an alpha channel."""

    type: Literal["video"] = "video"
    width: int = Field(default=FRAME_SIZE, ge=1, le=4096)
    height: int = Field(default=FRAME_SIZE, ge=1, le=4096)
    format: Literal["rgb24", "rgba32"] = "rgb24"


class MotionPacket(_Media):
    """Payload: the facial-animation channels of one video frame (same pts as that frame's `video` packet),
    `channels` float32 little-endian values in the order of the session's `Opened.motion_channels`."""

    type: Literal["motion"] = "motion"
    channels: int = Field(default=len(MOTION_CHANNELS), ge=1, le=256)


class TextPacket(_Media):
    """Text of the reply (role assistant) or the transcript of the user's voice (role user)."""

    type: Literal["text"] = "text"
    role: Literal["assistant", "user"] = "assistant"
    text: str
    final: bool = False


class EventPacket(_Media):
    """utterance_start / utterance_end (reason "error: ..." if it failed) / interrupted / session_closed / moved (the
    session's engine replica was lost and the session re-opened on another: same session and topic, the stream goes
    on; reason says which; a reply cut off got utterance_end "error: replica lost" first);
    `lost` is made by a client library, never sent: its utterance was cut off by a daemon restart."""

    type: Literal["event"] = "event"
    event: Literal["utterance_start", "utterance_end", "interrupted", "session_closed", "lost", "moved"]
    reason: str = ""


class StatePacket(_Media):
    """Published about once a second per session (a heartbeat and a last-value cache for late joiners)."""

    type: Literal["state"] = "state"
    state: Literal["idle", "thinking", "speaking", "closed"]
    fps: float = 0.0
    lead_ms: float = 0.0
    model: str = ""


MediaPacket = Annotated[Union[AudioPacket, VideoPacket, MotionPacket, TextPacket, EventPacket, StatePacket],
                        Field(discriminator="type")]

# The events after which an utterance's packets stop: a receive loop waiting for utterance `u` ends at the
# first event packet with `utt == u` and `event in END_EVENTS`.
END_EVENTS = ("utterance_end", "interrupted", "lost")
