"""Every number the daemon and its clients agree on, written once (the engine, daemon, studio and plugins
import these; nobody re-declares them).

Media clock: audio is the master clock at SAMPLE_RATE; a video frame is 1/FPS s, i.e. SAMPLES_PER_FRAME
samples, and every 40 ms of media is one `audio` packet plus one `video` packet with the same pts.
"""

from __future__ import annotations

from typing import Final

# ---- the media clock (also the engine's: every Thinker speaks at SAMPLE_RATE, the Actor draws FPS frames/s)
SAMPLE_RATE = 22050            # audio clock (Hz); pts counts samples of this clock
FPS = 25                       # video frame rate
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS   # 882 samples = 40 ms: one audio packet, one video frame
FRAME_MS = 1000 // FPS         # 40 ms of media per packet pair
FRAME_SIZE: Final = 256        # default video frame side (frames are square)
VIDEO_SIZES = (256, 512)       # the frame sides a session may ask for (`Open.video_size`)
VIDEO_FORMATS = {"rgb24": 3, "rgba32": 4}    # video payload formats -> bytes per pixel

# The facial-animation channels of a `motion` packet, in payload order: ARKit blendshape names (weights in
# [0, 1]) and the head pose (headYaw/headPitch/headRoll in degrees, right-handed as seen by the viewer:
# yaw > 0 turns the face to the viewer's left, pitch > 0 tilts it down, roll > 0 turns it clockwise;
# headX/headY the head's shift as a fraction of the face's width, x to the right and y down).
MOTION_BLENDSHAPES = (
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthPressLeft", "mouthPressRight", "mouthRollUpper",
    "mouthRollLower", "eyeBlinkLeft", "eyeBlinkRight", "eyeSquintLeft", "eyeSquintRight", "browInnerUp",
    "browDownLeft", "browDownRight", "browOuterUpLeft", "browOuterUpRight",
)
MOTION_HEAD = ("headYaw", "headPitch", "headRoll", "headX", "headY")
MOTION_CHANNELS = MOTION_BLENDSHAPES + MOTION_HEAD

# ---- limits on what a client may send (the daemon refuses more with a typed error; the engine checks too)
MAX_HEADER_BYTES = 64 * 1024   # a message's msgpack header frame (larger: MALFORMED, `req` still echoed)
MAX_TEXT_CHARS = 2000          # a chat/speak text (longer: TEXT_TOO_LONG); every Thinker takes this much
MAX_PROMPT_CHARS = 4000        # a persona's system prompt and greeting
MAX_NAME_CHARS = 80            # a persona's name, voice, model and character
MAX_REPLY_SENTENCES = 20       # the largest `Persona.max_reply_sentences` (0: no cap but the model's own)
VOICES = ("joe",)              # the voices `Persona.voice` may name (the shipped models speak with Piper joe)
MAX_PORTRAIT_BYTES = 16 * 1024 * 1024    # the portrait image file (PNG or JPEG)
MAX_PORTRAIT_PIXELS = 40_000_000         # a portrait's width x height, checked from its header before decoding
MAX_AUDIO_SECONDS = 10.0       # user audio in one `audio` message, at the rate that message declares
MAX_TURN_AUDIO_SECONDS = 60.0  # user audio in one turn (the messages up to `final`)
MIN_AUDIO_RATE = 8000          # the sample rates an `audio` message may declare
MAX_AUDIO_RATE = 48000
MAX_AUDIO_SAMPLES = int(MAX_AUDIO_RATE * MAX_AUDIO_SECONDS)   # one message at the highest rate
# A whole control message: larger ones never reach the daemon (ZMQ_MAXMSGSIZE: the connection is dropped
# without a reply), so a client checks this itself before sending; up to it, an oversized blob gets a typed
# error that names its `req`.
MAX_MESSAGE_BYTES = MAX_PORTRAIT_BYTES + 4 * 1024 * 1024

# ---- per-client limits (defaults of `xstreamer serve`; over one: TOO_MANY_SESSIONS / RATE_LIMITED)
CLIENT_SESSIONS = 4            # sessions one connection may hold open
CLIENT_RATE = 100.0            # requests a second a connection may send on average ...
CLIENT_BURST = 200             # ... and at once
SESSION_QUEUE = 4              # chat/speak/voice turns of one session accepted but not yet ended

# ---- ports and endpoints (loopback only by default)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_CONTROL_PORT = 7570    # ROUTER: requests and replies
DEFAULT_MEDIA_PORT = 7571      # XPUB: media packets
DEFAULT_CONTROL = f"tcp://{DEFAULT_HOST}:{DEFAULT_CONTROL_PORT}"

# ---- the daemon's own timing, announced in `welcome` (defaults of `xstreamer serve`)
HEARTBEAT_MS = 1000            # a client pings when it sent nothing for this long
SESSION_TIMEOUT_S = 30.0       # a session whose client sent nothing for this long is closed
LEAD_MS = 400.0                # generation runs at most this far ahead of real time
