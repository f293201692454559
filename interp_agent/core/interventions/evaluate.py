"""Scoring prompt sets with and without edits: one edit per pass, or many edits sharing batched passes.

The intervention runner asks for the behaviour scores of a prompt set under a list of
edits (a feature at several strengths, its controls), for the KL of their next-token
distributions against the unedited ones, or for both. Unedited baselines are computed
once per prompt set and cached.

- Sequential (``batched=False``): every edit gets its own passes, the score and the
  log-probabilities separately: the runner as it was before batching, kept as the
  benchmark's baseline.
- Batched: a chunk of prompts (the scorer's own batch, so each group is padded as the
  chunk alone would be) is repeated once per edit and ``models.hooks.edit_groups`` edits
  each copy with its own edit, at most ``max_rows`` rows a pass; the blocks before the
  edited one run once per chunk, not once per edit. The unedited baseline of a prompt set
  rides along as one more group in its first pass. A scorer with ``score_groups``
  (next-token mass, continuations) runs the groups itself; the target-token scorer also
  hands back the next-token log-probabilities of its pass, so its scores and KL on one
  prompt set take one pass, not two (the continuation scorer's first generated step is
  another distribution, see its ``score_groups``). Other scorers (the input probe) are
  called once per edit, and their KL passes are still batched. The numbers are those of
  the sequential path to floating point (different batch shapes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch

from interp_agent.core.models.hooks import edit, edit_groups, logits_at

EditFn = Callable[[torch.Tensor], torch.Tensor]


class Scorer(Protocol):
    """A behaviour scorer: higher means the criterion holds more."""

    def score(self, model: Any, tokenizer: Any, texts: list[str]) -> np.ndarray: ...


@runtime_checkable
class GroupScorer(Protocol):
    """A scorer that runs several edits in one pass: each batch of texts repeated once per group, group-major."""

    batch_size: int
    """Texts per batch; each pass holds ``n_groups`` copies of one batch."""

    def score_groups(
        self, model: Any, tokenizer: Any, texts: Sequence[str], n_groups: int, *, logprobs: bool = False
    ) -> tuple[np.ndarray, torch.Tensor | None]:
        """Scores [n_groups, n] and, when asked (and the same distribution), next-token log-probs [n_groups, n, V]."""
        ...


class ScoredKL(NamedTuple):
    """An edit's scores on a prompt set and the KL of its next-token distributions there."""

    scores: np.ndarray
    kl: np.ndarray


def _batches(tok: Any, texts: Sequence[str], batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(input ids, attention mask) per batch of texts, padded as the tokenizer pads (right, for loaded models)."""
    for start in range(0, len(texts), batch_size):
        enc = tok(list(texts[start : start + batch_size]), return_tensors="pt", padding=True)
        yield enc["input_ids"], enc["attention_mask"]


def next_token_logprobs(loaded: Any, texts: Sequence[str], batch_size: int) -> torch.Tensor:
    """Log-probabilities of the next token after each text, [n, vocab] (right padding, last real token)."""
    tok, model = loaded.tokenizer, loaded.model
    out = []
    with torch.no_grad():
        for ids, mask in _batches(tok, texts, batch_size):
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
            last = mask.sum(1) - 1
            out.append(torch.log_softmax(logits[torch.arange(len(last)), last].float(), -1).cpu())
    return torch.cat(out)


def grouped_logprobs(loaded: Any, texts: Sequence[str], batch_size: int, n_groups: int) -> torch.Tensor:
    """:func:`next_token_logprobs` with each batch repeated ``n_groups`` times in one pass: [n_groups, n, vocab].

    The LM head runs at the last real token only (``logits_at``); the batches are the same.
    """
    tok, model = loaded.tokenizer, loaded.model
    out = []
    with torch.no_grad():
        for ids, mask in _batches(tok, texts, batch_size):
            last = (mask.sum(1) - 1).repeat(n_groups)
            logits = logits_at(model, ids.repeat(n_groups, 1).to(model.device),
                               mask.repeat(n_groups, 1).to(model.device), last)
            out.append(torch.log_softmax(logits.float(), -1).cpu().view(n_groups, len(ids), -1))
    return torch.cat(out, dim=1)


def kl(base_NV: torch.Tensor, edited_NV: torch.Tensor) -> np.ndarray:
    """KL(base || edited) per prompt, in nats."""
    return (base_NV.exp() * (base_NV - edited_NV)).sum(-1).clamp_min(0).numpy()


class Evaluator:
    """Scores prompt sets with and without edits, caching the unedited baselines.

    Batched, an unedited group rides along in the first pass over a prompt set whose
    baseline is not cached yet (sharing its upstream blocks with the edits), and fills it.
    """

    def __init__(self, loaded: Any, scorer: Scorer, batch_size: int, *, batched: bool = True,
                 max_rows: int = 64) -> None:
        """Args:
            batch_size: prompts per forward pass of the KL's log-probabilities.
            batched: edits share passes (else one edit per pass, as before batching).
            max_rows: most rows (prompts x edits) of one batched pass.
        """
        self.loaded, self.scorer, self.batch_size = loaded, scorer, batch_size
        self.batched, self.max_rows = batched, max_rows
        self.groups = batched and isinstance(scorer, GroupScorer)
        self._cache: dict[tuple[str, ...], Any] = {}

    def scores(self, texts: list[str]) -> np.ndarray:
        """Unedited scores (cached)."""
        key = ("score", *texts)
        if key not in self._cache:
            if self.groups:
                self._grouped_scores(texts, None, [], logprobs=False)
            else:
                self._cache[key] = np.asarray(
                    self.scorer.score(self.loaded.model, self.loaded.tokenizer, texts), dtype=float)
        return self._cache[key]

    def logprobs(self, texts: list[str]) -> torch.Tensor:
        """Unedited next-token log-probabilities from a forward pass (cached), the KL's reference."""
        key = ("logprobs", *texts)
        if key not in self._cache:
            self._cache[key] = (grouped_logprobs(self.loaded, texts, self.batch_size, 1)[0] if self.batched
                                else next_token_logprobs(self.loaded, texts, self.batch_size))
        return self._cache[key]

    def edited_scores(self, texts: list[str], hook: str, fns: Sequence[EditFn]) -> list[np.ndarray]:
        """Scores of ``texts`` under each edit of ``fns`` at ``hook``."""
        if not self.groups:
            return [self._score_one(texts, hook, fn) for fn in fns]
        return [s for s, _ in self._grouped_scores(texts, hook, fns, logprobs=False)]

    def edited_kl(self, texts: list[str], hook: str, fns: Sequence[EditFn]) -> list[np.ndarray]:
        """KL(unedited || edited) of next-token distributions after each text, per edit of ``fns``."""
        if not self.batched:
            base = self.logprobs(texts)
            return [kl(base, self._logprobs_one(texts, hook, fn)) for fn in fns]
        key = ("logprobs", *texts)
        groups: list[EditFn | None] = ([] if key in self._cache else [None]) + list(fns)
        out: list[np.ndarray] = []
        for bundle in self._bundles(groups, len(texts), self.batch_size):
            with edit_groups(self.loaded.model, hook, bundle):
                lps = list(grouped_logprobs(self.loaded, texts, self.batch_size, len(bundle)))
            if key not in self._cache:
                self._cache[key] = lps.pop(0)
            out.extend(kl(self._cache[key], lp) for lp in lps)
        return out

    def edited_scores_kl(self, texts: list[str], hook: str, fns: Sequence[EditFn]) -> list[ScoredKL]:
        """Scores and KL of ``texts`` under each edit: one pass each when the scorer's pass gives the log-probs."""
        if not self.groups:
            return [ScoredKL(s, k) for s, k in zip(self.edited_scores(texts, hook, fns),
                                                   self.edited_kl(texts, hook, fns), strict=True)]
        runs = self._grouped_scores(texts, hook, fns, logprobs=True)
        base = self._cache[("scorer_logprobs", *texts)]
        lps = [lp for _, lp in runs if lp is not None]
        if base is None or len(lps) < len(runs):  # the scorer's distribution is not the KL's (see score_groups)
            return [ScoredKL(s, k) for (s, _), k in zip(runs, self.edited_kl(texts, hook, fns), strict=True)]
        return [ScoredKL(s, kl(base, lp)) for (s, _), lp in zip(runs, lps, strict=True)]

    def _score_one(self, texts: list[str], hook: str, fn: EditFn) -> np.ndarray:
        with edit(self.loaded.model, hook, fn):
            return np.asarray(self.scorer.score(self.loaded.model, self.loaded.tokenizer, texts), dtype=float)

    def _logprobs_one(self, texts: list[str], hook: str, fn: EditFn) -> torch.Tensor:
        with edit(self.loaded.model, hook, fn):
            return next_token_logprobs(self.loaded, texts, self.batch_size)

    def _grouped_scores(
        self, texts: list[str], hook: str | None, fns: Sequence[EditFn], *, logprobs: bool
    ) -> list[tuple[np.ndarray, torch.Tensor | None]]:
        """(scores, log-probs or None) per edit, by the scorer's grouped passes of at most ``max_rows`` rows.

        The unedited baseline (with its log-probs when asked) rides along as a group of its
        own when it is not cached yet; ``hook`` may be None only when ``fns`` is empty.
        """
        assert isinstance(self.scorer, GroupScorer)
        scorer, model = self.scorer, self.loaded.model
        keys = [("score", *texts)] + ([("scorer_logprobs", *texts)] if logprobs else [])
        base = any(k not in self._cache for k in keys)
        groups: list[EditFn | None] = ([None] if base else []) + list(fns)
        out: list[tuple[np.ndarray, torch.Tensor | None]] = []
        for bundle in self._bundles(groups, len(texts), scorer.batch_size):
            with edit_groups(model, hook, bundle) if hook is not None else nullcontext():
                s_GN, lp_GNV = scorer.score_groups(model, self.loaded.tokenizer, texts, len(bundle), logprobs=logprobs)
            s_GN = np.asarray(s_GN, dtype=float)
            out.extend((s_GN[g], None if lp_GNV is None else lp_GNV[g]) for g in range(len(bundle)))
        if base:
            (s0, lp0), out = out[0], out[1:]
            self._cache.setdefault(keys[0], s0)
            if logprobs:
                self._cache.setdefault(keys[1], lp0)
        return out

    def _bundles(self, fns: Sequence[EditFn | None], n_texts: int, batch_size: int) -> Iterator[list[EditFn | None]]:
        """The edits in bundles whose passes (a batch of prompts per edit) stay within ``max_rows`` rows."""
        per = max(1, self.max_rows // max(1, min(batch_size, n_texts)))
        for start in range(0, len(fns), per):
            yield list(fns[start : start + per])
