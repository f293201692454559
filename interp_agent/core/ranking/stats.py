"""Statistics from sufficient statistics: Pearson r, p-values, Benjamini-Hochberg, binned AUROC, t intervals."""

from __future__ import annotations

import numpy as np
from scipy import stats as _st


def pearson_from_sums(
    n: np.ndarray | float, sx: np.ndarray, sxx: np.ndarray, sy: np.ndarray | float, syy: np.ndarray | float, sxy: np.ndarray
) -> np.ndarray:
    """Pearson r from sums over n rows (absent activations count as 0). Constant inputs give 0."""
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sy / n
        vx = np.maximum(sxx - sx * sx / n, 0.0)
        vy = np.maximum(syy - sy * sy / n, 0.0)
        # a variance that is a rounding residue of sxx (a constant feature) counts as zero
        ok = (vx > 1e-10 * np.abs(sxx)) & (vy > 1e-10 * np.abs(syy))
        r = np.where(ok, cov / np.sqrt(vx * vy), 0.0)
    return np.clip(np.nan_to_num(r), -1.0, 1.0)


def pearson_p_value(r: np.ndarray, n: np.ndarray | float) -> np.ndarray:
    """Two-sided p-value of H0: r = 0, from the t statistic with n - 2 degrees of freedom."""
    r = np.asarray(r, dtype=np.float64)
    n = np.broadcast_to(np.asarray(n, dtype=np.float64), r.shape)
    df = n - 2
    out = np.ones_like(r)
    ok = df > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r[ok] * np.sqrt(df[ok] / np.maximum(1.0 - r[ok] ** 2, 1e-300))
    out[ok] = 2.0 * _st.t.sf(np.abs(t), df[ok])
    return np.clip(out, 0.0, 1.0)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values (false discovery rate adjusted p-values)."""
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty_like(p)
    q[order] = np.minimum(q_sorted, 1.0)
    return q


def binned_auroc(pos_counts: np.ndarray, neg_counts: np.ndarray) -> np.ndarray:
    """AUROC from class histograms over value-ordered bins (last axis); ties within a bin count half.

    Returns NaN where a class is empty.
    """
    pos = np.asarray(pos_counts, dtype=np.float64)
    neg = np.asarray(neg_counts, dtype=np.float64)
    n_pos = pos.sum(-1)
    n_neg = neg.sum(-1)
    below = np.cumsum(neg, axis=-1) - neg
    wins = (pos * (below + 0.5 * neg)).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), wins / (n_pos * n_neg), np.nan)


def t_interval(mean: float, sd: float, n: int, level: float = 0.95) -> tuple[float, float] | None:
    """Student-t confidence interval of a mean; None for fewer than two observations."""
    if n < 2:
        return None
    half = _st.t.ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n)
    return (float(mean - half), float(mean + half))


def spearman_mean_pairwise(scores: np.ndarray) -> float:
    """Mean Spearman correlation between the rows of ``scores`` (resamples x items)."""
    if scores.shape[0] < 2 or scores.shape[1] < 2:
        return float("nan")
    ranks = np.argsort(np.argsort(scores, axis=1), axis=1).astype(np.float64)
    c = np.corrcoef(ranks)
    iu = np.triu_indices_from(c, k=1)
    return float(np.nanmean(c[iu]))
