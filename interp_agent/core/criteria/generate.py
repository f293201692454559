"""Candidate prompts written by the embedded instruct model, and the filter they pass.

SmolLM2-135M-Instruct is asked, through its chat template, for one short sentence where the
criterion holds (or does not) on a topic drawn from :data:`TOPICS`, with seeded sampling. It is a
135M-parameter model: many candidates are off target, so every one is checked before it is kept:

- with seed examples (the agent's positives and negatives), a MiniLM classifier fitted on them
  must put the candidate in the class it was asked for;
- without, the candidate's all-MiniLM-L6-v2 similarity to the criterion text must lie on its
  class's side of the midpoint between the two classes' median similarities.

Then duplicates and same-class near-duplicates (of each other and of the seeds) are dropped.
Every kept candidate is labelled ``origin: generated``; the filter used the same encoder as the
held-out agreement gate, so that gate is optimistic on generated sets (the set records this).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from interp_agent.core.criteria.gates import NEAR_DUPLICATE_COSINE
from interp_agent.core.criteria.packs import normalise_text
from interp_agent.core.errors import EvidenceError
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.matching.text import Encoder

if TYPE_CHECKING:
    from interp_agent.core.models.loading import LoadedModel

TOPICS = ("food", "travel", "the weather", "work", "school", "sports", "music", "a city", "the sea", "a machine",
          "a shop", "health", "a garden", "a film", "money", "a train", "animals", "a house", "science", "a friend")
"""Topics cycled through the requests, so candidates differ in more than sampling noise."""
SYSTEM = "You write single example sentences for a dataset. Reply with the sentence only."
OVERSAMPLE = 3
"""Candidates requested per wanted prompt (most of a 135M model's candidates are filtered out)."""


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling settings of the generation (recorded with every generated prompt)."""

    temperature: float = 0.9
    """Softmax temperature."""
    top_p: float = 0.95
    """Nucleus sampling mass."""
    max_new_tokens: int = 40
    """Longest candidate, in tokens."""
    seed: int = 0
    """Seeds torch's generator before the first batch."""
    batch_size: int = 16
    """Requests per generate call."""


MAX_SHOWN_SEEDS = 3
"""Seed examples of the class shown in each request."""


def request(criterion: str, positive: bool, topic: str, examples: Sequence[str] = ()) -> list[dict[str, str]]:
    """The chat messages asking for one sentence of a class.

    Seed examples of the class are shown as earlier turns of the same conversation (the request, then the example
    as the assistant's answer): a 135M model imitates answers far better than it follows a negated instruction.
    """
    rule = f"It must satisfy this: {criterion}." if positive else f"It must NOT satisfy this: {criterion}."
    messages = [{"role": "system", "content": SYSTEM}]
    for i, example in enumerate(examples):
        messages += [{"role": "user", "content": f"Write one short sentence about {TOPICS[-1 - i]}. {rule}"},
                     {"role": "assistant", "content": example}]
    return [*messages, {"role": "user", "content": f"Write one short sentence about {topic}. {rule}"}]


def clean(reply: str, criterion: str = "") -> str | None:
    """The sentence in a reply (first non-empty line, quotes and labels stripped); None when unusable (too short or
    long, or it repeats the criterion's own words)."""
    line = next((ln.strip() for ln in reply.splitlines() if ln.strip()), "")
    if ":" in line[:20]:
        line = line.split(":", 1)[1].strip()
    line = line.strip(" \"'*`")
    words = line.split()
    if criterion and normalise_text(criterion) in normalise_text(line):
        return None
    return line if 3 <= len(words) <= 40 else None


def _generate_batch(loaded: LoadedModel, prompts: list[str], s: Sampling) -> list[str]:
    import torch

    tok = loaded.tokenizer
    side = tok.padding_side
    tok.padding_side = "left"  # generation continues every row from its last token
    try:
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(loaded.device)
    finally:
        tok.padding_side = side
    model: Any = loaded.model  # a Hugging Face causal LM: nn.Module does not declare generate
    with torch.inference_mode():
        out = model.generate(**enc, do_sample=True, temperature=s.temperature, top_p=s.top_p,
                             max_new_tokens=s.max_new_tokens, pad_token_id=tok.pad_token_id)
    return [str(tok.decode(row[enc["input_ids"].shape[1]:], skip_special_tokens=True)) for row in out]


def generate_candidates(loaded: LoadedModel, criterion: str, n_per_class: int, sampling: Sampling = Sampling(),
                        seeds: Sequence[ScoredPrompt] = ()) -> dict[bool, list[str]]:
    """Cleaned candidate texts of each class (True: the criterion holds), ``OVERSAMPLE`` requests per wanted one.

    Request ``i`` shows the seed examples of its class from position ``i`` on (cyclically), up to 3.
    """
    import torch

    torch.manual_seed(sampling.seed)
    tok = loaded.tokenizer
    out: dict[bool, list[str]] = {True: [], False: []}
    for positive in (True, False):
        own = [p.text for p in seeds if (p.criterion_score >= 0.5) == positive]
        chats = []
        for i in range(n_per_class * OVERSAMPLE):
            shown = [own[(i + j) % len(own)] for j in range(min(MAX_SHOWN_SEEDS, len(own)))]
            messages = request(criterion, positive, TOPICS[(i + sampling.seed) % len(TOPICS)], shown)
            chats.append(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
        for start in range(0, len(chats), sampling.batch_size):
            for reply in _generate_batch(loaded, chats[start:start + sampling.batch_size], sampling):
                text = clean(reply, criterion)
                if text is not None:
                    out[positive].append(text)
    return out


def _agrees_with_seeds(candidates: dict[bool, list[str]], seeds: Sequence[ScoredPrompt],
                       encoder: Encoder) -> dict[bool, np.ndarray]:
    from interp_agent.core.criteria.text_scorer import TextClassifierScorer

    scorer = TextClassifierScorer(encoder=encoder).fit(seeds)  # type: ignore[arg-type]  # any Encoder will do
    assert scorer.threshold is not None
    # a candidate agrees when the classifier puts it in the class it was asked for
    return {cls: (scorer._proba(texts) >= scorer.threshold) == cls if texts else np.zeros(0, dtype=bool)
            for cls, texts in candidates.items()}


def _agrees_with_criterion(candidates: dict[bool, list[str]], criterion: str,
                           encoder: Encoder) -> tuple[dict[bool, np.ndarray], dict[str, float]]:
    c_D = encoder.encode([criterion])[0]
    sims = {cls: encoder.encode(texts) @ c_D if texts else np.zeros(0) for cls, texts in candidates.items()}
    med_pos = float(np.median(sims[True])) if sims[True].size else math.nan
    med_neg = float(np.median(sims[False])) if sims[False].size else math.nan
    if not med_pos > med_neg:
        raise EvidenceError(
            f"the sentence encoder cannot tell the generated candidates apart by the criterion text (median "
            f"similarity {med_pos:.3f} for candidates asked to meet it, {med_neg:.3f} for the others)",
            hint="give a few seed positives and negatives to filter on, or write the prompts yourself")
    mid = (med_pos + med_neg) / 2
    return ({True: sims[True] >= mid, False: sims[False] < mid},
            {"median_similarity_positive": med_pos, "median_similarity_negative": med_neg, "midpoint": mid})


def filter_candidates(candidates: dict[bool, list[str]], criterion: str, encoder: Encoder, n_per_class: int,
                      seeds: Sequence[ScoredPrompt] = ()) -> tuple[dict[bool, list[str]], dict[str, Any]]:
    """Candidates that agree with their class and duplicate nothing, at most ``n_per_class`` of each.

    Returns:
        ``(kept, record)``: the kept texts per class and how they were filtered (rule, counts).
    """
    stats: dict[str, Any] = {}
    if seeds:
        agree, rule = _agrees_with_seeds(candidates, seeds, encoder), "MiniLM classifier fitted on the seed examples"
    else:
        agree, stats = _agrees_with_criterion(candidates, criterion, encoder)
        rule = "MiniLM similarity to the criterion on its class's side of the midpoint of the class medians"
    seen = {normalise_text(p.text) for p in seeds}
    kept: dict[bool, list[str]] = {True: [], False: []}
    kept_emb: dict[bool, list[np.ndarray]] = {cls: [] for cls in (True, False)}
    for p, e in zip(seeds, encoder.encode([p.text for p in seeds]), strict=True):
        kept_emb[p.criterion_score >= 0.5].append(e)
    dropped = {"disagree": 0, "duplicate": 0, "near_duplicate": 0}
    for cls, texts in candidates.items():
        emb_ND = encoder.encode(texts)
        for text, ok, e in zip(texts, agree[cls], emb_ND, strict=True):
            if len(kept[cls]) == n_per_class:
                break
            key = normalise_text(text)
            why = ("disagree" if not ok else "duplicate" if key in seen else "near_duplicate"
                   if kept_emb[cls] and float(np.max(np.stack(kept_emb[cls]) @ e)) >= NEAR_DUPLICATE_COSINE else None)
            if why:
                dropped[why] += 1
                continue
            seen.add(key)
            kept[cls].append(text)
            kept_emb[cls].append(e)
    record = {"rule": rule, "n_candidates": {"positive": len(candidates[True]), "negative": len(candidates[False])},
              "n_kept": {"positive": len(kept[True]), "negative": len(kept[False])}, "dropped": dropped} | stats
    return kept, record


def sampling_record(sampling: Sampling, model_name: str) -> dict[str, Any]:
    """What a generated prompt records about how it was made."""
    return {"model": model_name, "sampling": asdict(sampling), "chat_template": True, "system": SYSTEM}
