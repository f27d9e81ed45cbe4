"""Validation of what callers hand the engine: texts, user audio, personas, portraits (typed errors)."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine_core.errors import AudioError, PersonaError, PortraitError, TextError, TextTooLongError
from sdk.protocol.constants import FRAME_SIZE, MAX_TEXT_CHARS
from sdk.protocol.messages import Persona

MAX_HEAR_RATE = 192_000


def check_text(text: Any) -> str:
    """A non-empty chat/speak text of at most MAX_TEXT_CHARS characters.

    TextError (code empty_text) for a missing or blank text, TextTooLongError (code text_too_long) for a
    longer one: the same codes the daemon's protocol check gives."""
    if not isinstance(text, str) or not text.strip():
        raise TextError("the text is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise TextTooLongError(f"the text has {len(text)} characters; at most {MAX_TEXT_CHARS} are allowed")
    return text.strip()


def check_audio(pcm: Any, sample_rate: Any, previous_rate: int | None) -> np.ndarray:
    """int16 (or float in [-1,1]) mono samples -> int16 [n] (AudioError on anything else)."""
    if not isinstance(pcm, np.ndarray):
        raise AudioError(f"user audio must be a numpy array, not {type(pcm).__name__}")
    if pcm.ndim != 1:
        raise AudioError(f"user audio must be mono (1-D), got shape {pcm.shape}")
    if not isinstance(sample_rate, (int, np.integer)) or not 8000 <= int(sample_rate) <= MAX_HEAR_RATE:
        raise AudioError(f"sample rate {sample_rate!r} is not usable (8000..{MAX_HEAR_RATE} Hz)")
    if previous_rate is not None and int(sample_rate) != previous_rate:
        raise AudioError(f"sample rate changed mid-utterance ({previous_rate} -> {sample_rate})")
    if pcm.dtype == np.int16:
        return pcm
    if np.issubdtype(pcm.dtype, np.floating):
        return (np.clip(pcm, -1.0, 1.0) * 32767).round().astype(np.int16)
    raise AudioError(f"user audio must be int16 PCM (or float), got {pcm.dtype}")


def check_persona(persona: Any) -> Persona:
    """An sdk.protocol.Persona (dict accepted) with a non-blank name and system prompt (PersonaError).

    None -> the default Persona."""
    if persona is None:
        return Persona()
    from pydantic import ValidationError

    if isinstance(persona, dict):
        try:
            persona = Persona.model_validate(persona)
        except ValidationError as e:
            raise PersonaError(f"invalid persona: {e.errors()[0]['msg']}") from e
    if not isinstance(persona, Persona):
        raise PersonaError(f"persona must be an sdk.protocol.Persona, not {type(persona).__name__}")
    if not (persona.name or "").strip():
        raise PersonaError("the persona has an empty name")
    if not (persona.system_prompt or "").strip():
        raise PersonaError("the persona has an empty system prompt")
    return persona


def default_portrait(size: int = 256) -> np.ndarray:
    """A deterministic neutral placeholder face (uint8 [size, size, 3]) used by `tiny` when no portrait is given."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.empty((size, size, 3), np.float32)
    img[..., 0], img[..., 1], img[..., 2] = 90 + 60 * yy, 110 + 40 * xx, 150 - 50 * yy
    face = ((xx - 0.5) / 0.22) ** 2 + ((yy - 0.48) / 0.3) ** 2 < 1
    img[face] = (224, 186, 160)
    for ex in (0.42, 0.58):
        img[((xx - ex) / 0.03) ** 2 + ((yy - 0.42) / 0.02) ** 2 < 1] = (40, 30, 30)
    img[(np.abs(xx - 0.5) < 0.07) & (np.abs(yy - 0.62) < 0.012)] = (150, 60, 60)
    return img.astype(np.uint8)


# the placeholder's five face points (eye centres, nose tip, mouth corners) as fractions of its side
_PLACEHOLDER_POINTS = np.array([[0.42, 0.42], [0.58, 0.42], [0.5, 0.53], [0.43, 0.62], [0.57, 0.62]])


def decode_portrait(data: Any, face_points: Any = None, size: int = FRAME_SIZE, character: str | None = None,
                    placeholder: bool = False):
    """The session's `sdk.portrait.Portrait` at `size` (PortraitError on anything unusable).

    data: image file bytes, or an sdk.portrait.Portrait already made at `size`; None -> the built-in `character`
    (the first when None), or with `placeholder` the plain drawn face `tiny` uses. `face_points`: five [x, y] points in the image's pixels (eye centres, nose tip,
    mouth corners) where the picture's face cannot be found."""
    from sdk.portrait import load_portrait
    from sdk.portrait.characters import character as built_in

    from sdk.portrait import Portrait

    if isinstance(data, Portrait):                 # decoded already (in-process callers: eval, bench)
        if data.size != size:
            raise PortraitError(f"the portrait is {data.size}x{data.size}; this session makes {size}x{size} frames")
        return data
    if data is None:
        if placeholder:
            img = default_portrait(size)
            return load_portrait(img, face_points=_PLACEHOLDER_POINTS * size, size=size)
        return built_in(character).portrait(size)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise PortraitError(f"the portrait must be image file bytes, not {type(data).__name__}")
    if len(data) == 0:
        raise PortraitError("the portrait is empty")
    return load_portrait(bytes(data), face_points=face_points, size=size)
