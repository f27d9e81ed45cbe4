"""The glm4voice Thinker's share of a first packet, turn by turn: `python -m engine_core.bench.thinker_turns`.

    python -m engine_core.bench.thinker_turns [--device cuda] [--turns 14] [--json FILE]

Random weights at the paper's shape (on CPU a small GLM of the same classes, `--small`). One conversation, the
engine's SpeechFeed (the Thinker on its own thread, as in a session): each turn is a `chat`, its reply taken
until its first chunk's speech (25 frames) is there, then cancelled, as a barge-in would. Per turn: the prompt's
tokens and the part of them the decoder had to prefill (the rest it kept from the last turn,
`GlmFastDecoder.resume`), the prefill's ms, the decode steps up to the first chunk's speech and the wall ms
between them (a token: step and sampling), and the time from `chat` to that speech. The decoder's methods are observed on the instance, not replaced.
Prints a table (and JSON with --json); nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from .cli import DEFAULT_TEXT
from .probes import Probes
from .report import write_json

PERSONA = "You are a friendly, concise assistant."
CHUNK_FRAMES = 25


def _thinker(device: str, small: bool):
    from engine_core.thinker.glm4voice import Glm4VoiceThinker, paper_config

    if small:
        cfg = paper_config(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, head_dim=16)
        return Glm4VoiceThinker.from_config(cfg, device=device, dtype=torch.float32, allow_silent_audio=True,
                                            full_text_blocks=True)
    return Glm4VoiceThinker.from_config(device=device, allow_silent_audio=True, full_text_blocks=True)


def main(argv: list[str] | None = None) -> dict:
    from engine_core.engine.feed import SpeechFeed
    from engine_core.thinker.base import Conversation

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--turns", type=int, default=14)
    ap.add_argument("--small", action="store_true", help="a small GLM of the same classes (CPU, tests)")
    ap.add_argument("--json", dest="json_path", default=None)
    args = ap.parse_args(argv)
    cuda = args.device.startswith("cuda")
    thinker = _thinker(args.device, args.small)
    thinker.warm()
    decoder = thinker._take_fast()                   # the pool's one decoder, observed, then handed back
    prompts: list[tuple[int, int]] = []              # (prompt tokens, tokens kept from the cache) per resume
    resume = decoder.resume

    def noted(prompt: list[int]):
        out = resume(prompt)
        prompts.append((len(prompt), decoder.reused))
        return out
    decoder.resume = noted
    probes = Probes(cuda)
    probes.wrap_method(decoder, "resume", "prefill")
    probes.wrap_method(decoder, "step", "step")
    thinker._give_back(decoder)
    feed = SpeechFeed(thinker, Conversation(PERSONA))
    rows = []
    try:
        for turn in range(args.turns):
            feed.cancel()
            time.sleep(0.05)                          # the cancelled reply stops at its next token
            probes.reset()
            start = time.perf_counter()
            feed.submit(turn + 1, "chat", DEFAULT_TEXT)
            got = 0
            while got < CHUNK_FRAMES:
                items, _ = feed.take(CHUNK_FRAMES - got, 10.0)
                got += len(items)
            ready = time.perf_counter()
            steps = [iv.host_start for iv in probes.get("step").intervals if iv.host_start <= ready]
            gaps = [(b - a) * 1e3 for a, b in zip(steps, steps[1:])]
            tokens, reused = prompts[-1]
            rows.append({"prompt_tokens": tokens, "prefilled_tokens": tokens - reused,
                         "prefill_ms": round(probes.get("prefill").durations_ms()[-1], 1),
                         "steps": len(steps), "ms_per_token": round(statistics.mean(gaps), 2) if gaps else None,
                         "speech_ready_ms": round((ready - start) * 1e3, 1)})
            time.sleep(0.2)
    finally:
        feed.close()
        probes.detach()
    later = rows[1:] or rows
    result = {"device": torch.cuda.get_device_name() if cuda else "cpu", "small": args.small, "turns": rows,
              "speech_ready_ms_median": round(statistics.median(r["speech_ready_ms"] for r in later), 1),
              "prefill_ms_median": round(statistics.median(r["prefill_ms"] for r in later), 1)}
    print(f"{'turn':>4} {'prompt':>7} {'prefilled':>9} {'prefill ms':>10} {'steps':>5} {'ms/token':>8} {'speech ms':>9}")
    for i, r in enumerate(rows):
        print(f"{i:>4} {r['prompt_tokens']:>7} {r['prefilled_tokens']:>9} {r['prefill_ms']:>10} {r['steps']:>5} "
              f"{r['ms_per_token']!s:>8} {r['speech_ready_ms']:>9}")
    print(f"turns 1-{len(rows) - 1}: speech ready {result['speech_ready_ms_median']} ms, prefill "
          f"{result['prefill_ms_median']} ms (medians; turn 0 is the first prefill of the process)")
    write_json(args.json_path, result)
    return result


if __name__ == "__main__":
    main()
