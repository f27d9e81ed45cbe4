"""Fitting a conversation into a Thinker's context: drop the oldest turns, keep the system prompt and the
newest turn.

Every Thinker that builds a prompt from the conversation (cascade_text, glm4voice, toy) calls `fit_history`
with a function that counts the prompt's tokens for a given history. When the whole history does not fit,
the history kept is the longest suffix of the past turns that fits in the token budget and starts with a
user turn (an answer is never kept without its question). When even the system prompt and the newest turn
alone do not fit, the turn is refused with ContextOverflowError (a TextTooLongError, code text_too_long); the
conversation is unchanged.
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

from engine_core.errors import ContextOverflowError

T = TypeVar("T")


def prompt_budget(context_tokens: int, reserve_tokens: int) -> int:
    """Tokens a prompt may use in a context of `context_tokens` when `reserve_tokens` are kept for the reply
    (at most half the context is reserved, so a small context still takes a prompt)."""
    return max(1, int(context_tokens) - min(max(0, int(reserve_tokens)), int(context_tokens) // 2))


def fit_history(history: Sequence[T], cost: Callable[[Sequence[T]], int], budget: int,
                is_user: Callable[[T], bool]) -> list[T]:
    """`history` when it fits, else its longest suffix that fits and starts with a user turn (or nothing).

    cost(h): the token count of the whole prompt (system prompt + h + the newest turn); it must not grow
    when turns are dropped from the front. Raises ContextOverflowError when cost([]) > budget.
    """
    starts = [i for i, turn in enumerate(history) if is_user(turn)] + [len(history)]
    if cost(history) <= budget:
        return list(history)
    # Binary search over the allowed cut points for the first (longest history) that fits.
    lo, hi = 0, len(starts) - 1
    if cost(history[starts[hi]:]) > budget:
        need = cost(history[starts[hi]:])
        raise ContextOverflowError(f"the turn needs {need} prompt tokens with the system prompt alone; the "
                                   f"Thinker's context leaves {budget} for the prompt (shorten the text)")
    while lo < hi:
        mid = (lo + hi) // 2
        if cost(history[starts[mid]:]) <= budget:
            hi = mid
        else:
            lo = mid + 1
    return list(history[starts[lo]:])


__all__ = ["fit_history", "prompt_budget"]
