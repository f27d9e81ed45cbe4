"""Prompt-prefix reuse: a decode cache that already holds a prompt's first tokens (the persona and earlier turns)
computes only the rest. Every cache that reuses its prefix (lm_slots, glm_fast, glm_batch) asks this."""

from __future__ import annotations

from typing import Sequence


def shared_prefix(known: Sequence[int] | None, prompt: Sequence[int]) -> int:
    """How many of `prompt`'s first ids `known` (the ids a cache holds, by position; None: nothing) holds at their
    positions."""
    if known is None:
        return 0
    n, limit = 0, min(len(known), len(prompt))
    while n < limit and known[n] == prompt[n]:
        n += 1
    return n
