"""Read an SAE in SAE Lens's layout: a folder with ``cfg.json`` and ``sae_weights.safetensors``.

Tensors: ``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_in]``, ``b_enc [d_sae]``, ``b_dec [d_in]``
and, for JumpReLU, ``threshold [d_sae]``. The cfg names ``d_in``, ``d_sae``, ``architecture``
(standard, topk, jumprelu, …), ``k`` for TopK and the hookpoint (``metadata.hook_name``, or
``hook_name`` in older files).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interp_agent.core.errors import InputFileError

_LAYER = re.compile(r"^blocks\.(\d+)\.")


@dataclass(frozen=True, slots=True)
class SaeWeights:
    """An SAE's weights and where it reads."""

    hookpoint: str
    """TransformerLens hookpoint the SAE encodes."""
    W_enc: np.ndarray
    """Encoder [d_in, d_sae]."""
    b_enc: np.ndarray
    """Encoder bias [d_sae]."""
    W_dec: np.ndarray
    """Decoder [d_sae, d_in]."""
    b_dec: np.ndarray
    """Decoder bias [d_in], subtracted before encoding."""
    threshold: np.ndarray | None
    """JumpReLU thresholds [d_sae], else None."""
    architecture: str
    """standard, topk, jumprelu, …"""
    k: int | None
    """Active latents per token for TopK."""

    @property
    def layer(self) -> int:
        """Layer of the hookpoint."""
        m = _LAYER.match(self.hookpoint)
        return int(m.group(1)) if m else -1

    def encode(self, acts_ND: np.ndarray) -> np.ndarray:
        """Latent activations [N, d_sae] (ReLU, JumpReLU thresholds, TopK when k is set)."""
        pre = (acts_ND - self.b_dec) @ self.W_enc + self.b_enc
        out = np.maximum(pre, 0.0)
        if self.threshold is not None:
            out = np.where(pre > self.threshold, pre, 0.0)
        if self.k is not None and self.k < out.shape[1]:
            cut = np.partition(out, -self.k, axis=1)[:, -self.k][:, None]
            out = np.where(out >= cut, out, 0.0)
        return out


def load_sae_lens(folder: str | Path) -> SaeWeights:
    """Load an SAE Lens folder; errors name the file and the missing or malformed field."""
    from safetensors.numpy import load_file

    root = Path(folder)
    cfg_path, weights_path = root / "cfg.json", root / "sae_weights.safetensors"
    for p in (cfg_path, weights_path):
        if not p.is_file():
            raise InputFileError(p, "file not found", hint="an SAE Lens folder holds cfg.json and sae_weights.safetensors")
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputFileError(cfg_path, f"malformed JSON: {exc.msg}", line=exc.lineno) from None
    hook = (cfg.get("metadata") or {}).get("hook_name") or cfg.get("hook_name")
    if not hook or not _LAYER.match(str(hook)):
        raise InputFileError(cfg_path, f"no TransformerLens hook name, got {hook!r}", field="metadata.hook_name")
    tensors = load_file(str(weights_path))
    for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
        if name not in tensors:
            raise InputFileError(weights_path, f"tensor {name} is missing", field=name)
    W_enc = tensors["W_enc"].astype(np.float64)
    W_dec = tensors["W_dec"].astype(np.float64)
    d_in, d_sae = W_enc.shape
    if W_dec.shape != (d_sae, d_in):
        raise InputFileError(weights_path, f"W_dec has shape {W_dec.shape}, expected {(d_sae, d_in)}", field="W_dec")
    arch = str(cfg.get("architecture", "standard"))
    k = cfg.get("k") if arch in ("topk", "batchtopk") else None
    return SaeWeights(
        hookpoint=str(hook), W_enc=W_enc, b_enc=tensors["b_enc"].astype(np.float64), W_dec=W_dec,
        b_dec=tensors["b_dec"].astype(np.float64),
        threshold=tensors["threshold"].astype(np.float64) if "threshold" in tensors else None,
        architecture=arch, k=int(k) if k is not None else None,
    )
