"""`xstreamer` command line: one console script, one module per subcommand, imported only when used.

Each subcommand module exposes `configure(parser)` (adds its arguments) and `run(args) -> int`.
Imports are lazy so that `xstreamer say --connect ...` and `xstreamer obs` never load torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from sdk.protocol.messages import PROTOCOL_VERSION

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("engine_core.daemon.cli", "run the inference daemon (ZeroMQ control + media sockets)"),
    "say": ("xstreamer.commands.say", "the avatar speaks TEXT verbatim; writes an mp4"),
    "chat": ("xstreamer.commands.chat", "the persona answers TEXT; prints the reply, writes an mp4"),
    "bench": ("engine_core.bench.cli", "measure speed on the daemon's code path"),
    "eval": ("engine_core.eval.cli", "compute quality metrics and write JSON"),
    "train": ("engine_core.train.cli", "train the Actor / VAE on a dataset directory"),
    "export": ("xstreamer.commands.export", "a training run's Actor (+ VAE) as a shippable fp16 model directory"),
    "data": ("engine_core.data.cli", "make datasets (`xstreamer data synth ...`)"),
    "obs": ("plugins.obs_source.bridge", "serve the OBS Browser Source page for a daemon's session"),
    "protocol": ("sdk.protocol.cli", "protocol tools (`xstreamer protocol schema`)"),
    "keys": ("xstreamer.commands.keys", "make CURVE keys to serve off loopback (`xstreamer keys init DIR`)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xstreamer", description="A live, talking, thinking digital human.")
    parser.add_argument("--version", action="version",
                        version=f"xstreamer 0.1.0 (protocol v{PROTOCOL_VERSION})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = sys.argv[1] if len(sys.argv) > 1 else None
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # import only the module of the command being run
            importlib.import_module(module).configure(p)
    return parser


# torch's CPU threads (OpenMP) spin between parallel regions by default. A session runs the Thinker and the Actor
# on two threads of one process, and on a small CPU their pools' spinning threads take the cores the other needs:
# on 2 cores a chat reply's first packet went from 1.05 s to 0.88 s with passive waiting (docs/default-model.md).
# It must be set before torch loads, so here, before any command's module is imported; the environment wins.
CPU_WAIT_POLICY = "PASSIVE"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", CPU_WAIT_POLICY)
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    parser = build_parser()
    args = parser.parse_args()
    if not args.command:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
