"""`xstreamer chat TEXT --out FILE.mp4`: the persona answers TEXT; the reply text is printed to stdout and the
reply is written to an mp4 (in-process, or through a daemon with `--connect`; see `xstreamer.commands.say`)."""

from __future__ import annotations

import argparse

from xstreamer.commands.say import add_common, render


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help="the user's message; the persona answers it")
    add_common(parser)


def run(args: argparse.Namespace) -> int:
    return render(args, mode="chat")
