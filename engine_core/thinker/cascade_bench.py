"""CPU timings of the cascade Thinker (printed, never asserted): `python -m engine_core.thinker.cascade_bench`.

Prints model load times, SmolLM2 decode tok/s, time to the first Segment of a reply, Piper real-time
factor and Whisper tiny.en transcription time.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from sdk.protocol.constants import FPS, SAMPLE_RATE


def main() -> None:
    """Run each stage once (after a warm-up) and print its timing."""
    from engine_core.codecs.speech import load_piper
    from engine_core.thinker.base import Conversation
    from engine_core.thinker.cascade import CascadeThinker
    from engine_core.thinker.cascade_asr import transcribe

    print(f"torch threads: {torch.get_num_threads()}")
    t = time.perf_counter()
    th = CascadeThinker(max_new_tokens=64)
    print(f"load LM + voice: {time.perf_counter() - t:.2f} s")
    voice = load_piper()
    voice.synthesize("Warm up.")
    list(th.lm.stream_pieces([{"role": "user", "content": "Hi"}]))

    msgs = [{"role": "system", "content": "You are a friendly guide."},
            {"role": "user", "content": "Tell me about the moon."}]
    t = time.perf_counter()
    n_tok = sum(len(p.token_chars) for p in th.lm.stream_pieces(msgs))
    dt = time.perf_counter() - t
    print(f"SmolLM2 decode: {n_tok} tokens in {dt:.2f} s = {n_tok / dt:.1f} tok/s (incl. prompt prefill)")

    t = time.perf_counter()
    first = next(iter(th.reply(Conversation("You are a friendly guide."), "Tell me about the moon.")))
    print(f"first reply Segment (LM first clause + Piper): {time.perf_counter() - t:.2f} s, "
          f"{first.num_frames / FPS:.2f} s of speech: {first.text!r}")

    line = "The weather is lovely today, so we will walk to the park and look at the ducks."
    t = time.perf_counter()
    spoken = voice.synthesize(line)
    dt = time.perf_counter() - t
    dur = spoken.audio.size / SAMPLE_RATE
    print(f"Piper joe: {dur:.2f} s of speech in {dt:.3f} s, RTF {dt / dur:.3f}")

    pcm = (spoken.audio * 32767).astype(np.int16)
    transcribe(pcm, SAMPLE_RATE)
    t = time.perf_counter()
    text = transcribe(pcm, SAMPLE_RATE).text
    print(f"Whisper tiny.en: {dur:.2f} s of speech in {time.perf_counter() - t:.2f} s -> {text!r}")


if __name__ == "__main__":
    main()
