"""The cascade's language model: SmolLM2-135M-Instruct streaming a reply in speakable pieces.

A manual greedy decode loop with a KV cache feeds each sampled token back immediately, so every
generated token has its own last-layer hidden state (576-d, after the final norm: what the LM head
reads). The reply is cut into pieces (sentences, or clauses once they are long enough) as soon as a
boundary is followed by whitespace, so the voice can start on the first clause while the LM goes on.

A piece's `text` keeps its spacing (" I've been..." after "What a game!"): a reply's pieces concatenated are
the reply, and that is what goes on the wire; `body` (stripped) is what the voice says. A persona's reply cap
(`Conversation.max_sentences`) ends the decode after that many sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from .base import Conversation, Gate, go_on
from .context import fit_history, prompt_budget
from .hf_cache import cache_kwargs
from .lm_slots import SlotLM

BREVITY = "Answer in one or two short, spoken sentences. Do not use lists, markdown or emojis."
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s)")
_ENDS_SENTENCE = re.compile(r"[.!?…]+[\"')\]]*$")
_CLAUSE_END = re.compile(r"[,;:—](?=\s)")
MIN_CLAUSE_CHARS = 24        # a clause shorter than this waits for more text (except the first piece)
MIN_FIRST_CLAUSE_CHARS = 10
MAX_PIECE_CHARS = 160        # a piece this long without punctuation is cut at its last space
MAX_FIRST_PIECE_CHARS = 40   # the first piece sooner: the voice (and the first packet) waits for it whole


@dataclass
class Piece:
    """A speakable stretch of the reply.

    text:        the piece as it joins the reply: `body` after one space when the reply had whitespace before
                 it ('' before the first piece)
    token_chars: int [n_tok] character index (in `body`) where each token's text begins, clamped >= 0
    hidden:      float32 [n_tok, hidden_size] last-layer hidden state of each token
    body:        the piece's words, stripped (what the voice says)
    """

    text: str
    token_chars: list[int]
    hidden: torch.Tensor
    body: str = ""

    def __post_init__(self) -> None:
        if not self.body:
            self.body = self.text.strip()


def joined_text(raw: str, first: bool) -> str:
    """How a stretch `raw` of a text joins what came before it: stripped, after one space if `raw` starts with
    whitespace and is not the first piece."""
    body = raw.strip()
    return " " + body if (not first and raw[:1].isspace()) else body


def ends_sentence(body: str) -> bool:
    """Whether a piece ends a sentence (., !, ?, … possibly followed by closing quotes/brackets)."""
    return _ENDS_SENTENCE.search(body.rstrip()) is not None


def brevity(max_sentences: int = 0) -> str:
    """The length rule appended to the system prompt (a persona's cap, when it has one, is named)."""
    if max_sentences <= 0:
        return BREVITY
    unit = "sentence" if max_sentences == 1 else "sentences"
    return f"Answer in at most {max_sentences} short, spoken {unit}. Do not use lists, markdown or emojis."


def build_messages(conversation: Conversation, user_text: str) -> list[dict[str, str]]:
    """Chat messages: persona system prompt (+ brevity rule), past turns, the new user turn (all of them:
    StreamingLM.prompt_ids drops the oldest turns to fit its context, with `trim_messages`)."""
    system = f"{conversation.system_prompt.strip()}\n{brevity(conversation.max_sentences)}".strip()
    msgs = [{"role": "system", "content": system}]
    msgs += [{"role": t.role, "content": t.text} for t in conversation.turns]
    msgs.append({"role": "user", "content": user_text})
    return msgs


def trim_messages(messages: list[dict[str, str]], count_tokens: Callable[[list[dict[str, str]]], int],
                  max_prompt_tokens: int) -> list[dict[str, str]]:
    """[system, *past turns, newest] with the oldest past turns dropped until the prompt fits.

    The system message (when messages[0] is one) and the newest message are always kept; the kept history
    starts with a user turn. ContextOverflowError when even [system, newest] does not fit."""
    head = messages[:1] if messages and messages[0]["role"] == "system" else []
    past, newest = messages[len(head):-1], messages[-1:]
    kept = fit_history(past, lambda h: count_tokens(head + list(h) + newest), max_prompt_tokens,
                       is_user=lambda m: m["role"] == "user")
    return head + kept + newest


def find_boundary(text: str, first: bool) -> int | None:
    """End index (exclusive) of the first complete piece in `text`, or None if none is complete yet."""
    m = _SENTENCE_END.search(text)
    best = m.end() if m else None
    min_clause = MIN_FIRST_CLAUSE_CHARS if first else MIN_CLAUSE_CHARS
    for c in _CLAUSE_END.finditer(text):
        if best is not None and c.end() >= best:
            break
        if len(text[:c.end()].strip()) >= min_clause:
            best = c.end()
            break
    longest = MAX_FIRST_PIECE_CHARS if first else MAX_PIECE_CHARS
    if (best is None or best > longest) and len(text) > longest:    # (as a stream would be cut, before its end came)
        cut = text.rfind(" ", 0, longest)
        best = cut if cut > 0 else longest
    return best


@torch.inference_mode()
def decode_step(model, input_ids: torch.Tensor, cache) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward of the LM over `input_ids` [1, n] with `cache` (updated in place).

    Returns (logits [vocab] for the next token, hidden [n, hidden_size] of the input tokens).
    """
    out = model.model(input_ids=input_ids, use_cache=True, **cache_kwargs(model.model, cache))
    hidden = out.last_hidden_state[0]                      # [n, H]
    logits = model.lm_head(hidden[-1:]).float()[0]          # [V]
    return logits, hidden.float()


class StreamingLM:
    """Greedy (or seeded sampling) streaming generation with piece cutting."""

    def __init__(self, model, tokenizer, max_new_tokens: int = 72, repetition_penalty: float = 1.15,
                 temperature: float = 0.0, seed: int = 0, context_tokens: int | None = None,
                 slots: SlotLM | None = None) -> None:
        """`slots`: the replies of every session decoded as one batch (thinker/lm_slots.py); None: each reply on its
        own with transformers' DynamicCache (the reference)."""
        self.model, self.tok = model, tokenizer
        self.slots = slots
        self.max_new_tokens = max_new_tokens
        # The LM's context (SmolLM2: 8192 positions); a prompt may use all of it but the reply's tokens.
        self.context_tokens = int(context_tokens or getattr(model.config, "max_position_embeddings", 2048))
        self.repetition_penalty = repetition_penalty
        self.temperature = temperature
        self.seed = seed
        self.hidden_size = int(model.config.hidden_size)
        self.stop_ids = {i for i in (tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>"))
                         if i is not None and i >= 0}

    def _pick(self, logits: torch.Tensor, history: list[int], gen: torch.Generator) -> int:
        logits = logits.clone()
        if history and self.repetition_penalty != 1.0:
            idx = torch.tensor(sorted(set(history)))
            vals = logits[idx]
            logits[idx] = torch.where(vals > 0, vals / self.repetition_penalty, vals * self.repetition_penalty)
        if self.temperature <= 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / self.temperature, dim=-1)
        return int(torch.multinomial(probs, 1, generator=gen))

    @property
    def max_prompt_tokens(self) -> int:
        """Tokens a prompt may use: the context minus the reply's `max_new_tokens`."""
        return prompt_budget(self.context_tokens, self.max_new_tokens)

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        """Length of the chat-templated prompt of `messages` (with the assistant header)."""
        return int(self._template(messages).shape[1])

    def _template(self, messages: list[dict[str, str]]) -> torch.Tensor:
        enc = self.tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
        return enc["input_ids"]

    def prompt_ids(self, messages: list[dict[str, str]]) -> torch.Tensor:
        """[1, n] token ids of the chat-templated prompt ending with the assistant header; the oldest past
        turns are dropped to fit `max_prompt_tokens` (ContextOverflowError when the newest cannot fit)."""
        fitted = trim_messages(messages, self.count_tokens, self.max_prompt_tokens)
        return self._template(fitted)

    def stream_pieces(self, messages: list[dict[str, str]], gate: Gate | None = None,
                      max_sentences: int = 0) -> Iterator[Piece]:
        """Generate the reply to `messages`, yielding each piece as soon as it is complete; `gate` is asked
        before each token (False: stop at once, nothing more is yielded). With `max_sentences` > 0 the decode
        ends once that many sentences were yielded."""
        gen = torch.Generator().manual_seed(self.seed)
        prompt = self.prompt_ids(messages)
        if self.slots is not None:
            ids = prompt[0].tolist()
            slot = self.slots.take(ids)
            try:
                yield from self._pieces(slot.resume(ids)[0], slot.step, gate, max_sentences, gen)
            finally:
                slot.close()
            return
        from transformers import DynamicCache

        cache = DynamicCache()
        logits, _ = decode_step(self.model, prompt, cache)

        def step(t: int) -> tuple[torch.Tensor, torch.Tensor]:
            logits, h = decode_step(self.model, torch.tensor([[t]]), cache)
            return logits, h[0]
        yield from self._pieces(logits, step, gate, max_sentences, gen)

    def _pieces(self, logits: torch.Tensor, step: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
                gate: Gate | None, max_sentences: int, gen: torch.Generator) -> Iterator[Piece]:
        """The decode loop of `stream_pieces` from the prompt's logits; `step(token) -> (logits, hidden [H])`."""
        tokens: list[int] = []
        starts: list[int] = []            # char offset of each token in `text`
        hiddens: list[torch.Tensor] = []
        text, piece_start, first, sentences = "", 0, True, 0
        while len(tokens) < self.max_new_tokens:
            t = self._pick(logits, tokens, gen)
            if t in self.stop_ids:
                break
            if not go_on(gate):
                return
            logits, h = step(t)
            tokens.append(t)
            hiddens.append(h)
            new_text = self.tok.decode(tokens, skip_special_tokens=True)
            starts.append(min(len(text), len(new_text)))
            text = new_text
            while (end := find_boundary(text[piece_start:], first)) is not None:
                piece = self._make_piece(text, starts, hiddens, piece_start, piece_start + end, first)
                piece_start += end
                if piece is not None:
                    first = False
                    yield piece
                    sentences += ends_sentence(piece.body)
                    if 0 < max_sentences <= sentences:
                        return                  # the persona's cap: no more tokens are decoded
        else:
            # Ran out of tokens: keep only complete sentences (a fragment after spoken pieces is dropped).
            m = list(re.finditer(r"[.!?…]", text[piece_start:]))
            if m:
                text = text[:piece_start + m[-1].end()]
            elif not first:
                return
        piece = self._make_piece(text, starts, hiddens, piece_start, len(text), first)
        if piece is not None:
            yield piece

    def _make_piece(self, text: str, starts: list[int], hiddens: list[torch.Tensor], a: int, b: int,
                    first: bool) -> Piece | None:
        raw = text[a:b]
        body = raw.strip()
        if not any(ch.isalnum() for ch in body):
            return None
        lead = a + (len(raw) - len(raw.lstrip()))
        sel, chars = [], []
        for i, s in enumerate(starts):
            nxt = starts[i + 1] if i + 1 < len(starts) else len(text)
            frag = text[s:nxt]
            first_char = s + (len(frag) - len(frag.lstrip())) if frag.strip() else s
            if a <= first_char < b:
                sel.append(i)
                chars.append(max(0, min(first_char - lead, len(body) - 1)))
        hidden = torch.stack([hiddens[i] for i in sel]) if sel else torch.zeros(0, self.hidden_size)
        return Piece(joined_text(raw, first), chars, hidden, body)

    @torch.inference_mode()
    def encode_text(self, text: str) -> tuple[list[int], torch.Tensor]:
        """One forward pass over `text` alone: (char start of each token, hidden [n_tok, H])."""
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        starts, prev = [], ""
        for i in range(len(ids)):
            cur = self.tok.decode(ids[: i + 1], skip_special_tokens=True)
            frag = cur[len(prev):]
            starts.append(len(prev) + (len(frag) - len(frag.lstrip())) if frag.strip() else len(prev))
            prev = cur
        if not ids:
            return [], torch.zeros(0, self.hidden_size)
        out = self.model.model(input_ids=torch.tensor([ids]))
        return starts, out.last_hidden_state[0].float()


def split_text(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the speakable pieces of a complete text."""
    spans, pos, first = [], 0, True
    padded = text + " "
    while pos < len(text):
        end = find_boundary(padded[pos:], first)
        end = len(text) - pos if end is None else min(end, len(text) - pos)
        if any(ch.isalnum() for ch in text[pos:pos + end]):
            spans.append((pos, pos + end))
            first = False
        pos += end
    return spans
