"""The appear / vanish / change selection and its held-out evidence, on constructed activation arrays (synthetic)."""

from __future__ import annotations

import numpy as np
import pytest

from interp_agent.core.diffing.select import (
    DiffConfig,
    choose,
    criterion_movers,
    fire_thresholds,
    held_out_evidence,
    moments,
    weighted_auroc,
)
from interp_agent.core.errors import ValidationError
from interp_agent.core.ranking.splits import HELD_OUT, assign_splits, prompt_hashes

N_PROMPTS, TOKENS, WIDTH = 120, 10, 40


def _tokens(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic base activations (heavy-tailed noise), token->prompt map, prompt hashes and held-out mask."""
    rng = np.random.default_rng(seed)
    base = rng.standard_t(5, size=(N_PROMPTS * TOKENS, WIDTH)).astype(np.float32)
    row_prompt = np.repeat(np.arange(N_PROMPTS), TOKENS)
    hashes = prompt_hashes([f"p{i}" for i in range(N_PROMPTS)], "interp-agent")
    held = assign_splits(hashes, 0.5) == HELD_OUT
    return base, row_prompt, hashes, held


def _run(base: np.ndarray, tuned: np.ndarray, row_prompt: np.ndarray, hashes: np.ndarray, held: np.ndarray,
         config: DiffConfig) -> tuple[dict, dict]:
    held_T = held[row_prompt]
    tau = fire_thresholds(base[~held_T], tuned[~held_T], config.fire_k, False)
    sel = moments(base[~held_T], tuned[~held_T], tau)
    chosen = choose(sel, config)
    ev = held_out_evidence(base[held_T], tuned[held_T], row_prompt[held_T], hashes, chosen, sel, tau, config)
    return chosen, ev


def test_a_planted_appearing_feature_is_found_on_selection_and_confirmed_on_held_out() -> None:
    base, row_prompt, hashes, held = _tokens(0)
    rng = np.random.default_rng(1)
    base[:, 7] *= 0.05  # silent in the base model
    tuned = base + rng.normal(0, 0.05, base.shape).astype(np.float32)
    on = rng.random(len(base)) < 0.2
    tuned[on, 7] += 6.0  # fires on a fifth of the tokens in the tuned model
    chosen, ev = _run(base, tuned, row_prompt, hashes, held, DiffConfig())
    assert chosen["appear"].tolist() == [7]
    (feature,) = ev["appear"]
    assert feature["confirmed"]
    assert feature["held_out"]["rate_base"] < 0.01 < 0.15 < feature["held_out"]["rate_tuned"]
    lo, hi = feature["held_out"]["rate_change"]["ci95"]
    assert 0.1 < lo < 0.2 < hi < 0.3


def test_a_planted_vanishing_and_a_shifted_feature_are_told_apart() -> None:
    base, row_prompt, hashes, held = _tokens(2)
    rng = np.random.default_rng(3)
    tuned = base + rng.normal(0, 0.05, base.shape).astype(np.float32)
    base[:, 3] *= 0.05
    base[rng.random(len(base)) < 0.3, 3] += 5.0
    tuned[:, 3] = rng.normal(0, 0.05, len(base))  # fires in base, silent in tuned
    tuned[:, 11] += 1.0  # a mean shift of ~0.8 sd
    chosen, ev = _run(base, tuned, row_prompt, hashes, held, DiffConfig())
    assert chosen["vanish"].tolist() == [3] and ev["vanish"][0]["confirmed"]
    assert 11 in chosen["change"].tolist()
    shifted = next(e for e in ev["change"] if e["index"] == 11)
    assert shifted["confirmed"] and shifted["held_out"]["shift"]["ci95"][0] > 0.5


def test_with_no_change_nothing_is_selected_and_forced_picks_do_not_pass_held_out() -> None:
    base, row_prompt, hashes, held = _tokens(4)
    tuned = base + np.random.default_rng(5).normal(0, 0.3, base.shape).astype(np.float32)
    chosen, _ = _run(base, tuned, row_prompt, hashes, held, DiffConfig())
    assert all(len(v) == 0 for v in chosen.values())
    # thresholds at zero: the top 10 by noise are chosen anyway; held-out should not back them
    forced = DiffConfig(min_shift=1e-9, min_corr_drop=1e-9, top_k=10)
    chosen, ev = _run(base, tuned, row_prompt, hashes, held, forced)
    assert len(chosen["change"]) == 10
    assert sum(e["confirmed"] for e in ev["change"]) <= 1


def test_moments_with_unit_weights_match_the_unweighted_ones() -> None:
    base, row_prompt, hashes, held = _tokens(6)
    tuned = base * 1.5 + 0.2
    tau = fire_thresholds(base, tuned, 4.0, False)
    plain = moments(base, tuned, tau)
    weighted = moments(base, tuned, tau, np.ones((len(base), 3)))
    np.testing.assert_allclose(weighted.shift[2], plain.shift, rtol=1e-6)
    np.testing.assert_allclose(plain.corr, 1.0, atol=1e-6)
    np.testing.assert_allclose(plain.mean_tuned, base.astype(np.float64).mean(0) * 1.5 + 0.2, rtol=1e-5, atol=1e-6)


def test_weighted_auroc_with_unit_weights_is_the_plain_auroc() -> None:
    pos, neg = np.array([3.0, 2.0, 2.0, 5.0]), np.array([1.0, 2.0, 0.5])
    auc = weighted_auroc(pos, neg, np.ones((2, 4)), np.ones((2, 3)))
    expected = (sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)) / 12
    np.testing.assert_allclose(auc, [expected, expected])


def test_a_feature_that_becomes_criterion_relevant_is_a_confirmed_mover() -> None:
    rng = np.random.default_rng(7)
    n, width = 160, 12
    labels = np.arange(n) % 2 == 0
    base = rng.normal(size=(n, width))
    tuned = base + rng.normal(0, 0.1, (n, width))
    tuned[:, 5] += 2.0 * labels  # separates the classes only in the tuned model
    hashes = prompt_hashes([f"c{i}" for i in range(n)], "interp-agent")
    held = assign_splits(hashes, 0.3) == HELD_OUT
    movers = criterion_movers(base, tuned, labels, held, hashes, DiffConfig(), [f"L0:N{i}" for i in range(width)])
    assert [m["feature_id"] for m in movers] == ["L0:N5"]
    assert movers[0]["confirmed"] and movers[0]["held_out"]["auroc_tuned"] > 0.8


def test_a_config_with_rare_above_common_is_refused() -> None:
    with pytest.raises(ValidationError, match="rare_rate < common_rate"):
        DiffConfig(rare_rate=0.2, common_rate=0.1)


def test_moments_in_feature_blocks_equal_moments_in_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    from interp_agent.core.diffing import select

    base, row_prompt, _, _ = _tokens(8)
    tuned = base * 0.7 + np.random.default_rng(9).normal(0, 0.5, base.shape)
    tau = fire_thresholds(base, tuned, 4.0, False)
    whole = moments(base, tuned, tau)
    monkeypatch.setattr(select, "CHUNK", 7)
    parts = moments(base, tuned, tau, np.ones((len(base), 2)))
    for name in select.Moments.__slots__:
        np.testing.assert_allclose(getattr(parts, name)[1], getattr(whole, name), rtol=1e-9, atol=1e-12)
