"""How good a trained SAE is, measured on held-out rows and, from a model, by splicing it in.

Reconstruction (raw activation units): MSE per element, fraction of variance unexplained
``FVU = Σ‖x − x̂‖² / Σ‖x − x̄‖²`` (x̄ the held-out mean), mean L0, and the share of dead
latents (never active on the held-out rows) and dense latents (active on more than
``DENSE_RATE`` of them).

Splicing: the model runs on held-out prompts with the SAE's reconstruction in place of the
activation at its hookpoint (every position but the first, which the SAE never saw; see
data.py). Reported: next-token cross-entropy clean, spliced and with the hookpoint
mean-ablated, KL(clean ‖ spliced) per token, and the share of the mean-ablation loss gap
the SAE recovers, ``(CE_ablated − CE_spliced) / (CE_ablated − CE_clean)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

DENSE_RATE = 0.1


@torch.no_grad()
def reconstruction_metrics(
    reconstruct: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    batches: Iterable[np.ndarray],
    d_sae: int,
    *,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Held-out reconstruction metrics.

    Args:
        reconstruct: ``x [n, d_in] -> (x̂ [n, d_in], latents [n, d_sae])`` in raw units.
        batches: held-out rows, float32 ``[n, d_in]`` arrays.
        d_sae: number of latents.
    """
    n = 0
    sse = 0.0
    s1: torch.Tensor | None = None
    s2 = 0.0
    l0_sum = 0.0
    fires = torch.zeros(d_sae, dtype=torch.float64, device=device)
    for batch in batches:
        x = torch.as_tensor(batch, device=device, dtype=torch.float32)
        recon, z = reconstruct(x)
        xd = x.double()
        sse += float((xd - recon.double()).pow(2).sum())
        s1 = xd.sum(0) if s1 is None else s1 + xd.sum(0)
        s2 += float(xd.pow(2).sum())
        active = z != 0
        l0_sum += float(active.sum())
        fires += active.sum(0).double()
        n += x.shape[0]
    if n == 0 or s1 is None:
        raise ValueError("no held-out rows to measure on")
    total_var = s2 - float(s1.pow(2).sum()) / n
    rate = (fires / n).cpu().numpy()
    d_in = s1.shape[0]
    return {
        "n_rows": n,
        "mse": sse / (n * d_in),
        "fvu": sse / total_var if total_var > 0 else None,
        "l0": l0_sum / n,
        "dead_fraction": float((rate == 0).mean()),
        "dense_fraction": float((rate > DENSE_RATE).mean()),
        "firing_rate_quantiles": {q: float(np.quantile(rate, float(q))) for q in ("0.1", "0.5", "0.9", "0.99")},
        "provenance": "held-out rows",
    }


@torch.no_grad()
def splice_metrics(
    loaded: Any,
    texts: Sequence[str],
    hookpoint: str,
    reconstruct: Callable[[torch.Tensor], torch.Tensor],
    mean_activation: torch.Tensor,
    *,
    batch_size: int = 8,
    max_length: int = 128,
) -> dict[str, Any]:
    """Next-token loss and KL with the SAE spliced in at ``hookpoint``, on ``texts``.

    Args:
        reconstruct: ``x [n, d_in] -> x̂ [n, d_in]`` in raw units.
        mean_activation: [d_in] mean activation, for the mean-ablation baseline.
    """
    from interp_agent.core.models.hooks import edit

    model, tok = loaded.model, loaded.tokenizer
    device = next(model.parameters()).device
    mean_activation = mean_activation.to(device)
    totals = _SpliceTotals()

    def spliced(acts: torch.Tensor) -> torch.Tensor:
        out = acts.clone()
        flat = acts[:, 1:].reshape(-1, acts.shape[-1]).float()
        out[:, 1:] = reconstruct(flat).reshape(acts[:, 1:].shape).to(acts.dtype)
        return out

    def ablated(acts: torch.Tensor) -> torch.Tensor:
        out = acts.clone()
        out[:, 1:] = mean_activation.to(acts.dtype)
        return out

    def logprobs(
        ids: torch.Tensor, mask: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor] | None
    ) -> torch.Tensor:
        if fn is None:
            return model(input_ids=ids, attention_mask=mask).logits.float().log_softmax(-1)
        with edit(model, hookpoint, fn):
            return model(input_ids=ids, attention_mask=mask).logits.float().log_softmax(-1)

    for i in range(0, len(texts), batch_size):
        enc = tok(
            list(texts[i:i + batch_size]), return_tensors="pt", padding=True, truncation=True, max_length=max_length
        )
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        if ids.shape[1] < 3:
            continue
        clean, spl, abl = logprobs(ids, mask, None), logprobs(ids, mask, spliced), logprobs(ids, mask, ablated)
        totals.add(ids, mask, clean, spl, abl)
    return totals.metrics(len(texts))


@dataclass(slots=True)
class _SpliceTotals:
    """Running sums over batches of next-token losses (clean, spliced, mean-ablated) and of KL(clean ‖ spliced)."""

    nll: dict[str, float] = field(default_factory=lambda: {"clean": 0.0, "spliced": 0.0, "ablated": 0.0})
    """Summed negative log-likelihood of the predicted tokens, per condition."""
    kl: float = 0.0
    """Summed per-token KL(clean ‖ spliced)."""
    n_pred: int = 0
    """Predictions counted in ``nll``."""
    n_kl: int = 0
    """Positions counted in ``kl``."""

    def add(
        self, ids: torch.Tensor, mask: torch.Tensor, clean: torch.Tensor, spl: torch.Tensor, abl: torch.Tensor
    ) -> None:
        """Add one batch: token ids and mask [batch, T], log-probabilities [batch, T, vocab] per condition."""
        # predictions from positions 1..T-2 of tokens 2..T-1 (position 0 is never edited)
        target = ids[:, 2:]
        valid = mask[:, 2:].bool()
        for name, lp in (("clean", clean), ("spliced", spl), ("ablated", abl)):
            nll = -lp[:, 1:-1].gather(-1, target[..., None]).squeeze(-1)
            self.nll[name] += float(nll[valid].sum())
        self.n_pred += int(valid.sum())
        kl_mask = mask[:, 1:].bool()
        kl = (clean[:, 1:].exp() * (clean[:, 1:] - spl[:, 1:])).sum(-1)
        self.kl += float(kl[kl_mask].sum())
        self.n_kl += int(kl_mask.sum())

    def metrics(self, n_prompts: int) -> dict[str, Any]:
        """The splice metrics of the batches added, or a ``skipped`` note when no prediction was made."""
        if self.n_pred == 0:
            return {"skipped": "no held-out prompt has 3 or more tokens"}
        ce = {k: self.nll[k] / self.n_pred for k in ("clean", "spliced", "ablated")}
        gap = ce["ablated"] - ce["clean"]
        return {
            "n_prompts": n_prompts,
            "n_predictions": self.n_pred,
            "ce_loss_clean": ce["clean"],
            "ce_loss_spliced": ce["spliced"],
            "ce_loss_mean_ablated": ce["ablated"],
            "ce_loss_delta": ce["spliced"] - ce["clean"],
            "loss_recovered": (ce["ablated"] - ce["spliced"]) / gap if gap > 0 else None,
            "kl_clean_to_spliced": self.kl / self.n_kl,
            "positions": "all but the first",
            "provenance": "interventional: held-out prompts, SAE reconstruction spliced into the forward pass",
        }
