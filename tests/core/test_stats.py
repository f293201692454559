"""Statistics from sufficient statistics agree with reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from interp_agent.core.ranking.splits import (
    assign_splits,
    poisson_bootstrap_weights,
    prompt_hashes,
)
from interp_agent.core.ranking.stats import (
    auroc_interval,
    benjamini_hochberg,
    binned_auroc,
    delong_auroc_variance,
    fisher_z_interval,
    hanley_mcneil_score_interval,
    pearson_from_sums,
    pearson_p_value,
    prompts_needed_for_r,
    spearman_mean_pairwise,
    t_interval,
)


def test_pearson_from_sums_matches_numpy_corrcoef() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)) * (rng.random((300, 6)) < 0.3)
    y = rng.normal(size=300) + X[:, 0]
    r = pearson_from_sums(300, X.sum(0), (X * X).sum(0), y.sum(), (y * y).sum(), X.T @ y)
    ref = [np.corrcoef(X[:, j], y)[0, 1] for j in range(6)]
    np.testing.assert_allclose(r, ref, rtol=1e-10, atol=1e-12)


def test_constant_feature_has_zero_correlation_not_a_rounding_artifact() -> None:
    x = np.full(1000, 1234.5678)
    y = np.arange(1000.0) % 2
    r = pearson_from_sums(
        1000, np.array([x.sum()]), np.array([(x * x).sum()]), y.sum(), (y * y).sum(), np.array([x @ y])
    )
    assert r[0] == 0.0


def test_p_values_match_scipy_pearsonr() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=50)
    y = 0.3 * x + rng.normal(size=50)
    ref = stats.pearsonr(x, y)
    p = pearson_p_value(np.array([ref.statistic]), 50)
    assert p[0] == pytest.approx(ref.pvalue, rel=1e-6)


def test_benjamini_hochberg_matches_scipy() -> None:
    p = np.random.default_rng(2).random(200) ** 3
    np.testing.assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p), rtol=1e-12)


def test_binned_auroc_equals_exact_mann_whitney_when_bins_separate_values() -> None:
    rng = np.random.default_rng(3)
    pos = rng.integers(0, 20, size=80)
    neg = rng.integers(0, 20, size=120)
    auc = binned_auroc(np.bincount(pos, minlength=20), np.bincount(neg, minlength=20))
    u = stats.mannwhitneyu(pos, neg).statistic
    assert auc == pytest.approx(u / (80 * 120), rel=1e-12)


def test_t_interval_matches_scipy() -> None:
    lo, hi = t_interval(0.5, 0.2, 10)
    ref = stats.t.interval(0.95, 9, loc=0.5, scale=0.2 / np.sqrt(10))
    assert (lo, hi) == pytest.approx(ref)
    assert t_interval(0.5, 0.0, 1) is None


def test_split_is_deterministic_settable_and_keeps_the_fraction() -> None:
    ids = [f"p{i}" for i in range(5000)]
    h = prompt_hashes(ids, "salt")
    g = assign_splits(h, 0.3)
    assert np.array_equal(g, assign_splits(prompt_hashes(ids, "salt"), 0.3))
    assert abs(g.mean() - 0.3) < 0.03
    assert abs(assign_splits(h, 0.5).mean() - 0.5) < 0.03
    assert not np.array_equal(g, assign_splits(prompt_hashes(ids, "other"), 0.3))
    forced = assign_splits(h[:3], 0.3, ["held_out", "train", None])
    assert forced[0] == 1 and forced[1] == 0


def test_bootstrap_weights_are_poisson_one_and_shared_by_a_prompt() -> None:
    h = prompt_hashes([f"p{i}" for i in range(4000)], "s")
    w = poisson_bootstrap_weights(h, 20, seed=0)
    assert w.shape == (4000, 20)
    assert abs(w.mean() - 1.0) < 0.03 and abs(w.var() - 1.0) < 0.05
    again = poisson_bootstrap_weights(np.concatenate([h[:1], h[:1]]), 20, seed=0)
    np.testing.assert_array_equal(again[0], again[1])
    assert not np.array_equal(w, poisson_bootstrap_weights(h, 20, seed=1))


def test_spearman_mean_pairwise_is_one_for_identical_rankings() -> None:
    s = np.tile(np.arange(10.0), (5, 1))
    assert spearman_mean_pairwise(s) == pytest.approx(1.0)


# -- held-out intervals and sample sizes -----------------------------------------------------
def _delong_reference(pos: np.ndarray, neg: np.ndarray) -> float:
    """DeLong, DeLong & Clarke-Pearson (1988) variance from raw values: structural components, ties half."""
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(1), psi.mean(0)
    return v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)


def test_fisher_z_interval_matches_scipy_pearsonr_confidence_interval() -> None:
    rng = np.random.default_rng(4)
    for n, slope in ((19, 0.4), (60, 1.0), (300, 0.05)):
        x = rng.normal(size=n)
        y = slope * x + rng.normal(size=n)
        ref = stats.pearsonr(x, y)
        lo, hi = fisher_z_interval(float(ref.statistic), n)
        ci = ref.confidence_interval(0.95)
        assert (lo, hi) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert fisher_z_interval(0.5, 3) is None  # n - 3 = 0: no standard error


def test_delong_variance_of_histograms_matches_the_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(5)
    pos = rng.integers(0, 12, size=37).astype(float)  # integer values: many ties, one value per bin
    neg = rng.integers(0, 9, size=53).astype(float)
    var = delong_auroc_variance(np.bincount(pos.astype(int), minlength=12), np.bincount(neg.astype(int), minlength=12))
    assert var == pytest.approx(_delong_reference(pos, neg), rel=1e-12)
    assert np.isnan(delong_auroc_variance(np.array([1.0, 0.0]), np.array([3.0, 4.0])))  # one positive


def _hist(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class counts over the sorted distinct values (one value per bin, as binned_auroc expects)."""
    values = np.unique(np.concatenate([pos, neg]))
    return (np.bincount(np.searchsorted(values, pos), minlength=len(values)).astype(float),
            np.bincount(np.searchsorted(values, neg), minlength=len(values)).astype(float))


def test_auroc_interval_covers_the_true_auroc_and_rarely_excludes_chance_on_null_data() -> None:
    rng = np.random.default_rng(6)
    trials = 1000
    for n_pos, n_neg, shift, zeros in ((10, 10, 0.0, 0.0), (12, 9, 0.0, 0.6), (40, 40, 1.0, 0.0)):
        true_auc = stats.norm.cdf(shift / np.sqrt(2)) if zeros == 0 else 0.5
        covered = excluded = 0
        for _ in range(trials):
            pos = rng.normal(shift, 1, n_pos) * (rng.random(n_pos) >= zeros)  # zeros: a sparse feature, many ties
            neg = rng.normal(0, 1, n_neg) * (rng.random(n_neg) >= zeros)
            lo, hi = auroc_interval(*_hist(pos, neg))
            covered += lo <= true_auc <= hi
            excluded += not lo <= 0.5 <= hi
        assert 0.92 <= covered / trials <= 0.99, (n_pos, n_neg, shift, covered)
        if shift == 0:
            assert excluded / trials <= 0.07, (n_pos, n_neg, excluded)


def test_auroc_interval_at_perfect_separation_needs_enough_prompts_to_exclude_chance() -> None:
    two = auroc_interval(np.array([0.0, 2.0]), np.array([2.0, 0.0]))  # 2 vs 2, exact Mann-Whitney p = 1/3
    ten = auroc_interval(np.array([0.0, 10.0]), np.array([10.0, 0.0]))  # 10 vs 10, p < 1e-4
    assert two[0] < 0.5 < two[1] == 1.0
    assert 0.5 < ten[0] < 1.0 == ten[1]
    flipped = auroc_interval(np.array([10.0, 0.0]), np.array([0.0, 10.0]))  # AUROC 0: the mirror image
    assert flipped == pytest.approx((1 - ten[1], 1 - ten[0]))
    assert hanley_mcneil_score_interval(0.5, 20, 20)[0] < 0.5 < hanley_mcneil_score_interval(0.5, 20, 20)[1]


def test_auroc_interval_widens_with_the_design_effect_of_token_rows() -> None:
    pos, neg = _hist(np.arange(30.0) + 10, np.arange(30.0))
    lo1, hi1 = auroc_interval(pos, neg)
    lo3, hi3 = auroc_interval(pos, neg, design_effect=3.0)
    assert lo3 < lo1 < hi1 < hi3
    from scipy.special import logit

    assert logit(hi3) - logit(lo3) == pytest.approx(np.sqrt(3) * (logit(hi1) - logit(lo1)))


def test_prompts_needed_for_r_matches_cohens_table_and_the_fisher_formula() -> None:
    assert prompts_needed_for_r(0.3) == 85 and prompts_needed_for_r(0.1) == 783  # Cohen (1988), Table 3.4.1
    by_hand = ((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / np.arctanh(0.66)) ** 2 + 3
    assert prompts_needed_for_r(0.66) == int(np.ceil(by_hand)) == 16
    assert prompts_needed_for_r(-0.37) == prompts_needed_for_r(0.37) == 56
    assert prompts_needed_for_r(0.0) is None and prompts_needed_for_r(0.9999) == 4
