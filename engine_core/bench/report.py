"""What every benchmark does with its figures besides printing them: the JSON file asked for with `--json`."""

from __future__ import annotations

import json


def write_json(path: str | None, result: dict) -> None:
    """Write `result` to `path` as indented JSON (nothing when no path was asked for)."""
    if path:
        with open(path, "w") as fh:
            json.dump(result, fh, indent=2)
