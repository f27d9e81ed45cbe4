"""One utterance of a live session, collected chunk by chunk: what every evaluation measures."""

from __future__ import annotations

import numpy as np


def generate_utterance(session, text: str, max_chunks: int, motion: list | None = None  # noqa: ANN001
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Speak `text` and collect the utterance's frames [T,S,S,3] and audio [T*882] (and, into `motion` when given
    and the model has it, its motion frames [n, K] per chunk)."""
    utt = session.speak(text)
    frames, audio, started = [], [], False
    for _ in range(max_chunks):
        ch = session.next_chunk()
        events = {e.event for e in ch.events if e.utt == utt}
        if ch.utt == utt or "utterance_start" in events:
            started = True
        if started and ch.utt == utt:
            frames.append(ch.frames)
            audio.append(ch.audio)
            if motion is not None and ch.motion is not None:
                motion.append(ch.motion)
        if "utterance_end" in events:
            break
    else:
        raise RuntimeError(f"utterance {utt} did not end within {max_chunks} chunks")
    if not frames:
        raise RuntimeError(f"utterance {utt} produced no frames")
    return np.concatenate(frames), np.concatenate(audio)
