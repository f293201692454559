"""Feature sources for a corpus harvest, and each feature's output side through the unembedding.

:func:`sae_source` (an SAE folder: SAE Lens or sparsify), :func:`basis_source` (residual
dimensions ``L{l}:D{i}`` or MLP neurons ``L{l}:N{i}`` of a hookpoint) and
:func:`direction_source` (learned directions, e.g. an inspect run's contrast directions) each
return a :class:`FeatureSource` with the features' write directions in the residual stream:
an SAE latent's decoder row, a neuron's column of the MLP's output projection, a residual
dimension's basis vector, a direction itself.

:func:`logit_effects` reads those directions through the final norm's gain and the
unembedding (``W_U @ (gamma * d)``, the folded-norm logit lens of TransformerLens and the
"logits" panel of Neuronpedia): the tokens each feature promotes and suppresses per unit of
activation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from interp_agent.core.artifacts import sha256_of
from interp_agent.core.errors import ValidationError, arg
from interp_agent.core.explain.evidence import unknown_feature_hint
from interp_agent.core.explain.harvest import FeatureSource, SparseEncode
from interp_agent.core.ids import basis_feature_ids, format_sae_latent, parse_hookpoint
from interp_agent.core.models.harvest import SaeParams, TokenText, encode_sae
from interp_agent.core.models.hookpoints import HookPoint, model_layout, unwrap

LOGIT_TOP = 10
"""Promoted and suppressed tokens kept per feature."""


def _columns(all_ids: list[str], wanted: Sequence[str] | None, where: str) -> tuple[list[str], np.ndarray | None]:
    if wanted is None:
        return all_ids, None
    index = {fid: i for i, fid in enumerate(all_ids)}
    missing = [f for f in wanted if f not in index]
    if missing:
        raise ValidationError(f"{arg('feature_ids')}: {missing[:5]} not at {where} ({len(all_ids)} features there)",
                              hint=unknown_feature_hint(missing[0], index))
    return list(wanted), np.asarray([index[f] for f in wanted], dtype=np.int64)


def sae_source(sae: Any, point: HookPoint, *, feature_ids: Sequence[str] | None = None,
               path: str | Path | None = None, device: torch.device | str = "cpu") -> FeatureSource:
    """The latents of ``sae`` (``core.sae.SaeWeights``) at ``point``; ``feature_ids`` picks some."""
    if sae.W_enc.shape[0] != point.width:
        raise ValidationError(f"the SAE reads {sae.W_enc.shape[0]} dims but {point.name} has {point.width}",
                              hint="use an SAE trained on this model and hookpoint")
    def tensor(x: Any) -> torch.Tensor | None:
        return None if x is None else torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)

    params = SaeParams(tensor(sae.W_enc), tensor(sae.b_enc), tensor(sae.b_dec), tensor(sae.threshold),
                       None if sae.k is None else int(sae.k))
    ids_all = [format_sae_latent(i, layer=point.layer) for i in range(sae.W_enc.shape[1])]
    ids, cols = _columns(ids_all, feature_ids, f"the SAE at {point.name}")
    dec = np.asarray(sae.W_dec, dtype=np.float32)
    description = {"kind": "sae", "architecture": sae.architecture, "d_sae": int(sae.W_enc.shape[1]),
                   "k": sae.k, "hookpoint": point.name}
    if path is not None:
        weights = Path(path) / "sae_weights.safetensors"
        description.update(path=str(path), sha256=sha256_of(weights) if weights.is_file() else None)
    return FeatureSource(ids, "sae_latent", lambda x: encode_sae(x, params), cols,
                         dec if cols is None else dec[cols], description, sparse=_topk_code(params),
                         n_all=int(sae.W_enc.shape[1]))


def _topk_code(params: SaeParams) -> SparseEncode | None:
    """A TopK SAE's code as (values, indices) [..., k], the same values ``encode_sae`` scatters; None otherwise."""
    if params.k is None:
        return None
    W, b_enc, b_dec, k = params.W_enc, params.b_enc, params.b_dec, int(params.k)

    def code(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pre = (x - b_dec.to(x.dtype)) @ W.to(x.dtype) + b_enc.to(x.dtype)
        top = torch.topk(pre, k, dim=-1)
        return torch.relu(top.values), top.indices

    return code


def basis_source(loaded: Any, point: HookPoint, *, feature_ids: Sequence[str] | None = None) -> FeatureSource:
    """Residual dimensions (``hook_resid_*``, ``hook_attn_out``, ``hook_mlp_out``) or MLP neurons
    (``mlp.hook_post``) of ``point``."""
    ids_all = basis_feature_ids(parse_hookpoint(point.name), point.width)
    ids, cols = _columns(ids_all, feature_ids, point.name)
    neuron = point.site == "mlp.hook_post"
    out = _neuron_outputs(loaded, point.layer) if neuron else np.eye(point.width, dtype=np.float32)
    kind = "neuron" if neuron else "residual_dim"
    return FeatureSource(ids, kind, None, cols, out if cols is None else out[cols],
                         {"kind": kind, "hookpoint": point.name, "width": point.width})


def _neuron_outputs(loaded: Any, layer: int) -> np.ndarray:
    layout = model_layout(loaded.model)
    proj = getattr(getattr(layout.blocks[layer], layout.mlp), layout.mlp_out_proj)
    weight = proj.weight.detach().float().cpu().numpy()
    # nn.Linear stores [out=d_model, in=d_mlp]; GPT-2's Conv1D stores [in, out]
    return weight.T.copy() if isinstance(proj, nn.Linear) else weight.copy()


def direction_source(directions: Mapping[str, np.ndarray], point: HookPoint) -> FeatureSource:
    """Projections on unit ``directions`` (feature id -> vector) at ``point``."""
    if not directions:
        raise ValidationError(f"{arg('feature_ids')}: no direction given for {point.name}")
    ids = list(directions)
    U_DF = np.stack([np.asarray(directions[f], dtype=np.float32).reshape(-1) for f in ids], axis=1)
    if U_DF.shape[0] != point.width:
        raise ValidationError(f"directions have {U_DF.shape[0]} entries; {point.name} has width {point.width}")
    norms = np.linalg.norm(U_DF, axis=0)
    if not np.all(norms > 0):
        raise ValidationError(f"a direction has norm 0: {[f for f, n in zip(ids, norms, strict=True) if n == 0]}")
    U = torch.as_tensor(U_DF / norms)
    return FeatureSource(ids, "direction", lambda x: x @ U.to(x.device), None, (U_DF / norms).T.copy(),
                         {"kind": "direction", "hookpoint": point.name, "n": len(ids)})


def _unembedding(loaded: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    m: Any = unwrap(loaded.model)
    head = m.get_output_embeddings() if hasattr(m, "get_output_embeddings") else None
    if head is None or not isinstance(getattr(head, "weight", None), torch.Tensor):
        raise ValidationError(f"{type(m).__name__} has no output embedding to read logits through")
    base = getattr(m, "model", None) or getattr(m, "transformer", None)
    norm = getattr(base, "norm", None) or getattr(base, "ln_f", None)
    gain = getattr(norm, "weight", None)
    return head.weight.detach().float(), None if gain is None else gain.detach().float()


def logit_effects(loaded: Any, directions_FD: np.ndarray, *, top: int = LOGIT_TOP,
                  chunk: int = 256) -> list[tuple[tuple[tuple[str, float], ...], tuple[tuple[str, float], ...]]]:
    """Per feature, (promoted, suppressed) tokens with their logit change per unit of activation."""
    W_U, gain = _unembedding(loaded)
    decode = TokenText(loaded.tokenizer)
    out = []
    for start in range(0, len(directions_FD), chunk):
        d = torch.as_tensor(directions_FD[start: start + chunk], dtype=torch.float32, device=W_U.device)
        if gain is not None:
            d = d * gain
        logits_FV = d @ W_U.T
        hi = torch.topk(logits_FV, top, dim=1)
        lo = torch.topk(-logits_FV, top, dim=1)
        for f in range(len(d)):
            up = tuple((decode(int(t)), float(v)) for t, v in zip(hi.indices[f], hi.values[f], strict=True))
            down = tuple((decode(int(t)), float(-v)) for t, v in zip(lo.indices[f], lo.values[f], strict=True))
            out.append((up, down))
    return out
