"""A template sentence generator: `sentence_text(sentence_id)` is a pure, injective function of the id.

id -> template `id % len(TEMPLATES)`; the rest of the id is scrambled by a multiplication that is bijective
modulo the template's number of slot combinations and read as mixed-radix digits picking one word per slot.
So every id below `NUM_SENTENCES` gives a different text (tested), and held-out sentences (id % 10 == 0)
never appear in training. Some templates hold two sentences, which gives pauses between sentences.
"""

from __future__ import annotations

import math
import re

WORDS: dict[str, list[str]] = {
    "name": ["Anna", "Ben", "Carla", "David", "Emma", "Felix", "Grace", "Henry", "Iris", "Jack", "Lena", "Marco",
             "Nora", "Oscar", "Paula", "Quinn", "Rosa", "Sam", "Tara", "Victor"],
    "noun": ["book", "garden", "kitten", "letter", "bicycle", "window", "painting", "river", "candle", "rocket",
             "sandwich", "guitar", "mountain", "umbrella", "puzzle", "lantern", "teapot", "robot", "map", "kite"],
    "adj": ["bright", "quiet", "tiny", "golden", "strange", "happy", "cold", "gentle", "noisy", "purple", "ancient",
            "lucky", "heavy", "shiny", "brave", "sleepy", "warm", "secret", "simple", "wild"],
    "verb": ["found", "painted", "opened", "carried", "fixed", "borrowed", "cleaned", "watched", "followed", "built",
             "dropped", "hid", "sold", "lost", "moved", "counted", "drew", "packed", "tested", "shared"],
    "place": ["the kitchen", "the park", "the station", "the library", "the harbour", "the market", "the attic",
              "the forest", "the museum", "the beach", "the office", "the bakery", "the bridge", "the village",
              "the garage", "the island", "the theatre", "the school", "the hotel", "the valley"],
    "time": ["this morning", "last night", "on Monday", "after lunch", "at noon", "every Sunday", "yesterday",
             "in the spring", "before dinner", "at midnight", "next week", "today", "on Friday", "in the evening",
             "at dawn", "tomorrow", "last summer", "in winter", "right now", "once a year"],
    "num": ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve", "fifteen", "twenty",
            "thirty", "forty", "fifty", "a hundred", "eleven", "sixteen", "eighteen", "ninety"],
    "feel": ["wonderful", "terrible", "surprising", "lovely", "funny", "boring", "amazing", "odd", "perfect",
             "exciting"],
}

TEMPLATES: list[str] = [
    "{name} {verb} a {adj} {noun} in {place} {time}.",
    "Did you know that {name} {verb} the {noun} {time}?",
    "I think the {adj} {noun} is still in {place}.",
    "{time}, {name} {verb} {num} {adj} things near {place}.",
    "Please bring the {noun} to {place} {time}.",
    "{name} said the {adj} {noun} was {feel}. I agree with that.",
    "We counted {num} {noun}s in {place} {time}.",
    "Have you seen my {adj} {noun}? It was in {place}.",
    "The {noun} looks {adj} {time}, don't you think?",
    "{name} and I {verb} a {noun} {time}. It was {feel}!",
    "There are {num} {adj} {noun}s waiting at {place}.",
    "Welcome to {place}! The {adj} {noun} is over there.",
    "Why did {name} leave the {noun} in {place}?",
    "My favourite thing about {place} is the {adj} {noun}.",
    "{name} {verb} it {time}. Honestly, that was {feel}.",
    "Let me tell you about the {adj} {noun} {name} {verb}.",
]

_SLOT = re.compile(r"\{(\w+)\}")


def _slots(template: str) -> list[str]:
    return _SLOT.findall(template)


def _combos(template: str) -> int:
    return math.prod(len(WORDS[s]) for s in _slots(template))


NUM_SENTENCES = len(TEMPLATES) * min(_combos(t) for t in TEMPLATES)  # every id below this is distinct
_MULT = 1_000_003  # a prime: coprime to every slot-combination count (products of 10s and 20s)


def sentence_text(sentence_id: int) -> str:
    """The text of sentence `sentence_id` (0 <= id < NUM_SENTENCES)."""
    if not 0 <= sentence_id < NUM_SENTENCES:
        raise ValueError(f"sentence_id must be in [0, {NUM_SENTENCES}), got {sentence_id}")
    template = TEMPLATES[sentence_id % len(TEMPLATES)]
    total = _combos(template)
    k = (sentence_id // len(TEMPLATES)) * _MULT % total
    parts = []
    for slot in _slots(template):
        words = WORDS[slot]
        parts.append(words[k % len(words)])
        k //= len(words)
    it = iter(parts)
    text = _SLOT.sub(lambda m: next(it), template)
    return text[0].upper() + text[1:]


def sentence_split(sentence_id: int) -> str:
    """'heldout' when `sentence_id % 10 == 0`, else 'train'."""
    return "heldout" if sentence_id % 10 == 0 else "train"
