"""Statistics from sufficient statistics: Pearson r, p-values, Benjamini-Hochberg, binned AUROC, t intervals.

Also the intervals of held-out evidence (Fisher z for r; DeLong on the logit scale, or a
Hanley-McNeil score interval at perfect separation, for AUROC), the Fisher-z sample size a
test of r needs, and the smallest r and AUROC a held-out set of a given size can detect.
"""

from __future__ import annotations

import math

import numpy as np

from interp_agent.core.ranking.distributions import find_root, normal_ppf, student_t_ppf, student_t_sf


def pearson_from_sums(
    n: np.ndarray | float, sx: np.ndarray, sxx: np.ndarray, sy: np.ndarray | float, syy: np.ndarray | float,
    sxy: np.ndarray
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
    out[ok] = 2.0 * student_t_sf(np.abs(t), df[ok])
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
    half = student_t_ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n)
    return (float(mean - half), float(mean + half))


def spearman_mean_pairwise(scores: np.ndarray) -> float:
    """Mean Spearman correlation between the rows of ``scores`` (resamples x items)."""
    if scores.shape[0] < 2 or scores.shape[1] < 2:
        return float("nan")
    ranks = np.argsort(np.argsort(scores, axis=1), axis=1).astype(np.float64)
    c = np.asarray(np.corrcoef(ranks))
    iu = np.triu_indices_from(c, k=1)
    return float(np.nanmean(c[iu]))


# -- intervals and sample sizes of held-out evidence ---------------------------------------
_R_MAX = 1.0 - 1e-12
"""|r| is clipped here before atanh, so |r| = 1 gives a finite (degenerate) interval."""


def fisher_z_interval(r: float, n: float, level: float = 0.95) -> tuple[float, float] | None:
    """Confidence interval of a Pearson r by the Fisher z transform: tanh(atanh(r) ± z / sqrt(n - 3)).

    The same interval as ``scipy.stats.pearsonr(x, y).confidence_interval(level)``.
    None when ``n`` is 3 or fewer (the standard error is undefined) or ``r`` is not finite.
    """
    if not (n > 3 and math.isfinite(r)):
        return None
    z = math.atanh(max(-_R_MAX, min(_R_MAX, r)))
    half = normal_ppf(0.5 + level / 2) / math.sqrt(n - 3)
    return (math.tanh(z - half), math.tanh(z + half))


def delong_auroc_variance(pos_counts: np.ndarray, neg_counts: np.ndarray) -> float:
    """DeLong (1988) variance of the AUROC of class histograms over value-ordered bins.

    Rows in one bin are ties (they count half, as in :func:`binned_auroc`); with one
    value per bin this is DeLong's variance of the Mann-Whitney AUROC. NaN when a class
    has fewer than two rows.
    """
    pos = np.asarray(pos_counts, dtype=np.float64)
    neg = np.asarray(neg_counts, dtype=np.float64)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos < 2 or n_neg < 2:
        return float("nan")
    # placement of a positive in bin b: share of negatives below it (ties half); of a negative: positives above it
    v10 = (np.cumsum(neg) - neg + 0.5 * neg) / n_neg
    v01 = (pos[::-1].cumsum()[::-1] - pos + 0.5 * pos) / n_pos
    auc = float((pos * v10).sum() / n_pos)
    s10 = float((pos * (v10 - auc) ** 2).sum() / (n_pos - 1))
    s01 = float((neg * (v01 - auc) ** 2).sum() / (n_neg - 1))
    return s10 / n_pos + s01 / n_neg


def hanley_mcneil_variance(theta: float, n_pos: float, n_neg: float) -> float:
    """Hanley & McNeil's (1982) variance of an AUROC ``theta``, both class sizes set to their mean (Newcombe 2006).

    Var(theta) = theta (1 - theta) [1 + (N - 1) ((1 - theta) / (2 - theta) + theta / (1 + theta))] / (m n),
    N = (m + n) / 2. At theta = 0.5 it is (m + n + 1) / (12 m n), the exact variance of the
    Mann-Whitney AUROC under the null hypothesis.
    """
    half_n = (n_pos + n_neg) / 2.0
    shape = 1.0 + (half_n - 1.0) * ((1.0 - theta) / (2.0 - theta) + theta / (1.0 + theta))
    return theta * (1.0 - theta) * shape / (n_pos * n_neg)


def hanley_mcneil_score_interval(auc: float, n_pos: float, n_neg: float, level: float = 0.95) -> tuple[float, float]:
    """Score interval of an AUROC: every theta whose Hanley-McNeil variance puts ``auc`` within z SEs.

    Var(theta) = theta (1 - theta) [1 + (N - 1) ((1 - theta) / (2 - theta) + theta / (1 + theta))] / (m n)
    with N = (m + n) / 2, the Hanley & McNeil (1982) variance with both class sizes set to
    their mean, after Newcombe (2006). Unlike a Wald interval it does not collapse at
    AUROC 0 or 1: two positives and two negatives perfectly separated give [0.39, 1].
    """
    z2 = normal_ppf(0.5 + level / 2) ** 2

    def gap(theta: float) -> float:
        return (auc - theta) ** 2 - z2 * hanley_mcneil_variance(theta, n_pos, n_neg)

    # gap < 0 just inside [0, 1] next to auc (the variance there is positive), > 0 far from it
    eps = 1e-9
    inner_lo, inner_hi = min(max(auc, eps), 1.0 - eps), max(min(auc, 1.0 - eps), eps)
    lo = find_root(gap, eps, inner_lo) if gap(eps) > 0 and inner_lo > eps else 0.0
    hi = find_root(gap, inner_hi, 1.0 - eps) if gap(1.0 - eps) > 0 and inner_hi < 1.0 - eps else 1.0
    return (float(lo), float(hi))


def auroc_interval(
    pos_counts: np.ndarray, neg_counts: np.ndarray, design_effect: float = 1.0, level: float = 0.95
) -> tuple[float, float] | None:
    """Confidence interval of a binned AUROC (ties within a bin count half).

    DeLong's variance, times ``design_effect`` (rows per prompt for token records: a
    conservative correction for the tokens of one prompt not being independent), gives a
    normal interval on the logit scale, which keeps within [0, 1] and holds its level on
    small and tie-heavy samples better than one on the AUROC scale. At perfect separation
    (AUROC 0 or 1) DeLong's variance is 0 and the logit infinite, so there the
    :func:`hanley_mcneil_score_interval` on the effective class sizes is used. None when a
    class has fewer than two rows.
    """
    pos = np.asarray(pos_counts, dtype=np.float64)
    neg = np.asarray(neg_counts, dtype=np.float64)
    var = delong_auroc_variance(pos, neg)
    if not math.isfinite(var):
        return None
    deff = max(float(design_effect), 1.0)
    auc = float(binned_auroc(pos, neg))
    if auc <= 0.0 or auc >= 1.0:
        return hanley_mcneil_score_interval(auc, pos.sum() / deff, neg.sum() / deff, level)
    half = normal_ppf(0.5 + level / 2) * math.sqrt(var * deff) / (auc * (1.0 - auc))
    logit = math.log(auc / (1.0 - auc))
    return (1.0 / (1.0 + math.exp(-(logit - half))), 1.0 / (1.0 + math.exp(-(logit + half))))


def prompts_needed_for_r(r: float, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Prompts a two-sided test of r = 0 needs to detect ``r`` (Fisher z approximation).

    n = ((z_{1-alpha/2} + z_{power}) / atanh(|r|))^2 + 3, rounded up, and at least 4 (the
    smallest n with a Fisher interval). r = 0.3 needs 85 and r = 0.1 needs 783 at alpha
    0.05 and power 0.8, as in Cohen's (1988) table. None when r is 0 or not finite.
    """
    if not math.isfinite(r) or r == 0.0:
        return None
    effect = math.atanh(min(abs(r), _R_MAX))
    z = normal_ppf(1 - alpha / 2) + normal_ppf(power)
    return max(4, math.ceil((z / effect) ** 2 + 3))


def smallest_detectable_r(n: float, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """Smallest |r| a two-sided test of r = 0 on ``n`` prompts detects with ``power`` (Fisher z).

    |r| = tanh((z_{1-alpha/2} + z_{power}) / sqrt(n - 3)), the inverse of
    :func:`prompts_needed_for_r`: 16 prompts detect |r| >= 0.65 and 85 detect |r| >= 0.30 at
    alpha 0.05 and power 0.8. None when ``n`` is 3 or fewer (no Fisher z test).
    """
    if not n > 3:
        return None
    return math.tanh((normal_ppf(1 - alpha / 2) + normal_ppf(power)) / math.sqrt(n - 3))


def smallest_detectable_auroc(n_pos: float, n_neg: float, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """Smallest AUROC above 0.5 a two-sided test of AUROC = 0.5 detects with ``power``, on these class sizes.

    The AUROC theta with theta - 0.5 = z_{1-alpha/2} SE(0.5) + z_{power} SE(theta), SE the square
    root of :func:`hanley_mcneil_variance` (the variance behind the held-out AUROC's score
    interval; at 0.5 the exact null variance of the Mann-Whitney AUROC). 32 positives against
    32 negatives detect 0.70 (a Mann-Whitney test on binormal data reaches 81% power there).
    The smallest AUROC below 0.5 that is detectable is 1 minus this one. None when a class has
    fewer than 2 prompts or not even perfect separation would be detected.
    """
    if n_pos < 2 or n_neg < 2:
        return None
    z_alpha, z_power = normal_ppf(1 - alpha / 2), normal_ppf(power)
    null_margin = z_alpha * math.sqrt(hanley_mcneil_variance(0.5, n_pos, n_neg))

    def shortfall(theta: float) -> float:
        return theta - 0.5 - null_margin - z_power * math.sqrt(hanley_mcneil_variance(theta, n_pos, n_neg))

    if shortfall(1.0) <= 0.0:
        return None
    return find_root(shortfall, 0.5, 1.0)


def prompts_per_class_needed_for_auroc(auroc: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Prompts of each class (balanced) a two-sided test of AUROC = 0.5 needs to detect ``auroc`` with ``power``.

    The smallest m with :func:`smallest_detectable_auroc` (m, m) <= ``auroc`` (an AUROC below
    0.5 counts by its distance from 0.5): 32 for 0.70 and 14 for 0.80 at alpha 0.05 and power 0.8.

    Raises:
        ValueError: ``auroc`` is 0.5 or outside [0, 1] (no sample size detects it).
    """
    target = max(auroc, 1.0 - auroc)
    if not (math.isfinite(target) and 0.5 < target <= 1.0):
        raise ValueError(f"auroc must be in [0, 1] and differ from 0.5, got {auroc!r}")

    def detects(m: int) -> bool:
        found = smallest_detectable_auroc(m, m, alpha, power)
        return found is not None and found <= target

    hi = 2
    while not detects(hi):
        hi *= 2
    lo = hi // 2  # does not detect (or is below the smallest class size tried)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if detects(mid) else (mid, hi)
    return hi
