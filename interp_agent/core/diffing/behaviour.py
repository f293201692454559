"""The behaviour a fine-tune moves, measured on a criterion's held-out prompts: how likely each text is.

A model's log-likelihood of a text is the mean log-probability of each of its tokens given the
ones before (the first token, having no context, is not scored). A fine-tune on complaints
should make complaints more likely than it makes their matched non-complaints; so the
behaviour change is the paired change ``delta = ll_tuned - ll_base`` of each held-out prompt,
averaged per class, and the *preference shift* is the mean delta of criterion-positive prompts
minus that of criterion-negative ones (nats per token), with a seeded bootstrap 95% interval
over prompts. The fine-tune is the intervention, so these numbers are ``interventional``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from interp_agent.core.criteria.packs import binary_labels
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.organisms.measure import mean_interval

BOOTSTRAP = 2000
"""Bootstrap resamples of the preference shift's interval."""


def text_logliks(loaded: Any, texts: Sequence[str], *, max_length: int = 48, batch_size: int = 16) -> np.ndarray:
    """float64 [n]: mean log-probability per predicted token of each text (truncated to ``max_length``)."""
    model, tok = loaded.model, loaded.tokenizer
    device = next(model.parameters()).device
    out: list[np.ndarray] = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tok(list(texts[start:start + batch_size]), return_tensors="pt", padding=True, truncation=True,
                      max_length=max_length)
            ids_BT, mask_BT = enc["input_ids"].to(device), enc["attention_mask"].to(device)
            logits_BTV = model(input_ids=ids_BT, attention_mask=mask_BT, use_cache=False).logits.float()
            lp_BT = torch.log_softmax(logits_BTV[:, :-1], -1).gather(-1, ids_BT[:, 1:, None])[..., 0]
            keep_BT = mask_BT[:, 1:].float()
            out.append(((lp_BT * keep_BT).sum(1) / keep_BT.sum(1).clamp_min(1)).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def bootstrap_interval(values: np.ndarray, labels: np.ndarray, seed: int, resamples: int = BOOTSTRAP
                       ) -> list[float] | None:
    """95% percentile interval of mean(values[labels]) - mean(values[~labels]), resampling each class."""
    pos, neg = values[labels], values[~labels]
    if len(pos) < 2 or len(neg) < 2:
        return None
    rng = np.random.default_rng(seed)
    stats = (rng.choice(pos, (resamples, len(pos))).mean(1) - rng.choice(neg, (resamples, len(neg))).mean(1))
    return [float(np.quantile(stats, 0.025)), float(np.quantile(stats, 0.975))]


def behaviour_change(base_ll: np.ndarray, tuned_ll: np.ndarray, prompts: Sequence[ScoredPrompt], *,
                     criterion: str, seed: int = 0) -> dict[str, Any]:
    """The held-out behaviour block: per-class log-likelihoods, their paired change, and the preference shift."""
    labels = binary_labels(prompts)
    delta = np.asarray(tuned_ll, dtype=np.float64) - np.asarray(base_ll, dtype=np.float64)
    shift = float(delta[labels].mean() - delta[~labels].mean()) if labels.any() and (~labels).any() else float("nan")
    ci = bootstrap_interval(delta, labels, seed)
    return {
        "provenance": "interventional",
        "criterion": criterion,
        "measure": "mean log-probability per token of each held-out criterion prompt (nats), base vs tuned",
        "n_positive": int(labels.sum()), "n_negative": int((~labels).sum()),
        "positive": {"base": mean_interval(base_ll[labels]), "tuned": mean_interval(tuned_ll[labels]),
                     "change": mean_interval(delta[labels])},
        "negative": {"base": mean_interval(base_ll[~labels]), "tuned": mean_interval(tuned_ll[~labels]),
                     "change": mean_interval(delta[~labels])},
        "preference_shift": {"mean": shift, "ci95": ci, "method": f"bootstrap over prompts ({BOOTSTRAP}, seed {seed})",
                             "meaning": "change of log-likelihood of criterion-positive prompts minus that of "
                                        "criterion-negative ones; > 0: the tuned model prefers the criterion's texts"},
        "moved": bool(ci is not None and (ci[0] > 0 or ci[1] < 0)),
    }


def pair_key(prompt_id: str) -> str | None:
    """The pair of a matched pack prompt (``…-pos-07`` and ``…-neg-07`` share ``…-07``), else None."""
    for tag in ("-pos-", "-neg-"):
        if tag in prompt_id:
            return prompt_id.replace(tag, "-", 1)
    return None


def paired_change(base_ll: np.ndarray, tuned_ll: np.ndarray, prompts: Sequence[ScoredPrompt]) -> dict[str, Any] | None:
    """The preference shift over matched (positive, negative) pairs: mean of delta_pos - delta_neg per pair.

    Only for sets whose ids pair up as ``…-pos-N`` / ``…-neg-N`` (the built-in packs); None otherwise.
    Pairs share a topic and a length, so the paired difference removes most of the prompt-to-prompt spread.
    """
    labels = binary_labels(prompts)
    delta = np.asarray(tuned_ll, dtype=np.float64) - np.asarray(base_ll, dtype=np.float64)
    sides: dict[str, dict[bool, float]] = {}
    for p, label, d in zip(prompts, labels, delta, strict=True):
        key = pair_key(p.prompt_id)
        if key is not None:
            sides.setdefault(key, {})[bool(label)] = float(d)
    diffs = [s[True] - s[False] for s in sides.values() if len(s) == 2]
    if len(diffs) < 2:
        return None
    return {"provenance": "interventional", "n_pairs": len(diffs),
            "preference_shift": mean_interval(diffs) | {"method": "Student-t over matched pairs"},
            "moved": bool((ci := mean_interval(diffs)["ci95"]) and (ci[0] > 0 or ci[1] < 0))}
