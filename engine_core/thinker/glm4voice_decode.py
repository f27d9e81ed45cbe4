"""How GLM-4-Voice's reply is decoded token by token without the GPU waiting for the host.

`Glm4VoiceThinker.generate` launches token i's forward before the host reads token i:
  - `draw_token` picks token i on the model's device from the last forward's logits (no host sync);
  - its id goes straight into the next forward (`Decoding.step` takes it as a device tensor);
  - the host reads the id, and later the forward's hidden state, through `HostCopy`: pinned copies that wait only
    for what they copy.
The host's share of a token then overlaps the next forward: the interleave bookkeeping, handing the last token on.
Waiting for the host, that share was ~0.7 ms a token on an H200 with the GPU idle. The price: when
token i ends the reply, its forward was for nothing, and `Decoding.undo` takes it back.

`Decoding` puts the two decoders behind one interface:
  - "fast" (engine_core.thinker.glm_fast): static KV cache, CUDA graphs; a prompt that starts with what the cache
    holds prefills only the rest;
  - "hf": the transformers forward with a DynamicCache (the reference path; tests compare the two).
"""

from __future__ import annotations

from typing import Callable

import torch

from .hf_cache import cache_kwargs


@torch.inference_mode()
def decode_step(model, input_ids: torch.Tensor, cache,
                cache_position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward of `model` over input_ids [1, n] at positions cache_position [n], updating `cache`.

    Returns (logits [vocab] float32 of the next token, hidden [n, hidden_size] of the inputs).
    """
    out = model.model(input_ids=input_ids, use_cache=True, cache_position=cache_position,
                      position_ids=cache_position.unsqueeze(0), **cache_kwargs(model.model, cache))
    hidden = out.last_hidden_state[0]                         # [n, H]
    return model.lm_head(hidden[-1:])[0].float(), hidden


def draw_token(logits: torch.Tensor, mask: torch.Tensor, temperature: float, top_p: float, u: float) -> torch.Tensor:
    """Token id [1] (long, on the logits' device) from logits [V] + additive mask [V]: the argmax when temperature
    <= 0, else nucleus (top-p) sampling by inverse CDF. The probabilities are sorted (equal ones in id order); the
    smallest set of the most likely holding `top_p` of the mass is kept; the token is the first whose cumulative
    mass passes u (uniform in [0, 1), drawn by the caller) times the kept mass. Nothing waits for the device: the
    numbers come in as kernel arguments and the id stays where it is."""
    logits = logits + mask
    if temperature <= 0:
        return torch.argmax(logits).view(1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    top, order = torch.sort(probs, descending=True, stable=True)
    cum = torch.cumsum(top, 0)
    last = ((cum - top < top_p).sum() - 1).view(1)                            # the nucleus: entries 0..last
    i = torch.searchsorted(cum, cum.gather(0, last) * u, right=True)
    return order.gather(0, torch.minimum(i, last))


class HostCopy:
    """A device tensor's value on the host, copied without stalling the device: on CUDA into pinned memory by a
    non-blocking copy on the current stream, with an event after it, so `get` waits for that copy (and what the
    stream did before it) only. Off CUDA: the tensor itself."""

    def __init__(self, t: torch.Tensor) -> None:
        self._event = None
        if t.is_cuda:
            self._value = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
            self._value.copy_(t, non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        else:
            self._value = t

    def get(self) -> torch.Tensor:
        if self._event is not None:
            self._event.synchronize()
        return self._value


class Decoding:
    """One reply's decoder state: `prompt(ids)` -> logits [V] float32 of the next token, then `step(token [1] on the
    device)` per token -> (those logits, hidden [H] of the token); `tell(token)` once the host knows the id `step`
    was given (the fast cache remembers what it holds); `undo()` forgets the last step; `release()` when done."""

    def __init__(self, prompt: Callable, step: Callable, tell: Callable[[int], None], undo: Callable[[], None],
                 release: Callable[[], None]) -> None:
        self.prompt, self.step, self.tell, self.undo, self.release = prompt, step, tell, undo, release

    @classmethod
    def fast(cls, fast, give_back: Callable[[], None]) -> Decoding:
        def prompt(ids: list[int]) -> torch.Tensor:
            return fast.resume(ids)[0][0].float()     # what the cache holds of it (the last turn's prompt) is kept

        def step(token: torch.Tensor):
            logits, h = fast.step(token.view(1, 1), told=False)
            return logits[0].float(), h[0]
        return cls(prompt, step, lambda t: fast.tell([t]), lambda: fast.truncate(fast.length - 1), give_back)

    @classmethod
    def hf(cls, model, device: torch.device) -> Decoding:
        from transformers import DynamicCache

        cache, pos = DynamicCache(), [0]

        def forward(ids: torch.Tensor):
            n = ids.shape[1]
            logits, h = decode_step(model, ids, cache, torch.arange(pos[0], pos[0] + n, device=device))
            pos[0] += n
            return logits, h[-1]

        def undo() -> None:
            pos[0] -= 1
            cache.crop(pos[0])
        return cls(lambda ids: forward(torch.tensor([ids], device=device))[0], lambda t: forward(t.view(1, 1)),
                   lambda t: None, undo, lambda: None)


__all__ = ["Decoding", "HostCopy", "decode_step", "draw_token"]
