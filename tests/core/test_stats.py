"""Statistics from sufficient statistics agree with reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from interp_agent.core.ranking.splits import assign_splits, poisson_bootstrap_weights, prompt_hashes
from interp_agent.core.ranking.stats import (
    benjamini_hochberg,
    binned_auroc,
    pearson_from_sums,
    pearson_p_value,
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
    r = pearson_from_sums(1000, np.array([x.sum()]), np.array([(x * x).sum()]), y.sum(), (y * y).sum(), np.array([x @ y]))
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
