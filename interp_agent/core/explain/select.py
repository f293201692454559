"""Which contexts represent a feature: top, quantile-stratified and random non-firing examples.

Selection is deterministic and the same whether activations arrive in streamed batches
(``core/explain/harvest.py``) or all at once (:func:`evidence_from_dense`, the reference
used by tests and small inputs). Within each split independently:

- ``top``: the ``n_top`` contexts with the largest maximum activation (ties: lower index);
- ``quantile``: a uniform sample of firing contexts (the ``pool`` with the largest
  pseudo-random keys, top contexts left out), sorted by maximum activation, cut into
  ``n_bins`` equal-count bins and ``per_bin`` taken evenly from each;
- ``random``: ``n_random`` contexts where the feature never fires, by the same kind of keys.

Keys are a hash of (seed, feature index, context index), not a stateful generator, so the
choice does not depend on batch order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from interp_agent.core.explain.evidence import (
    SPLITS,
    Contexts,
    Example,
    FeatureEvidence,
    FeatureKind,
    Split,
)
from interp_agent.core.ranking.splits import splitmix64, unit_interval

HIST_BINS = 24
"""Bins of the per-context maximum-activation histogram."""
DENSE_PERCENTILE = 99.0
"""A dense feature (residual dim, direction) fires above this percentile of its token activations."""


@dataclass(frozen=True, slots=True)
class Selection:
    """How many examples of each role, per split."""

    n_top: int = 10
    n_bins: int = 5
    per_bin: int = 4
    n_random: int = 30

    @property
    def pool(self) -> int:
        """Size of the uniform sample of firing contexts kept per split (twice what the bins need)."""
        return 2 * self.n_bins * self.per_bin


def keys(seed: int, feature_index: np.ndarray, context_index: np.ndarray, salt: int) -> np.ndarray:
    """Pseudo-random keys in [0, 1), [len(context_index), len(feature_index)]: SplitMix64 of (seed, salt,
    context, feature) mixed into one word, as the ranking's split hashes are."""
    with np.errstate(over="ignore"):
        base = splitmix64(np.array([((seed & 0xFFFFFFFF) << 8) | (salt & 0xFF)], dtype=np.uint64))
        x = splitmix64(base ^ context_index.astype(np.uint64))[:, None]
        x = splitmix64(x ^ (feature_index.astype(np.uint64)[None, :] * np.uint64(0xBF58476D1CE4E5B9)))
    return unit_interval(x)


@dataclass(frozen=True, slots=True)
class Candidates:
    """What a pass kept for one feature in one split, before assembly."""

    top_context: np.ndarray
    """int64 [<= n_top] contexts, best first."""
    top_acts: np.ndarray
    """float32 [len(top_context), T]."""
    pool_context: np.ndarray
    """int64 [<= pool] uniformly sampled firing contexts."""
    pool_acts: np.ndarray
    """float32 [len(pool_context), T]."""


@dataclass(frozen=True, slots=True)
class Totals:
    """Whole-corpus counts of one feature."""

    kind: FeatureKind
    threshold: float
    fired_tokens: int
    fired_sum: float
    max_activation: float
    n_tokens: int


def assemble(feature_id: str, feature_index: int, totals: Totals, ctx_max: np.ndarray, contexts: Contexts,
             candidates: dict[Split, Candidates], selection: Selection, seed: int) -> FeatureEvidence:
    """One feature's evidence from its per-context maxima [N] and the candidates of each split."""
    firing = ctx_max > totals.threshold
    edges, counts = _histogram(ctx_max[firing], totals.threshold)
    examples: list[Example] = []
    for split in SPLITS:
        in_split = contexts.held_out if split == "held_out" else ~contexts.held_out
        cand = candidates[split]
        examples += [Example(int(c), "top", split, float(ctx_max[c]), a) for c, a in
                     zip(cand.top_context, cand.top_acts, strict=True)]
        examples += _quantile_examples(cand, ctx_max, set(cand.top_context.tolist()), selection, split)
        quiet = np.flatnonzero(in_split & ~firing)
        if len(quiet):
            k = keys(seed, np.array([feature_index]), quiet, salt=2)[:, 0]
            chosen = quiet[np.lexsort((quiet, -k))[: selection.n_random]]
            examples += [Example(int(c), "random", split, float(ctx_max[c])) for c in np.sort(chosen)]
    mean = totals.fired_sum / totals.fired_tokens if totals.fired_tokens else 0.0
    return FeatureEvidence(feature_id, totals.kind, totals.fired_tokens / max(totals.n_tokens, 1),
                           totals.max_activation, mean, totals.threshold, int(firing.sum()), edges, counts,
                           tuple(examples))


def _quantile_examples(cand: Candidates, ctx_max: np.ndarray, top: set[int], selection: Selection,
                       split: Split) -> list[Example]:
    keep = [i for i, c in enumerate(cand.pool_context.tolist()) if c not in top]
    if not keep:
        return []
    ctx = cand.pool_context[keep]
    acts = cand.pool_acts[keep]
    order = np.lexsort((ctx, ctx_max[ctx]))
    out: list[Example] = []
    for b, chunk in enumerate(np.array_split(order, min(selection.n_bins, len(order)))):
        picks = chunk[np.unique(np.linspace(0, len(chunk) - 1, min(selection.per_bin, len(chunk))).astype(int))]
        out += [Example(int(ctx[i]), "quantile", split, float(ctx_max[ctx[i]]), acts[i], b) for i in picks]
    return out


def _histogram(values: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    if not len(values):
        return np.array([threshold, threshold + 1.0]), np.zeros(1, dtype=np.int64)
    lo, hi = float(threshold if threshold == 0 else values.min()), float(values.max())
    counts, edges = np.histogram(values, bins=HIST_BINS, range=(lo, hi if hi > lo else lo + 1.0))
    return edges, counts.astype(np.int64)


def dense_threshold(kind: FeatureKind, token_acts: np.ndarray) -> float:
    """Firing threshold: 0 for SAE latents, the DENSE_PERCENTILE of token activations for every dense kind."""
    if kind == "sae_latent" or not token_acts.size:
        return 0.0
    return float(np.percentile(token_acts, DENSE_PERCENTILE))


def candidates_from_dense(acts_NT: np.ndarray, ctx_max: np.ndarray, in_split: np.ndarray, threshold: float,
                          feature_index: int, selection: Selection, seed: int) -> Candidates:
    """The candidates a streaming pass would keep, computed from all activations at once."""
    idx = np.flatnonzero(in_split)
    firing = idx[ctx_max[idx] > threshold]
    top = firing[np.lexsort((firing, -ctx_max[firing]))[: selection.n_top]]
    k = keys(seed, np.array([feature_index]), firing, salt=1)[:, 0]
    pool = firing[np.lexsort((firing, -k))[: selection.pool]]
    return Candidates(top, acts_NT[top].astype(np.float32), pool, acts_NT[pool].astype(np.float32))


def evidence_from_dense(contexts: Contexts, acts_FNT: np.ndarray, feature_ids: Sequence[str],
                        kinds: Sequence[FeatureKind], *, selection: Selection | None = None,
                        seed: int = 0, thresholds: Sequence[float] | None = None) -> dict[str, FeatureEvidence]:
    """Every feature's evidence from activations [F, N, T] held in memory (position 0 is ignored).

    ``thresholds`` overrides the firing thresholds (default: ``dense_threshold`` over all tokens).
    """
    selection = selection or Selection()
    out: dict[str, FeatureEvidence] = {}
    for f, (fid, kind) in enumerate(zip(feature_ids, kinds, strict=True)):
        raw = np.asarray(acts_FNT[f], dtype=np.float32)
        counted = raw[:, 1:]
        threshold = dense_threshold(kind, counted) if thresholds is None else float(thresholds[f])
        # what a harvest keeps per token: the activation where the feature fires, 0 elsewhere and at position 0
        acts = np.where(raw > threshold, raw, 0.0).astype(np.float32)
        acts[:, 0] = 0.0
        ctx_max = counted.max(axis=1) if counted.size else np.zeros(len(contexts), np.float32)
        fired = counted[counted > threshold]
        totals = Totals(kind, threshold, int(fired.size), float(fired.sum()), max(float(counted.max(initial=0.0)), 0.0),
                        int(counted.size))
        cands: dict[Split, Candidates] = {
            split: candidates_from_dense(acts, ctx_max, contexts.held_out == (split == "held_out"), threshold, f,
                                         selection, seed)
            for split in SPLITS}
        out[fid] = assemble(fid, f, totals, ctx_max, contexts, cands, selection, seed)
    return out
