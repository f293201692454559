"""The BatchTopK crosscoder: one latent code shared by several sources, one decoder per source.

A source is the activation of one model at one hookpoint (two models at one layer, or several
layers of one model). With ``x`` of shape ``[batch, n_sources, d]``:

- each source is normalised, ``x̃_s = (x_s - μ_s) · g_s`` with ``g_s = 1 / √(Σ_d σ²_{s,d})`` (so every
  source has total variance 1 and one source cannot dominate the shared code);
- one pre-activation per latent sums the per-source encoders,
  ``pre = Σ_s x̃_s @ W_enc[s] + b_enc`` with ``W_enc`` ``[n_sources, d, m]``, and ``f = relu(pre)``;
- latents are compared by ``f_j · Σ_s ‖W_dec[s, j]‖`` (the crosscoder code normalisation of
  Lindsey et al. 2024): in training the ``k × batch`` largest of these over the whole batch are
  kept (BatchTopK, Bussmann et al. 2024); at inference one threshold estimated during training
  replaces the batch selection, so a latent's activation on a token does not depend on its batch;
- each source is decoded on its own, ``x̂̃_s = f @ W_dec[s] + b_dec[s]`` with ``W_dec``
  ``[n_sources, m, d]``, and de-normalised back to raw units.

Parameter and buffer names, shapes and the normalisation follow dictionary_learning's
``BatchTopKCrossCoder`` (the science-of-finetuning fork used by Minder et al. 2025), so the
state dict this module saves is the one its ``from_pretrained`` reads (see ``io.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from interp_agent.core.errors import ValidationError
from interp_agent.core.ids import format_sae_latent

SAE_ID = "crosscoder"
"""Latents are named ``SAE:crosscoder:F{i}`` (the ``SAE:{sae_id}:F{i}`` form), whichever source they are read on."""

CROSSCODER_CODE_NORMALIZATION_ID = 1
"""dictionary_learning's ``CodeNormalization.CROSSCODER.value`` (its enum starts at 1): Σ_s ‖W_dec[s, j]‖."""


@dataclass(frozen=True, slots=True)
class CrosscoderShape:
    """What a crosscoder is, before training."""

    n_sources: int
    """Sources encoded together (models or layers)."""
    d: int
    """Width of every source (they must agree)."""
    latent_dim: int
    """Latents in the shared dictionary (m)."""
    k: int
    """Active latents per token on average (BatchTopK keeps k × batch per batch)."""

    def __post_init__(self) -> None:
        if self.n_sources < 2:
            raise ValidationError(f"a crosscoder needs at least 2 sources, got n_sources={self.n_sources}",
                                  hint="give two models at one hookpoint, or one model at several hookpoints")
        if self.d < 1 or self.latent_dim < 1:
            raise ValidationError(f"d and latent_dim must be positive, got d={self.d}, latent_dim={self.latent_dim}")
        if not 0 < self.k <= self.latent_dim:
            raise ValidationError(f"k must satisfy 0 < k <= latent_dim ({self.latent_dim}), got k={self.k}",
                                  hint="k is the average number of active latents per token, e.g. 32")


class _Coder(nn.Module):
    """A weight and a bias (dictionary_learning's ``CrossCoderEncoder`` / ``CrossCoderDecoder`` names)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias)


class BatchTopKCrossCoder(nn.Module):
    """A BatchTopK crosscoder; see the module docstring. Inputs are raw activations ``[batch, n_sources, d]``."""

    # buffers, made by register_buffer in __init__ (declared here for type checkers)
    k: torch.Tensor
    threshold: torch.Tensor
    code_normalization_id: torch.Tensor
    target_rms: torch.Tensor
    activation_mean: torch.Tensor
    activation_std: torch.Tensor
    activation_global_scale: torch.Tensor

    def __init__(self, shape: CrosscoderShape, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.shape = shape
        S, d, m = shape.n_sources, shape.d, shape.latent_dim
        W_dec_SMD = torch.randn(S, m, d, generator=generator)
        W_dec_SMD /= W_dec_SMD.norm(dim=2, keepdim=True)  # unit norm per source and latent, as norm_init_scale=1
        self.encoder = _Coder(W_dec_SMD.transpose(1, 2).clone(), torch.zeros(m))  # [S, d, m], [m]
        self.decoder = _Coder(W_dec_SMD, torch.zeros(S, d))  # [S, m, d], [S, d]
        self.register_buffer("k", torch.tensor(shape.k, dtype=torch.int))
        self.register_buffer("threshold", torch.tensor(-1.0))  # on f · Σ_s ‖W_dec[s]‖; -1 until estimated
        self.register_buffer("code_normalization_id", torch.tensor(CROSSCODER_CODE_NORMALIZATION_ID))
        self.register_buffer("target_rms", torch.tensor(1.0))
        self.register_buffer("activation_mean", torch.zeros(S, d))
        self.register_buffer("activation_std", torch.ones(S, d))
        self.register_buffer("activation_global_scale", torch.ones(S))

    # -- normalisation -------------------------------------------------------------------

    @torch.no_grad()
    def set_normaliser(self, mean_SD: torch.Tensor, std_SD: torch.Tensor) -> None:
        """Per-source mean and std of raw activations; the global scale makes each source's total variance 1."""
        self.activation_mean.copy_(mean_SD)
        self.activation_std.copy_(std_SD)
        total_var_S = std_SD.pow(2).sum(-1)
        self.activation_global_scale.copy_(self.target_rms / torch.sqrt(total_var_S + 1e-8))

    def normalise(self, x_BSD: torch.Tensor) -> torch.Tensor:
        """Raw activations → the crosscoder's units."""
        return (x_BSD - self.activation_mean) * self.activation_global_scale[None, :, None]

    def denormalise(self, x_BSD: torch.Tensor) -> torch.Tensor:
        """The crosscoder's units → raw activations (dictionary_learning's formula, ε included)."""
        return x_BSD / (self.activation_global_scale[None, :, None] + 1e-8) + self.activation_mean

    # -- pieces ----------------------------------------------------------------------------

    def code_norm(self) -> torch.Tensor:
        """``Σ_s ‖W_dec[s, j]‖`` per latent [m]."""
        return self.decoder.weight.norm(dim=2).sum(0)

    def pre_relu(self, xn_BSD: torch.Tensor) -> torch.Tensor:
        """``relu(Σ_s x̃_s @ W_enc[s] + b_enc)`` [batch, m] of normalised inputs."""
        return torch.relu(torch.einsum("bsd,sdm->bm", xn_BSD, self.encoder.weight) + self.encoder.bias)

    def select_batch_topk(self, f_BM: torch.Tensor) -> torch.Tensor:
        """Keep the ``k × batch`` largest ``f · code_norm`` over the whole batch (zero the rest)."""
        scaled = (f_BM * self.code_norm()).flatten()
        n_keep = min(int(self.k) * f_BM.shape[0], scaled.numel())
        idx = scaled.topk(n_keep, sorted=False).indices
        mask = torch.zeros_like(scaled, dtype=torch.bool)
        mask[idx] = True
        return f_BM * mask.view_as(f_BM)

    def decode_normalised(self, f_BM: torch.Tensor, *, bias: bool = True) -> torch.Tensor:
        """``f @ W_dec[s] (+ b_dec[s])`` per source [batch, n_sources, d], normalised units."""
        out = torch.einsum("bm,smd->bsd", f_BM, self.decoder.weight)
        return out + self.decoder.bias if bias else out

    # -- inference -------------------------------------------------------------------------

    @torch.no_grad()
    def encode(self, x_BSD: torch.Tensor) -> torch.Tensor:
        """Latent code [batch, m] of raw activations with the inference threshold (as dictionary_learning encodes)."""
        f = self.pre_relu(self.normalise(x_BSD))
        if float(self.threshold) < 0:
            return self.select_batch_topk(f)  # no threshold estimated yet
        return f * (f * self.code_norm() > self.threshold)

    @torch.no_grad()
    def reconstruct(self, x_BSD: torch.Tensor) -> torch.Tensor:
        """Reconstruction of raw activations [batch, n_sources, d], in raw units."""
        return self.denormalise(self.decode_normalised(self.encode(x_BSD)))


def latent_ids(latent_dim: int) -> list[str]:
    """``SAE:crosscoder:F{i}`` for every latent."""
    return [format_sae_latent(i, sae_id=SAE_ID) for i in range(latent_dim)]
