"""The scipy-free distribution functions against scipy's own, over the ranges the ranking uses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

from interp_agent.core.ranking.distributions import (
    find_root,
    normal_ppf,
    regularized_beta,
    student_t_ppf,
    student_t_sf,
)


@pytest.mark.parametrize(
    ("dfs", "tolerance"),
    [([1, 2, 3, 5, 10, 30, 100], 1e-8), ([1e3, 1e4], 1e-8), ([1e5, 1e6, 1e7], 1e-7), ([1e8, 1e9], 1e-5)],
)
def test_student_t_tails_agree_with_scipy(dfs: list[float], tolerance: float) -> None:
    rng = np.random.default_rng(0)
    df = rng.choice(dfs, size=5000).astype(float)
    t = rng.standard_normal(5000) * rng.choice([1e-6, 0.01, 0.1, 1, 3, 10, 40], size=5000)
    ours, ref = student_t_sf(t, df), special.stdtr(df, -t)
    assert ours.shape == t.shape
    judged = ref > 1e-10  # far tails beyond 10^8 degrees of freedom: the normal stands in (see the module)
    rel = np.abs(ours - ref)[judged] / ref[judged]
    assert rel.max() < tolerance
    if dfs[0] <= 1e7:  # there the tails are right to the last representable digits too
        tiny = (ref > 1e-300) & ~judged
        assert np.all(np.abs(ours[tiny] - ref[tiny]) / ref[tiny] < 1e-6)


def test_student_t_sf_at_its_edges() -> None:
    assert student_t_sf(0.0, 5.0) == 0.5
    assert student_t_sf(math.inf, 5.0) == 0.0 and student_t_sf(-math.inf, 5.0) == 1.0
    np.testing.assert_allclose(student_t_sf([2.0, -2.0], [3.0, 3.0]), special.stdtr(3.0, [-2.0, 2.0]), rtol=1e-12)


def test_regularized_beta_agrees_with_scipy_on_both_sides_of_its_switch_point() -> None:
    rng = np.random.default_rng(1)
    a, b, x = rng.uniform(0.1, 50, 2000), rng.uniform(0.1, 50, 2000), rng.uniform(0, 1, 2000)
    np.testing.assert_allclose(regularized_beta(a, b, x), special.betainc(a, b, x), rtol=1e-9, atol=1e-14)
    assert regularized_beta(2.0, 3.0, 0.0) == 0.0 and regularized_beta(2.0, 3.0, 1.0) == 1.0


@pytest.mark.parametrize("df", [1, 2, 4, 9, 29, 1000, 1e6])
@pytest.mark.parametrize("q", [1e-6, 0.025, 0.3, 0.5, 0.6, 0.975, 0.999999])
def test_student_t_quantiles_agree_with_scipy(df: float, q: float) -> None:
    ref = float(special.stdtrit(df, q))
    assert student_t_ppf(q, df) == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_normal_quantiles_agree_with_scipy() -> None:
    for q in (1e-9, 0.025, 0.2, 0.5, 0.8, 0.975, 1 - 1e-9):
        assert normal_ppf(q) == pytest.approx(float(special.ndtri(q)), rel=1e-12, abs=1e-15)


def test_student_t_ppf_refuses_a_probability_outside_0_1() -> None:
    with pytest.raises(ValueError, match="0 < q < 1"):
        student_t_ppf(1.0, 3)


def test_find_root_brackets_and_refuses_an_interval_without_a_sign_change() -> None:
    assert find_root(lambda v: v * v - 2.0, 0.0, 2.0) == pytest.approx(math.sqrt(2.0), rel=1e-12)
    with pytest.raises(ValueError, match="brackets no root"):
        find_root(lambda v: v * v + 1.0, 0.0, 2.0)
