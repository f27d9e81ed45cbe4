"""The KV-cache keyword of a transformers decoder's `forward`: `cache` in transformers 5.2x, `past_key_values`
before it (and deprecated, with a warning on every call, after it). Decided once per model class."""

from __future__ import annotations

import functools
import inspect
from typing import Any


@functools.lru_cache(maxsize=None)
def _cache_keyword(forward_owner: type) -> str:
    params = inspect.signature(forward_owner.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_kwargs(decoder: Any, cache: Any) -> dict[str, Any]:
    """{keyword: cache} for `decoder.forward` (the base model, e.g. `model.model`)."""
    return {_cache_keyword(type(decoder)): cache}
