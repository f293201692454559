"""Is a latent exclusive to one source? Two checks from the literature, and a latent must pass both.

1. **Decoder norm.** With ``n_s = ‖W_dec[s, j]‖`` (normalised units, where every source has
   total variance 1), the share ``n_s / Σ_t n_t``; for two sources A, B the share of B is the
   relative decoder norm Δ = ‖d_B‖ / (‖d_A‖ + ‖d_B‖) of Lindsey et al. 2024 (Anthropic's
   crosscoder note): ≈ 0.5 shared, ≈ 1 B only, ≈ 0 A only. A latent is a candidate for source s
   when its share is at least ``norm_share`` (0.9, i.e. ‖d_s‖ ≥ 9 ‖d_other‖). Minder et al. 2025
   use Δ_norm = ½((‖d_B‖ − ‖d_A‖) / max(‖d_A‖, ‖d_B‖) + 1) with B-only above 0.9 and A-only below
   0.1; it is reported too (two sources), and our cut is the stricter of the two.
2. **Latent Scaling** (Minder et al. 2025). A small decoder norm on the other side can be an
   artefact of the sparsity loss: the other source may still carry the latent's direction, in
   its reconstruction error (Complete Shrinkage) or spread over other latents (Latent
   Decoupling). With v = d_j^s (the decoder of the candidate source s) and f_j the latent's
   activation, β for a target y is the closed-form least-squares scale
   ``β = Σ_i f_ij ⟨v, y_i⟩ / (‖v‖² Σ_i f_ij²)``, fitted for each side o on
   - the error target ``ε_o = x_o − x̂_o + f_j d_j^o`` (the error with j's own contribution added back), and
   - the reconstruction target ``x̂_o``;
   ``ν^ε = β^ε_other / β^ε_s`` and ``ν^r = β^r_other / β^r_s`` (the largest over the other sources).
   A truly exclusive latent has both near 0; a latent passes when both are below ``max_nu``.
   The paper ranks latents by ν rather than fixing one cut; 0.3 is this tool's default.

β is fitted on held-out tokens, never on the tokens the crosscoder was trained on, and only
latents active on at least ``min_active`` held-out tokens are scaled. Every number here is
``correlational`` (measured on activations, no intervention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from interp_agent.core.crosscoder.model import BatchTopKCrossCoder, latent_ids
from interp_agent.core.errors import ValidationError


@dataclass(frozen=True, slots=True)
class ExclusivityConfig:
    """Cut-offs of the two checks."""

    norm_share: float = 0.9
    """A latent is a decoder-norm candidate for source s when ‖d_s‖ / Σ‖d_t‖ is at least this."""
    max_nu: float = 0.3
    """Latent Scaling passes when ν^ε and ν^r are both below this."""
    min_active: int = 10
    """Held-out tokens a latent must be active on to be scaled."""

    def __post_init__(self) -> None:
        if not 0.5 < self.norm_share < 1:
            raise ValidationError(f"norm_share must be in (0.5, 1), got {self.norm_share}")
        if not self.max_nu > 0:
            raise ValidationError(f"max_nu must be positive, got {self.max_nu}")
        if self.min_active < 1:
            raise ValidationError(f"min_active must be at least 1, got {self.min_active}")


@torch.no_grad()
def _sums(model: BatchTopKCrossCoder, acts_NSD: np.ndarray, chunk: int = 4096) -> dict[str, torch.Tensor]:
    """Per latent, Σ f², count active, and per source o: Fᵀ(x_o − x̂_o) and Fᵀ x̂_o ([S, m, d]), normalised units."""
    S, d, m = model.shape.n_sources, model.shape.d, model.shape.latent_dim
    out = {"f2": torch.zeros(m, dtype=torch.float64), "n_active": torch.zeros(m, dtype=torch.long),
           "FtE": torch.zeros(S, m, d, dtype=torch.float64), "FtR": torch.zeros(S, m, d, dtype=torch.float64)}
    for i in range(0, len(acts_NSD), chunk):
        x = torch.as_tensor(np.asarray(acts_NSD[i:i + chunk], dtype=np.float32))
        xn = model.normalise(x)
        f = model.encode(x)
        recon = model.decode_normalised(f)
        fd = f.double()
        out["f2"] += fd.pow(2).sum(0)
        out["n_active"] += (f > 0).sum(0)
        out["FtE"] += torch.einsum("bm,bsd->smd", fd, (xn - recon).double())
        out["FtR"] += torch.einsum("bm,bsd->smd", fd, recon.double())
    return out


@torch.no_grad()
def latent_scaling_betas(model: BatchTopKCrossCoder, acts_NSD: np.ndarray) -> dict[str, np.ndarray]:
    """β of every latent, for each vector source s and target side o: ``error`` and ``reconstruction`` [S, S, m].

    ``beta[kind][s, o, j]`` scales latent j's source-s decoder vector to fit side o's target; NaN where
    the latent never fires on ``acts_NSD``. Also ``n_active`` [m].
    """
    sums = _sums(model, acts_NSD)
    D_SMD = model.decoder.weight.double()
    f2 = sums["f2"]
    norm2_SM = D_SMD.pow(2).sum(2)
    S = model.shape.n_sources
    betas = {kind: np.full((S, S, model.shape.latent_dim), np.nan) for kind in ("error", "reconstruction")}
    for s in range(S):
        denominator = norm2_SM[s] * f2
        ok = denominator > 0
        for o in range(S):
            own = f2 * (D_SMD[s] * D_SMD[o]).sum(1)  # Σ_i f_ij² ⟨d_j^s, d_j^o⟩: j's own contribution on side o
            err = (sums["FtE"][o] * D_SMD[s]).sum(1) + own
            rec = (sums["FtR"][o] * D_SMD[s]).sum(1)
            betas["error"][s, o, ok.numpy()] = (err[ok] / denominator[ok]).numpy()
            betas["reconstruction"][s, o, ok.numpy()] = (rec[ok] / denominator[ok]).numpy()
    return {**betas, "n_active": sums["n_active"].numpy()}


def decoder_norms(model: BatchTopKCrossCoder) -> np.ndarray:
    """‖W_dec[s, j]‖ [S, m], normalised units."""
    return model.decoder.weight.detach().norm(dim=2).double().numpy()


def exclusivity_table(
    model: BatchTopKCrossCoder, held_out_NSD: np.ndarray, source_names: list[str],
    config: ExclusivityConfig | None = None, *, feature_ids: list[str] | None = None,
) -> dict[str, Any]:
    """Both checks for every latent on held-out tokens; which it passed, and ``exclusive_to`` when it passed both."""
    config = config or ExclusivityConfig()
    norms_SM = decoder_norms(model)
    share_SM = norms_SM / np.maximum(norms_SM.sum(0, keepdims=True), 1e-12)
    betas = latent_scaling_betas(model, held_out_NSD)
    ids = feature_ids or latent_ids(model.shape.latent_dim)
    rows = [_latent_row(j, norms_SM, share_SM, betas, source_names, config, ids[j])
            for j in range(model.shape.latent_dim)]
    exclusive = {name: sum(r["exclusive_to"] == name for r in rows) for name in source_names}
    norm_only = {name: sum(r["candidate_source"] == name and r["exclusive_to"] is None for r in rows)
                 for name in source_names}
    return {
        "config": {"norm_share": config.norm_share, "max_nu": config.max_nu, "min_active": config.min_active},
        "sources": source_names,
        "n_held_out_tokens": int(len(held_out_NSD)),
        "summary": {"exclusive": exclusive, "decoder_norm_only": norm_only,
                    "shared": sum(r["tag"] == "shared" for r in rows)},
        "latents": rows,
        "provenance": "correlational",
        "notes": ["decoder norms are in the crosscoder's normalised units (each source's total variance 1)",
                  "β of Latent Scaling is fitted on held-out tokens the crosscoder was not trained on"],
    }


def _ratio(num: float, den: float) -> float | None:
    if not np.isfinite(num) or not np.isfinite(den) or abs(den) < 1e-12:
        return None
    return float(num / den)


def _latent_row(
    j: int, norms_SM: np.ndarray, share_SM: np.ndarray, betas: dict[str, np.ndarray], names: list[str],
    config: ExclusivityConfig, feature_id: str,
) -> dict[str, Any]:
    S = len(names)
    s = int(np.argmax(share_SM[:, j]))
    norm_pass = bool(share_SM[s, j] >= config.norm_share)
    n_active = int(betas["n_active"][j])
    row: dict[str, Any] = {"latent": j, "feature_id": feature_id,
                           "decoder_norm": {n: float(norms_SM[i, j]) for i, n in enumerate(names)},
                           "norm_share": {n: float(share_SM[i, j]) for i, n in enumerate(names)},
                           "n_active_held_out": n_active}
    if S == 2:
        a, b = norms_SM[0, j], norms_SM[1, j]
        row["relative_norm"] = float(b / max(a + b, 1e-12))
        row["norm_diff_minder"] = float(0.5 * ((b - a) / max(a, b, 1e-12) + 1))
    nu = {"error": None, "reconstruction": None}
    scaled = n_active >= config.min_active
    if scaled:
        for kind in nu:
            own = betas[kind][s, s, j]
            ratios = [_ratio(betas[kind][s, o, j], own) for o in range(S) if o != s]
            nu[kind] = None if any(r is None for r in ratios) else max(ratios)  # type: ignore[type-var]  # None ruled out
    ls_pass = scaled and all(v is not None and v < config.max_nu for v in nu.values())
    row.update({
        "candidate_source": names[s] if norm_pass else None,
        "nu_error": nu["error"], "nu_reconstruction": nu["reconstruction"],
        "checks": {"decoder_norm": "pass" if norm_pass else "fail",
                   "latent_scaling": "pass" if ls_pass else ("fail" if scaled else "not_run: too few active tokens")},
        "passed": [c for c, ok in (("decoder_norm", norm_pass), ("latent_scaling", ls_pass)) if ok],
        "exclusive_to": names[s] if norm_pass and ls_pass else None,
        "tag": _tag(share_SM[:, j], norm_pass, ls_pass, names[s]),
    })
    return row


def _tag(share_S: np.ndarray, norm_pass: bool, ls_pass: bool, top: str) -> str:
    if norm_pass and ls_pass:
        return f"exclusive:{top}"
    if norm_pass:
        return f"decoder_norm_only:{top}"
    even = 1.0 / len(share_S)
    return "shared" if np.all(np.abs(share_S - even) <= 0.1 * len(share_S) * even) else "other"
