"""Field-standard baselines, measured beside our features as AxBench (Wu et al., 2025) reports them.

- Detection: held-out AUROC of (i) a difference-of-means direction and (ii) a ridge
  logistic-regression probe, both fitted on the calibration split only, on activations at a
  hookpoint pooled as ``inspect`` pooled them.
- Steering by prompting: an instruction prepended to each held-out prompt, and the paired
  change of the next-token probability of the target it causes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from interp_agent.core.criteria.probe import PROBE_L2, ProbePooling, pooled_activations
from interp_agent.core.criteria.scorers import auroc, fit_logistic
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.organisms.measure import CHANGE, PROBABILITY, mean_interval, next_token_logprobs
from interp_agent.core.ranking.stats import hanley_mcneil_score_interval

ON_INSTRUCTION = "Always mention the word '{word}'.\n"
"""Prompting baseline toward the target: prepended to held-out prompts where the behaviour is absent."""
OFF_INSTRUCTION = "Never mention the word '{word}'.\n"
"""Prompting baseline against the target: prepended to held-out prompts where the behaviour shows."""


def _labels(prompts: Sequence[ScoredPrompt]) -> np.ndarray:
    return np.array([p.criterion_score > 0.5 for p in prompts])


def auroc_with_interval(scores: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """``{auroc, ci95, n_positive, n_negative}`` (Hanley-McNeil score interval)."""
    value = auroc(scores, labels)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    ci = hanley_mcneil_score_interval(value, n_pos, n_neg) if np.isfinite(value) and n_pos and n_neg else None
    return {"auroc": value, "ci95": list(ci) if ci else None, "n_positive": n_pos, "n_negative": n_neg}


def detection_baselines(
    loaded: Any, hookpoint: str, calibration: Sequence[ScoredPrompt], held_out: Sequence[ScoredPrompt],
    ours: dict[str, np.ndarray] | None = None, pooling: ProbePooling = "mean",
) -> dict[str, Any]:
    """Held-out AUROC of a difference-of-means direction and of a logistic probe, both fitted on calibration.

    Args:
        ours: our features at ``hookpoint`` as vectors (a basis vector for a dimension, the saved vector
            for a direction), read from the same activations so that every AUROC is measured alike.
        pooling: how each prompt's tokens are pooled (as inspect pooled them: ``mean`` skips the first).
    """
    acts = pooled_activations(loaded.model, loaded.tokenizer, [p.text for p in [*calibration, *held_out]],
                              hookpoint, pooling=pooling)
    cal_x, held_x = acts[: len(calibration)], acts[len(calibration):]
    cal_y, held_y = _labels(calibration), _labels(held_out)
    diff = cal_x[cal_y].mean(0) - cal_x[~cal_y].mean(0)
    mu, sd = cal_x.mean(0), cal_x.std(0) + 1e-6
    w, b = fit_logistic((cal_x - mu) / sd, cal_y, PROBE_L2)
    return {
        "provenance": "correlational",
        "hookpoint": hookpoint, "pooling": pooling,
        "fitted_on": f"calibration split ({len(calibration)} prompts)",
        "measured_on": f"held-out split ({len(held_out)} prompts)",
        "difference_of_means": auroc_with_interval(held_x @ diff, held_y),
        "logistic_probe": auroc_with_interval((held_x - mu) / sd @ w + b, held_y)
        | {"l2": PROBE_L2, "standardised": "with calibration means and deviations"},
        "ours": {fid: auroc_with_interval(held_x @ u, held_y) for fid, u in (ours or {}).items()},
        "interval": "Hanley-McNeil score interval, 95%",
    }


def prompting_baseline(loaded: Any, held_out: Sequence[ScoredPrompt], target: str, target_id: int) -> dict[str, Any]:
    """Paired change of P(target) next when an instruction is prepended: toward it on held-out prompts without
    the trigger, against it on held-out trigger prompts."""
    word = target.strip()
    labels = _labels(held_out)
    out: dict[str, Any] = {"provenance": "interventional (prompting)", "target": target}
    for name, template, mask, on in (("on", ON_INSTRUCTION, ~labels, "held_out_negatives"),
                                     ("off", OFF_INSTRUCTION, labels, "held_out_positives")):
        texts = [p.text for p, m in zip(held_out, mask, strict=True) if m]
        instruction = template.format(word=word)
        plain = next_token_logprobs(loaded, texts)[:, target_id].exp().double().numpy()
        prompted = next_token_logprobs(loaded, [instruction + t for t in texts])[:, target_id].exp().double().numpy()
        out[name] = {"instruction": instruction, "measured_on": on, "p_target_plain": mean_interval(plain, PROBABILITY),
                     "p_target_prompted": mean_interval(prompted, PROBABILITY),
                     "change": mean_interval(prompted - plain, CHANGE)}
    return out
