"""Behaviour of a model (base or organism) on prompts: P(target) next, top-1 rate, and KL between two models.

Every mean comes with a Student-t 95% interval over prompts; a change between two models on
the same prompts is a paired one (the interval of the per-prompt differences).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from interp_agent.core.errors import ValidationError
from interp_agent.core.ranking.stats import t_interval


def target_token_id(tokenizer: Any, target: str) -> int:
    """The id of ``target``, which must be exactly one token (tokenised as written, leading space included).

    Raises:
        ValidationError: it is not one token.
    """
    ids = list(tokenizer(target, add_special_tokens=False)["input_ids"])
    if len(ids) != 1:
        raise ValidationError(f"target {target!r} is {len(ids)} tokens ({ids}), not one",
                              hint="choose a word that is a single token, with its leading space (' banana')")
    return int(ids[0])


def next_token_logprobs(loaded: Any, texts: Sequence[str], batch_size: int = 16) -> torch.Tensor:
    """float32 [n, vocab]: log-probabilities of the next token after each text (its last real token)."""
    model, tok = loaded.model, loaded.tokenizer
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tok(list(texts[start:start + batch_size]), return_tensors="pt", padding=True)
            enc = {k: v.to(model.device) for k, v in enc.items()}
            rows = torch.arange(enc["input_ids"].shape[0], device=model.device)
            last = enc["attention_mask"].sum(1) - 1
            hidden = model.base_model(**enc).last_hidden_state[rows, last]
            out.append(torch.log_softmax(model.get_output_embeddings()(hidden).float(), -1).cpu())
    return torch.cat(out) if out else torch.zeros(0)


def mean_interval(values: np.ndarray | Sequence[float], bounds: tuple[float, float] | None = None) -> dict[str, Any]:
    """``{mean, ci95, sd, n}`` of ``values`` (Student-t interval; None below two values).

    ``bounds`` clips the interval to the range the quantity can take (a probability's [0, 1]);
    the mean itself always lies inside it, so clipping only drops impossible values.
    """
    v = np.asarray(values, dtype=np.float64)
    sd = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    mean = float(v.mean()) if len(v) else float("nan")
    ci = t_interval(mean, sd, len(v))
    if ci is not None and bounds is not None:
        ci = (max(ci[0], bounds[0]), min(ci[1], bounds[1]))
    return {"mean": mean, "ci95": list(ci) if ci else None, "sd": sd, "n": len(v)}


PROBABILITY = (0.0, 1.0)
"""Bounds of a probability."""
CHANGE = (-1.0, 1.0)
"""Bounds of a change of probability."""
NATS = (0.0, float("inf"))
"""Bounds of a KL divergence."""


def kl_per_prompt(base_NV: torch.Tensor, other_NV: torch.Tensor) -> np.ndarray:
    """KL(base || other) of two next-token log-probability tables, per prompt, in nats."""
    return (base_NV.exp() * (base_NV - other_NV)).sum(-1).clamp_min(0).double().numpy()


def behaviour(logprobs_NV: torch.Tensor, target_id: int) -> dict[str, Any]:
    """P(target) next (mean and interval) and the share of prompts whose top-1 next token is the target."""
    p = logprobs_NV[:, target_id].exp().double().numpy()
    top1 = (logprobs_NV.argmax(-1) == target_id).double().numpy()
    return {"p_target": mean_interval(p, PROBABILITY), "top1_rate": float(top1.mean()) if len(top1) else float("nan")}


def compare(base_NV: torch.Tensor, organism_NV: torch.Tensor, target_id: int) -> dict[str, Any]:
    """Base and organism on the same prompts: each one's behaviour, the paired change of P(target), and KL."""
    change = organism_NV[:, target_id].exp() - base_NV[:, target_id].exp()
    kl = kl_per_prompt(base_NV, organism_NV)
    return {"base": behaviour(base_NV, target_id), "organism": behaviour(organism_NV, target_id),
            "p_target_change": mean_interval(change.double().numpy(), CHANGE),
            "kl_base_to_organism": mean_interval(kl, NATS) | {"max": float(kl.max()) if len(kl) else float("nan")}}
