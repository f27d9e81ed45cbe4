"""`xstreamer data synth ...` (procedural corpus) and `xstreamer data gallery DIR` (built-in character PNGs)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the `data` subcommands."""
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    s = sub.add_parser("synth", help="render a procedural talking-character corpus")
    s.add_argument("--out", required=True, type=Path, help="output directory")
    s.add_argument("--clips", required=True, type=int, help="number of clips")
    s.add_argument("--seed", type=int, default=0, help="corpus seed (same seed -> identical bytes)")
    s.add_argument("--seconds-min", type=float, default=2.0, help="shortest clip in seconds")
    s.add_argument("--seconds-max", type=float, default=8.0, help="longest clip in seconds (approximate)")
    s.add_argument("--workers", type=int, default=1, help="worker processes")
    s.add_argument("--identities", type=int, default=None, help="identity pool size (default: all 100,000)")
    s.add_argument("--mp4", action="store_true", help="also write video.mp4 per clip (PyAV)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    b = sub.add_parser("bank", help="speech bank: Piper speech + LM hidden states of training sentences")
    b.add_argument("--out", required=True, type=Path, help="output .npz")
    b.add_argument("--utterances", type=int, default=300)
    b.add_argument("--identities", type=int, default=4000, help="training characters to pick")
    b.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("render", help="draw a training corpus from a speech bank (no Piper/LM needed)")
    r.add_argument("--bank", required=True, type=Path)
    r.add_argument("--out", required=True, type=Path)
    r.add_argument("--clips", required=True, type=int)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--workers", type=int, default=1)
    c = sub.add_parser("compact", help="a speech bank's compact form for the motion Actor (features, not audio)")
    c.add_argument("--bank", required=True, type=Path)
    c.add_argument("--out", required=True, type=Path)
    g = sub.add_parser("gallery", help="write the built-in characters as PNGs + gallery.json")
    g.add_argument("out", type=Path)


def run(args: argparse.Namespace) -> int:
    """Run the chosen `data` action; returns the exit code."""
    if args.data_command == "gallery":
        from engine_core.data.synth.gallery import write_gallery

        for p in write_gallery(args.out):
            print(p)
        return 0
    if args.data_command == "compact":
        from engine_core.train.motion_data import compact_bank

        print(json.dumps(compact_bank(args.bank, args.out)))
        return 0
    if args.data_command in ("bank", "render"):
        from engine_core.data.synth import speech_bank

        info = (speech_bank.build_bank(args.out, args.utterances, args.seed, args.identities)
                if args.data_command == "bank" else
                speech_bank.render_corpus(args.bank, args.out, args.clips, args.seed, args.workers))
        print(json.dumps(info))
        return 0
    if args.data_command != "synth":
        print("usage: xstreamer data {synth,bank,render,compact,gallery} ...", file=sys.stderr)
        return 2
    from engine_core.data.synth.characters import NUM_IDENTITIES
    from engine_core.data.synth.corpus import CorpusOptions, generate_corpus

    opt = CorpusOptions(out=args.out, clips=args.clips, seed=args.seed, seconds_min=args.seconds_min,
                        seconds_max=args.seconds_max, workers=args.workers, mp4=args.mp4,
                        identities=args.identities or NUM_IDENTITIES)
    try:
        opt.validate()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    info = generate_corpus(opt, progress=not args.quiet)
    print(json.dumps(info, indent=1))
    return 0
