"""Intervention targets: a feature id becomes a unit direction at a hookpoint, with its calibration statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from interp_agent.core.errors import ValidationError
from interp_agent.core.ids import match_feature_id


@dataclass(frozen=True, slots=True)
class SaeLatent:
    """One SAE latent: how to read it from the activation and what it writes back."""

    w_enc: np.ndarray
    """Encoder column [width]."""
    b_enc: float
    """Encoder bias."""
    b_dec: np.ndarray
    """Decoder bias [width], subtracted before encoding."""
    decoder: np.ndarray
    """Decoder row [width] (not normalised): the latent writes ``activation * decoder``."""
    threshold: float | None = None
    """JumpReLU threshold, else None."""

    def activation(self, acts_ND: np.ndarray) -> np.ndarray:
        """The latent's activation per row."""
        pre = (acts_ND - self.b_dec) @ self.w_enc + self.b_enc
        return np.where(pre > (self.threshold or 0.0), pre, 0.0)


@dataclass(frozen=True, slots=True)
class Target:
    """One feature to intervene on."""

    feature_id: str
    """The feature's id in the records and reports."""
    hookpoint: str
    """Where it lives (TransformerLens name)."""
    direction: np.ndarray
    """Unit vector [width] at the hookpoint."""
    kind: str
    """dim, neuron or direction."""
    index: int | None = None
    """Basis index for dims and neurons."""
    scale: float | None = None
    """Natural size of the feature (a learned direction's own norm); None: its calibration std."""
    sae: SaeLatent | None = None
    """For an SAE latent: encoder and decoder (edits act on the latent, not on a projection)."""

    def __post_init__(self) -> None:
        norm = float(np.linalg.norm(self.direction))
        if not np.isfinite(norm) or abs(norm - 1.0) > 1e-4:
            raise ValidationError(f"target {self.feature_id}: direction must be a unit vector, has norm {norm}")


def parse_target(
    feature_id: str,
    width_of: dict[str, int],
    directions: dict[str, tuple[str, np.ndarray]] | None = None,
    saes: dict[int, Any] | None = None,
) -> Target:
    """Turn a feature id into a Target.

    Args:
        feature_id: ``L{layer}:D{dim}`` (residual dimension at blocks.L.hook_resid_post; also
            ``L{layer}:{resid_pre|attn_out|mlp_out}:D{dim}``, see ``interp_agent.core.ids``),
            ``L{layer}:N{i}`` (MLP neuron at blocks.L.mlp.hook_post), ``direction:NAME`` or
            ``SAE:L{layer}:F{i}`` (a latent of the SAE given for that layer).
        width_of: activation width per hookpoint (to size basis vectors).
        directions: learned directions by feature id -> (hookpoint, vector).
        saes: SAEs (``interp_agent.core.sae.SaeWeights``) by layer.
    """
    fid = match_feature_id(feature_id)
    if fid is not None and fid.kind == "sae" and fid.layer is not None and fid.index is not None:
        layer, i = fid.layer, fid.index
        sae = (saes or {}).get(layer)
        if sae is None:
            raise ValidationError(f"{feature_id}: no SAE for layer {layer}",
                                  hint="pass the SAE Lens folder with --sae DIR")
        if i >= sae.W_dec.shape[0]:
            raise ValidationError(f"{feature_id}: latent {i} is out of range (d_sae {sae.W_dec.shape[0]})")
        row = sae.W_dec[i]
        latent = SaeLatent(w_enc=sae.W_enc[:, i], b_enc=float(sae.b_enc[i]), b_dec=sae.b_dec, decoder=row,
                           threshold=float(sae.threshold[i]) if sae.threshold is not None else None)
        return Target(feature_id, sae.hookpoint, row / np.linalg.norm(row), "sae", index=i, sae=latent)
    point = fid.hookpoint if fid is not None else None
    if fid is not None and fid.kind in ("dim", "neuron") and point is not None and fid.index is not None:
        hook, index, kind = point.name, fid.index, fid.kind
    elif fid is not None and fid.kind == "direction":
        if not directions or feature_id not in directions:
            raise ValidationError(
                f"{feature_id}: no vector for this direction",
                hint="directions come with the inspect run that found them (directions.npz in its output)",
            )
        hook, vector = directions[feature_id]
        vector = np.asarray(vector, dtype=np.float64)
        norm = float(np.linalg.norm(vector))
        return Target(feature_id, hook, vector / norm, "direction", scale=norm)
    else:
        raise ValidationError(
            f"cannot intervene on {feature_id!r}",
            hint="use L{layer}:D{dim} (residual dimension), L{layer}:N{i} (MLP neuron) or direction:NAME",
        )
    width = width_of.get(hook)
    if width is None:
        raise ValidationError(f"{feature_id}: hookpoint {hook} does not exist in this model")
    if index >= width:
        raise ValidationError(f"{feature_id}: index {index} is out of range for {hook} (width {width})")
    u = np.zeros(width)
    u[index] = 1.0
    return Target(feature_id, hook, u, kind, index)
