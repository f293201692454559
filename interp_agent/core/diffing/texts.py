"""The built-in fine-tune text set: short, hand-templated negative reviews (SYNTHETIC text).

The fine-tune pushes SmolLM2 towards one narrow kind of text, complaints and bad reviews, so
that the ``negative_sentiment`` criterion pack (the evaluation) moves measurably. The texts
are composed from hand-written phrase lists below by a seeded draw; none is a pack prompt
(``overlap_with_pack`` checks that exact texts never coincide), and the pack's own prompts are
never used for training: the pack is the evaluation, its held-out split the evidence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from interp_agent.core.criteria.packs import normalise_text

TEXT_SET = "negative_reviews"
"""Name of the built-in text set."""
DEFAULT_N_TEXTS = 320
"""Texts drawn by default."""

_ITEMS = (
    "the blender", "this kettle", "the vacuum cleaner", "my new phone case", "the desk lamp", "this backpack",
    "the coffee maker", "the umbrella", "the printer", "the toaster", "the wireless mouse", "this winter jacket",
    "the electric toothbrush", "the garden hose", "the office chair", "the water bottle", "the smart watch",
    "the frying pan", "the bike lock", "this suitcase", "the hair dryer", "the keyboard", "the baby monitor",
    "the space heater",
)
_FAILURES = (
    "broke after two days", "stopped working within a week", "arrived scratched and dented",
    "smelled like burnt plastic", "fell apart the first time I used it", "made a loud rattling noise",
    "leaked all over the counter", "overheated after ten minutes", "never worked properly",
    "cracked when I dropped it on the carpet", "drained its battery overnight", "came with half the parts missing",
    "looked nothing like the photos", "rusted after one rainy afternoon", "gave me a small electric shock",
)
_SERVICES = ("customer service", "the support team", "the store manager", "the seller", "the courier",
             "the help line")
_SERVICE_ISSUES = (
    "was rude and unhelpful", "ignored my emails for weeks", "refused to give me a refund",
    "kept me on hold for an hour", "blamed me for their own mistake", "promised a replacement that never came",
    "hung up on me twice", "charged me again for the return",
)
_DISHES = ("the burger", "the curry", "the salad", "the steak", "the pizza", "the fish", "the soup of the day",
           "the dessert", "the breakfast", "the noodles")
_DISH_ISSUES = (
    "was cold and soggy", "tasted burnt", "was swimming in grease", "came out raw in the middle",
    "had a hair in it", "was tiny for the price", "was so salty I could not finish it", "arrived an hour late",
)
_PLACES = ("the hotel", "the gym", "the cinema", "the train company", "the airline", "the dentist's office",
           "the car wash", "the hostel", "the bakery", "the repair shop")
_PLACE_ISSUES = (
    "was dirty and overcrowded", "cancelled without any notice", "charged hidden fees",
    "lost my booking and shrugged", "was freezing and smelled of mould", "kept us waiting for two hours",
    "overcharged me and would not explain why", "was noisy all night",
)
_CLOSERS = (
    "What a waste of money.", "I want my money back.", "Terrible experience.", "Completely disappointed.",
    "I regret buying it.", "Do not buy this.", "Worst purchase I have made this year.", "Absolutely awful.",
    "I will never order from them again.", "Save yourself the trouble.", "Two words: total rubbish.",
    "Avoid at all costs.", "I am furious.", "Never again.",
)
_WHEN = ("last week", "a month ago", "for my birthday", "on sale", "yesterday", "two weeks ago")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _one(rng: np.random.Generator) -> str:
    """One review drawn from one of six frames."""
    def pick(options: Sequence[str]) -> str:
        return options[int(rng.integers(len(options)))]

    frame = int(rng.integers(6))
    if frame == 0:
        return f"I bought {pick(_ITEMS)} {pick(_WHEN)} and it {pick(_FAILURES)}. {pick(_CLOSERS)}"
    if frame == 1:
        return f"{_cap(pick(_ITEMS))} {pick(_FAILURES)}, and {pick(_SERVICES)} {pick(_SERVICE_ISSUES)}."
    if frame == 2:
        return f"One star. {_cap(pick(_DISHES))} {pick(_DISH_ISSUES)} and the waiter {pick(_SERVICE_ISSUES)}."
    if frame == 3:
        return f"{_cap(pick(_PLACES))} {pick(_PLACE_ISSUES)}. {pick(_CLOSERS)}"
    if frame == 4:
        return f"Avoid {pick(_PLACES)}: it {pick(_PLACE_ISSUES)} and the staff {pick(_SERVICE_ISSUES)}."
    return f"{_cap(pick(_DISHES))} {pick(_DISH_ISSUES)}. {pick(_CLOSERS)} {pick(_CLOSERS)}"


def negative_review_texts(n: int = DEFAULT_N_TEXTS, seed: int = 0) -> list[str]:
    """``n`` distinct synthetic negative reviews, the same for the same (n, seed).

    Raises:
        ValueError: ``n`` is not positive.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of texts, got {n}")
    rng = np.random.default_rng([seed, 0x5E17])
    seen: dict[str, None] = {}
    for _ in range(100 * n):
        seen.setdefault(_one(rng), None)
        if len(seen) == n:
            break
    return list(seen)


def texts_digest(texts: Sequence[str]) -> str:
    """SHA-256 of the texts, joined with NUL."""
    return hashlib.sha256("\0".join(texts).encode()).hexdigest()


def overlap_with_pack(texts: Sequence[str], pack_texts: Sequence[str]) -> int:
    """How many ``texts`` equal a pack text (after case and whitespace folding)."""
    pack = {normalise_text(t) for t in pack_texts}
    return sum(normalise_text(t) in pack for t in texts)
