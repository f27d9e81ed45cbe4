"""The one line `xstreamer serve` prints on stdout once both sockets are bound, and its parser.

    xstreamer daemon ready control=tcp://127.0.0.1:7570 media=tcp://127.0.0.1:7571 model=default

A launcher (sdk.launcher) waits for it; fields after `model=` may be added by later versions and are ignored.
"""

from __future__ import annotations

import re
from typing import NamedTuple

READY_PREFIX = "xstreamer daemon ready"
READY_RE = re.compile(r"^xstreamer daemon ready control=(\S+) media=(\S+) model=(\S+)(?: .*)?$")


class ReadyLine(NamedTuple):
    """The endpoints a daemon bound (the real ports when it was asked for port 0) and its model."""

    control: str
    media: str
    model: str


def format_ready_line(control: str, media: str, model: str) -> str:
    """The ready line (without its newline)."""
    return f"{READY_PREFIX} control={control} media={media} model={model}"


def parse_ready_line(line: str) -> ReadyLine | None:
    """(control, media, model) of a ready line (surrounding whitespace ignored), else None."""
    m = READY_RE.match(line.strip())
    return ReadyLine(m.group(1), m.group(2), m.group(3)) if m else None
