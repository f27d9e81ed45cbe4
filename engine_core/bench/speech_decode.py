"""GLM-4-Voice's speech decoder at its published shapes (random weights): how long a block of tokens takes.

    python -m engine_core.bench.speech_decode [--device cuda] [--seconds 12] [--json out.json]

Streams `--seconds` of speech tokens through `Glm4VoiceDecoder` in the Thinker's blocks (13, 20, then 40 tokens), each
block with the stream's earlier tokens as the flow's prompt, as a reply does; prints each block's ms (the first block:
the one a reply's first chunk waits for) and the decoder's ms per second of speech. Several replies, after the
decoder's warm-up (`Glm4VoiceDecoder.warm`, as at Engine.load); a reply's last block has its own length, run eagerly
the first time it comes.
"""

from __future__ import annotations

import argparse
import time

import torch

from engine_core.codecs.glm4voice_decoder import Glm4VoiceDecoder

from .report import write_json

BLOCKS = (13, 20, 40)


def reply_blocks(seconds: float) -> list[int]:
    n, out = int(seconds * 12.5), []
    while sum(out) < n:
        out.append(min(BLOCKS[min(len(out), len(BLOCKS) - 1)], n - sum(out)))
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--replies", type=int, default=3)
    ap.add_argument("--json", dest="json_path", default=None)
    args = ap.parse_args(argv)
    dec = Glm4VoiceDecoder.random(args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    t0 = time.perf_counter()
    dec.warm()                                   # as Engine.load does: the first blocks' lengths from graphs
    sync()
    warm_s = round(time.perf_counter() - t0, 2)
    g = torch.Generator().manual_seed(0)
    rows = []
    for r in range(args.replies):
        s = dec.start_stream()
        blocks = reply_blocks(args.seconds)
        times, samples = [], 0
        for i, n in enumerate(blocks):
            codes = torch.randint(0, 16384, (n,), generator=g).tolist()
            sync()
            t0 = time.perf_counter()
            samples += dec.decode(s, codes, i == len(blocks) - 1).size
            sync()
            times.append(round((time.perf_counter() - t0) * 1e3, 1))
        seconds = samples / dec.sample_rate
        rows.append({"reply": r, "blocks": blocks, "block_ms": times, "audio_s": round(seconds, 2),
                     "ms_per_audio_s": round(sum(times) / seconds, 1)})
        print(rows[-1])
    later = rows[1:] or rows
    out = {"device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
           "weights": "random (timing only)", "warm_s": warm_s, "first_block_tokens": BLOCKS[0],
           "first_block_ms": sorted(r["block_ms"][0] for r in later)[len(later) // 2],
           "first_block_ms_first_reply": rows[0]["block_ms"][0],
           "ms_per_audio_s": sorted(r["ms_per_audio_s"] for r in later)[len(later) // 2], "replies": rows}
    print({k: v for k, v in out.items() if k != "replies"})
    write_json(args.json_path, out)
    return out


if __name__ == "__main__":
    main()
