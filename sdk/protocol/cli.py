"""`xstreamer protocol schema`: print the JSON Schema of protocol v1."""

from __future__ import annotations

import argparse
import json

from .codec import json_schema


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["schema"], help="schema: print the JSON Schema of every v1 message")


def run(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
    return 0
