"""The behaviour measures on constructed log-likelihoods (synthetic numbers)."""

from __future__ import annotations

import numpy as np

from interp_agent.core.diffing.behaviour import behaviour_change, pair_key, paired_change
from interp_agent.core.formats.prompts import ScoredPrompt


def _pack(n_pairs: int) -> list[ScoredPrompt]:
    return [ScoredPrompt(f"pack-{tag}-{i:02d}", f"text {tag} {i}", float(tag == "pos"))
            for i in range(n_pairs) for tag in ("pos", "neg")]


def test_matched_pairs_are_found_by_their_ids() -> None:
    assert pair_key("negative_sentiment-pos-07") == pair_key("negative_sentiment-neg-07") == "negative_sentiment-07"
    assert pair_key("probe-14") is None


def test_a_shift_shared_by_each_pair_is_seen_by_the_pairs_and_not_hidden_by_prompt_spread() -> None:
    rng = np.random.default_rng(0)
    prompts = _pack(30)
    base = rng.normal(-5, 1, 60)
    spread = np.repeat(rng.normal(0, 1.0, 30), 2)  # each pair's own change, shared by its two prompts
    tuned = base + spread + 0.2 * np.tile([1.0, 0.0], 30)  # complaints gain 0.2 nats/token more
    paired = paired_change(base, tuned, prompts)
    assert paired is not None and paired["n_pairs"] == 30 and paired["moved"]
    assert abs(paired["preference_shift"]["mean"] - 0.2) < 1e-9
    unpaired = behaviour_change(base, tuned, prompts, criterion="c")
    assert abs(unpaired["preference_shift"]["mean"] - 0.2) < 1e-9
    lo, hi = unpaired["preference_shift"]["ci95"]
    assert hi - lo > 10 * (paired["preference_shift"]["ci95"][1] - paired["preference_shift"]["ci95"][0])


def test_with_no_change_the_behaviour_has_not_moved() -> None:
    prompts = _pack(20)
    base = np.random.default_rng(1).normal(-5, 1, 40)
    tuned = base + np.random.default_rng(2).normal(0, 1e-3, 40)
    assert not behaviour_change(base, tuned, prompts, criterion="c")["moved"]
    paired = paired_change(base, tuned, prompts)
    assert paired is not None and abs(paired["preference_shift"]["mean"]) < 1e-3
    assert paired_change(base[:3], tuned[:3], prompts[:3]) is None
