"""Streaming association statistics of features against a criterion score.

Two passes over the records, each vectorised per chunk:

1. :class:`FirstPass` keeps sufficient statistics per feature and split (sums of x, x²,
   x·y, |x|, |x|·y and non-zero counts) for every feature: Pearson r, p- and q-values
   and specificity for all of them. Memory grows with the number of features only
   (plus one 8-byte hash per row to count distinct prompts).
2. :class:`SecondPass` revisits only the candidate features (highest |r| on the training
   split): class histograms (AUROC, plots), Poisson-bootstrap sums (stability), top
   examples and probe-prompt activations (fingerprints for matching).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from interp_agent.core.ranking.config import RankingConfig
from interp_agent.core.ranking.sources import Chunk
from interp_agent.core.ranking.splits import (
    HELD_OUT,
    TRAIN,
    assign_splits,
    poisson_bootstrap_weights,
    salted,
    splitmix64,
)
from interp_agent.core.ranking.stats import (
    auroc_interval,
    benjamini_hochberg,
    binned_auroc,
    pearson_from_sums,
    pearson_p_value,
    spearman_mean_pairwise,
)

_SUMS = ("sx", "sxx", "sxy", "sabs", "sabsy", "nnz")


_SUM_BLOCK = 32_768
"""Triplets gathered at once by :func:`weighted_candidate_sums` (block x resamples float64s)."""


def weighted_candidate_sums(
    rows: np.ndarray, cands: np.ndarray, values: Sequence[np.ndarray], weights_RB: np.ndarray, n_cands: int
) -> list[np.ndarray]:
    """For each value vector v over the triplets, sum_t v[t] * weights_RB[rows[t]] per candidate: (n_cands, B).

    Triplets are distinct (row, candidate) pairs, as records carry one value per feature a row.

    The sparse-dense product X^T W of the bootstrap sums, without scipy.sparse (whose
    import costs ~0.1 s of every command's start-up): triplets sorted by candidate, a block
    at a time, each block's rows gathered and summed per candidate with ``np.add.reduceat``.
    """
    order = np.argsort(cands, kind="stable")
    rows_s, cands_s = rows[order], cands[order]
    values_s = [v[order] for v in values]
    out = [np.zeros((n_cands, weights_RB.shape[1])) for _ in values]
    for start in range(0, len(order), _SUM_BLOCK):
        block = slice(start, start + _SUM_BLOCK)
        gathered_TB = weights_RB[rows_s[block]]
        present, first = np.unique(cands_s[block], return_index=True)
        for total, v in zip(out, values_s, strict=True):
            total[present] += np.add.reduceat(v[block, None] * gathered_TB, first, axis=0)
    return out


class FirstPass:
    """Sufficient statistics of every feature on the training and held-out splits."""

    def __init__(self, config: RankingConfig) -> None:
        self.config = config
        self.n = np.zeros(2)
        self.sy = np.zeros(2)
        self.syy = np.zeros(2)
        self.ymin = np.inf
        self.ymax = -np.inf
        self.values: set[float] = set()
        # per split, 8 bytes a row: distinct prompts per split and in all
        self.prompt_keys: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
        self.models: set[str] = set()
        self.synthetic = False
        self.cap = 0
        self.sums = {name: np.zeros((2, 0)) for name in _SUMS}
        self.xmin = np.zeros(0)
        self.xmax = np.zeros(0)
        self.probe_keys = np.zeros(0, dtype=np.uint64)
        self.probe_ids: list[str] = []

    def _grow(self, n_features: int) -> None:
        if n_features <= self.cap:
            return
        new = max(n_features, 2 * self.cap, 64)
        for name, arr in self.sums.items():
            grown = np.zeros((2, new))
            grown[:, : self.cap] = arr
            self.sums[name] = grown
        self.xmin = np.concatenate([self.xmin, np.full(new - self.cap, np.inf)])
        self.xmax = np.concatenate([self.xmax, np.full(new - self.cap, -np.inf)])
        self.cap = new

    def update(self, chunk: Chunk, n_features: int) -> None:
        """Add one chunk of rows."""
        cfg = self.config
        self._grow(n_features)
        h = salted(chunk.id_hashes, cfg.split_salt)
        g = assign_splits(h, cfg.held_out_fraction, chunk.splits)
        y = chunk.scores
        self.models |= chunk.models
        self.synthetic = self.synthetic or chunk.synthetic
        for gi in (TRAIN, HELD_OUT):
            self.prompt_keys[gi].append(np.unique(h[g == gi]))
        if len(self.values) <= 2:
            self.values.update(np.unique(y)[:3].tolist())
        if len(y):
            self.ymin = min(self.ymin, float(y.min()))
            self.ymax = max(self.ymax, float(y.max()))
        for gi in (TRAIN, HELD_OUT):
            yg = y[g == gi]
            self.n[gi] += len(yg)
            self.sy[gi] += yg.sum()
            self.syy[gi] += (yg * yg).sum()
        self._probes(h, chunk.prompt_ids)

        r, f, x = chunk.act_row, chunk.act_feature, chunk.act_value
        if not len(x):
            return
        # explicit zeros add nothing to the sums; they are only kept out of nnz and the range
        nonzero = x != 0
        np.minimum.at(self.xmin, f, np.where(nonzero, x, np.inf))
        np.maximum.at(self.xmax, f, np.where(nonzero, x, -np.inf))
        cap = self.cap
        idx = f + g[r].astype(np.int64) * cap  # one bincount covers both splits
        ya = y[r]
        xy = x * ya
        s = self.sums
        sum_x = np.bincount(idx, x, 2 * cap).reshape(2, cap)
        sum_xy = np.bincount(idx, xy, 2 * cap).reshape(2, cap)
        s["sx"] += sum_x
        s["sxy"] += sum_xy
        s["sxx"] += np.bincount(idx, x * x, 2 * cap).reshape(2, cap)
        s["nnz"] += np.bincount(idx, nonzero, 2 * cap).reshape(2, cap)
        if x.min() >= 0:  # non-negative activations (SAE latents, ReLU neurons): |x| = x
            s["sabs"] += sum_x
            s["sabsy"] += sum_xy
        else:
            ax = np.abs(x)
            s["sabs"] += np.bincount(idx, ax, 2 * cap).reshape(2, cap)
            s["sabsy"] += np.bincount(idx, ax * ya, 2 * cap).reshape(2, cap)

    def _probes(self, h: np.ndarray, prompt_ids: Sequence[str]) -> None:
        keys = splitmix64(h)
        limit = self.config.n_probes
        if len(self.probe_keys) >= limit:
            sel = np.nonzero(keys < self.probe_keys.max())[0]
        else:
            sel = np.arange(len(keys))
        if not len(sel):
            return
        all_keys = np.concatenate([self.probe_keys, keys[sel]])
        all_ids = self.probe_ids + [prompt_ids[i] for i in sel.tolist()]
        _, first = np.unique(all_keys, return_index=True)  # sorted; tokens of one prompt collapse
        keep = first[:limit]
        self.probe_keys = all_keys[keep]
        self.probe_ids = [all_ids[i] for i in keep]

    # -- results ---------------------------------------------------------------------------
    @property
    def n_prompts(self) -> int:
        """Number of distinct prompt ids seen."""
        keys = self.prompt_keys[TRAIN] + self.prompt_keys[HELD_OUT]
        return len(np.unique(np.concatenate(keys))) if keys else 0

    def n_split_prompts(self, gi: int) -> int:
        """Number of distinct prompt ids with a row in split ``gi`` (TRAIN or HELD_OUT)."""
        keys = self.prompt_keys[gi]
        return len(np.unique(np.concatenate(keys))) if keys else 0

    @property
    def binary(self) -> bool:
        """Whether the criterion scores take exactly two values."""
        return len(self.values) == 2

    @property
    def score_range(self) -> float:
        """max - min of the criterion scores (1 when all scores are equal)."""
        span = self.ymax - self.ymin
        return span if span > 0 else 1.0

    def correlations(self, n_features: int) -> dict[str, np.ndarray]:
        """Pearson r and p per split for the first ``n_features`` features, q on the training split."""
        s = {k: v[:, :n_features] for k, v in self.sums.items()}
        out: dict[str, np.ndarray] = {}
        for gi, name in ((TRAIN, "train"), (HELD_OUT, "held_out")):
            r = pearson_from_sums(self.n[gi], s["sx"][gi], s["sxx"][gi], self.sy[gi], self.syy[gi], s["sxy"][gi])
            out[f"r_{name}"] = r
            out[f"p_{name}"] = pearson_p_value(r, self.n[gi])
        out["q_train"] = benjamini_hochberg(out["p_train"])
        return out

    def specificity(self, idx: np.ndarray, gi: int, sign: np.ndarray) -> tuple[np.ndarray, float]:
        """Share of activation mass |x| on criterion-positive rows (scores scaled to [0, 1]).

        For features that suppress the criterion (sign < 0) the share on negative rows.
        Returns (specificity per feature, base rate of the same side).
        """
        lo, span = self.ymin, self.score_range
        sabs = self.sums["sabs"][gi, idx]
        pos_mass = (self.sums["sabsy"][gi, idx] - lo * sabs) / span
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(sabs > 0, pos_mass / sabs, np.nan)
        base = (self.sy[gi] - lo * self.n[gi]) / span / max(self.n[gi], 1)
        share = np.where(sign < 0, 1.0 - share, share)
        return share, float(base)


class SecondPass:
    """Histograms, bootstrap sums, examples and probe activations of the candidate features."""

    def __init__(self, config: RankingConfig, first: FirstPass, candidates: np.ndarray) -> None:
        self.config = config
        self.first = first
        self.candidates = candidates
        c = len(candidates)
        self.cand_of = np.full(max(first.cap, int(candidates.max(initial=0)) + 1), -1, dtype=np.int64)
        self.cand_of[candidates] = np.arange(c)
        lo = first.xmin[candidates]
        hi = first.xmax[candidates]
        lo = np.where(np.isfinite(lo), lo, 0.0)
        hi = np.where(np.isfinite(hi), hi, 1.0)
        self.lo = lo
        self.width = np.where(hi > lo, hi - lo, 1.0)
        self.mid = (first.ymin + first.ymax) / 2.0
        nb = config.auroc_bins
        self.hist = np.zeros((4, c, nb))  # (split*2 + class, candidate, bin), class 1 = positive
        self.rows_gc = np.zeros(4)
        self.sum_gc = np.zeros((4, c))
        b = config.bootstrap
        self.sw = np.zeros(b)
        self.swy = np.zeros(b)
        self.swyy = np.zeros(b)
        self.swx = np.zeros((c, b))
        self.swxx = np.zeros((c, b))
        self.swxy = np.zeros((c, b))
        e = config.n_examples
        self.top_val = np.full((e, c), -np.inf)
        self.top_info: np.ndarray = np.empty((e, c), dtype=object)
        # probe_keys are sorted; probe i is probe_keys[i] / probe_ids[i]
        self.probe_order = np.arange(len(first.probe_keys))
        self.probe_sum = np.zeros((c, len(first.probe_ids)))
        self.probe_rows = np.zeros(len(first.probe_ids))

    def update(self, chunk: Chunk) -> None:
        """Add one chunk (activations restricted to the candidates)."""
        cfg = self.config
        n_rows = len(chunk.prompt_ids)
        if n_rows == 0:
            return
        h = salted(chunk.id_hashes, cfg.split_salt)
        g = assign_splits(h, cfg.held_out_fraction, chunk.splits)
        y = chunk.scores
        gc = g.astype(np.int64) * 2 + (y > self.mid)
        self.rows_gc += np.bincount(gc, minlength=4)

        # sparse triplets (row, candidate, value) of the candidates' non-zero activations
        f = chunk.act_feature
        inside = f < len(self.cand_of)
        ci = np.where(inside, self.cand_of[np.where(inside, f, 0)], -1)
        keep = (ci >= 0) & (chunk.act_value != 0)
        rr, cc, x = chunk.act_row[keep], ci[keep], chunk.act_value[keep]
        c = len(self.candidates)
        nb = cfg.auroc_bins
        if len(x):
            bins = np.clip(((x - self.lo[cc]) / self.width[cc] * nb).astype(np.int64), 0, nb - 1)
            self.hist += np.bincount((gc[rr] * c + cc) * nb + bins, minlength=4 * c * nb).reshape(4, c, nb)
            self.sum_gc += np.bincount(gc[rr] * c + cc, x, 4 * c).reshape(4, c)

        # Poisson bootstrap of the training split: sums as sparse-dense products X^T W
        W = poisson_bootstrap_weights(h, cfg.bootstrap, cfg.seed) * (g == TRAIN)[:, None].astype(np.float32)
        W64 = W.astype(np.float64)
        self.sw += W64.sum(0)
        self.swy += y @ W64
        self.swyy += (y * y) @ W64
        if len(x):
            x64 = x.astype(np.float64)
            swx, swxx, swxy = weighted_candidate_sums(rr, cc, (x64, x64 * x64, x64 * y[rr]), W64, c)
            self.swx += swx
            self.swxx += swxx
            self.swxy += swxy
            self._examples(chunk, rr, cc, x)
            self._probe_sums(h, rr, cc, x, n_rows)

    def _probe_sums(self, h: np.ndarray, rr: np.ndarray, cc: np.ndarray, x: np.ndarray, n_rows: int) -> None:
        keys = self.first.probe_keys
        if not len(keys):
            return
        row_keys = splitmix64(h)
        pos = np.minimum(np.searchsorted(keys, row_keys), len(keys) - 1)
        pidx = np.where(keys[pos] == row_keys, self.probe_order[pos], -1)
        hit = pidx >= 0
        if hit.any():
            self.probe_rows += np.bincount(pidx[hit], minlength=len(keys))
            sel = hit[rr]
            n_p = len(keys)
            self.probe_sum += np.bincount(cc[sel] * n_p + pidx[rr[sel]], x[sel], len(self.candidates) * n_p).reshape(
                len(self.candidates), n_p
            )

    def _examples(self, chunk: Chunk, rr: np.ndarray, cc: np.ndarray, x: np.ndarray) -> None:
        """Merge the chunk's activations that beat a candidate's current top examples."""
        e = self.config.n_examples
        better = x > self.top_val[-1][cc]  # the e-th best so far (-inf while filling)
        if not better.any():
            return
        rr, cc, x = rr[better], cc[better], x[better]
        order = np.lexsort((-x, cc))
        rr, cc, x = rr[order], cc[order], x[order]
        starts = np.flatnonzero(np.r_[True, cc[1:] != cc[:-1]])
        ends = np.r_[starts[1:], len(cc)]
        for a, b in zip(starts, ends, strict=True):
            j = int(cc[a])
            b = min(b, a + e)
            merged_vals = np.concatenate([self.top_val[:, j], x[a:b]])
            merged_info = list(self.top_info[:, j]) + [self._row_info(chunk, int(r)) for r in rr[a:b]]
            top = np.argsort(-merged_vals, kind="stable")[:e]
            self.top_val[:, j] = merged_vals[top]
            for k, o in enumerate(top):
                self.top_info[k, j] = merged_info[o]

    @staticmethod
    def _row_info(chunk: Chunk, r: int) -> dict[str, Any]:
        return {
            "prompt_id": chunk.prompt_ids[r],
            "text": chunk.texts[r] if chunk.texts is not None else None,
            "token_index": chunk.token_index[r],
            "token": chunk.tokens[r] if chunk.tokens is not None else None,
            "criterion_score": float(chunk.scores[r]),
        }

    # -- results ---------------------------------------------------------------------------
    def _class_counts(self, gi: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Positive and negative row counts of candidate ``j`` on split ``gi`` over value-ordered bins.

        Rows where the feature is absent form their own bin at value 0.
        """
        nb = self.config.auroc_bins
        centers = self.lo[j] + (np.arange(nb) + 0.5) / nb * self.width[j]
        neg, pos = self.hist[2 * gi, j], self.hist[2 * gi + 1, j]
        at = int(np.searchsorted(centers, 0.0))
        p = np.insert(pos, at, self.rows_gc[2 * gi + 1] - pos.sum())
        n = np.insert(neg, at, self.rows_gc[2 * gi] - neg.sum())
        return p, n

    def auroc(self) -> np.ndarray:
        """Binned AUROC per split and candidate, shape [2, C]; NaN when a class is empty."""
        c = len(self.candidates)
        out = np.full((2, c), np.nan)
        for gi in (TRAIN, HELD_OUT):
            for j in range(c):
                out[gi, j] = binned_auroc(*self._class_counts(gi, j))
        return out

    def auroc_intervals(self, gi: int, design_effect: float) -> list[tuple[float, float] | None]:
        """95% interval of each candidate's AUROC on split ``gi`` (see ``stats.auroc_interval``)."""
        return [auroc_interval(*self._class_counts(gi, j), design_effect) for j in range(len(self.candidates))]

    def class_means(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean activation on positive and on negative rows, per split: two arrays [2, C]."""
        with np.errstate(invalid="ignore", divide="ignore"):
            means = self.sum_gc / self.rows_gc[:, None]
        return means[[1, 3]], means[[0, 2]]

    def histograms(self) -> list[dict[str, Any]]:
        """Display histograms (all rows, by class) per candidate."""
        cfg = self.config
        factor = cfg.auroc_bins // cfg.hist_bins
        pos = (self.hist[1] + self.hist[3]).reshape(len(self.candidates), cfg.hist_bins, factor).sum(-1)
        neg = (self.hist[0] + self.hist[2]).reshape(len(self.candidates), cfg.hist_bins, factor).sum(-1)
        zeros_pos = self.rows_gc[1] + self.rows_gc[3] - pos.sum(1)
        zeros_neg = self.rows_gc[0] + self.rows_gc[2] - neg.sum(1)
        edges = self.lo[:, None] + np.linspace(0, 1, cfg.hist_bins + 1)[None, :] * self.width[:, None]
        return [
            {
                "edges": edges[j].tolist(),
                "positive": pos[j].astype(int).tolist(),
                "negative": neg[j].astype(int).tolist(),
                "zeros_positive": int(zeros_pos[j]),
                "zeros_negative": int(zeros_neg[j]),
            }
            for j in range(len(self.candidates))
        ]

    def bootstrap(self, top_k: int, sign: np.ndarray) -> dict[str, Any]:
        """Bootstrap r per candidate and resample; top-k retention frequency; mean rank agreement."""
        r = pearson_from_sums(
            self.sw[None, :], self.swx, self.swxx, self.swy[None, :], self.swyy[None, :], self.swxy
        )  # [C, B]
        aligned = r * sign[:, None]
        order = np.argsort(-aligned, axis=0)
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(len(sign))[:, None].repeat(r.shape[1], 1), axis=0)
        k = min(top_k, len(sign))
        freq = ((ranks < k) & (aligned > 0)).mean(1)
        lo, hi = np.percentile(r, [2.5, 97.5], axis=1)
        return {
            "top_k_frequency": freq,
            "r_low": lo,
            "r_high": hi,
            "ranking_stability": spearman_mean_pairwise(aligned.T),
        }

    def examples(self) -> list[list[dict[str, Any]]]:
        """Top examples per candidate, highest activation first."""
        out: list[list[dict[str, Any]]] = []
        for j in range(len(self.candidates)):
            rows = []
            for k in range(self.config.n_examples):
                if np.isfinite(self.top_val[k, j]) and self.top_info[k, j] is not None:
                    rows.append(self.top_info[k, j] | {"activation": float(self.top_val[k, j])})
            out.append(rows)
        return out

    def probe_activations(self) -> list[dict[str, float]]:
        """Mean activation per probe prompt, per candidate."""
        ids = self.first.probe_ids
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(self.probe_rows > 0, self.probe_sum / np.maximum(self.probe_rows, 1), 0.0)
        return [{pid: float(means[j, i]) for i, pid in enumerate(ids)} for j in range(len(self.candidates))]
