"""Sparse autoencoder architectures for training: TopK, BatchTopK, ReLU with L1, JumpReLU.

All four share ``pre = (x - b_dec) @ W_enc.T + b_enc`` and ``x̂ = f(pre) @ W_dec + b_dec`` with
the decoder rows kept at unit norm. They differ in ``f`` and in the sparsity pressure:

- ``topk``: the k largest pre-activations per row, ReLU'd (Gao et al. 2024).
- ``batchtopk``: the ``k * batch`` largest ReLU'd pre-activations over the whole batch
  (Bussmann et al. 2024); at inference a single threshold (the running mean of the smallest
  selected value) replaces the batch selection, so it is saved as a JumpReLU SAE.
- ``relu``: ReLU, with an L1 penalty on the latents.
- ``jumprelu``: ``pre * H(pre - θ)`` with a learned threshold per latent and an L0 penalty,
  both trained through straight-through estimators with a rectangle kernel
  (Rajamanoharan et al. 2024).

The sparse architectures (topk, batchtopk) never form the dense ``[batch, d_sae]`` code:
the selected latents are gathered from the pre-activations, the decoder is an
``embedding_bag`` over the selected rows, and the encoder's gradient is a sparse-dense
product (:class:`_GatherPre`). Per step that leaves one dense matmul, the encoder's forward,
where the dense reference spends five. The encoder weight is stored ``[d_sae, d_in]`` so
both the gradient and the decoder are row-indexed; SAE Lens's ``W_enc`` is its transpose.

Training runs on activations scaled by ``input_scale`` (so the mean squared norm is
``d_in``); :meth:`SparseAutoencoder.to_weights` folds the scale back into the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from interp_agent.core.errors import ValidationError
from interp_agent.core.sae.lens import SaeWeights

Architecture = Literal["topk", "batchtopk", "relu", "jumprelu"]
ARCHITECTURES: tuple[str, ...] = ("topk", "batchtopk", "relu", "jumprelu")
SPARSE_ARCHITECTURES = frozenset({"topk", "batchtopk"})


@dataclass(frozen=True, slots=True)
class SaeShape:
    """What an SAE is, before training."""

    architecture: Architecture
    d_in: int
    d_sae: int
    k: int | None = None
    """Active latents per row (topk) or on average (batchtopk)."""
    jumprelu_bandwidth: float = 0.05
    """Rectangle-kernel width ε of the JumpReLU straight-through estimators (scaled units)."""
    jumprelu_init_threshold: float = 0.1
    """Initial JumpReLU threshold θ (scaled units)."""

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValidationError(
                f"unknown architecture {self.architecture!r}", hint=f"one of {', '.join(ARCHITECTURES)}"
            )
        if self.d_in < 1 or self.d_sae < 1:
            raise ValidationError(f"d_in and d_sae must be positive, got {self.d_in} and {self.d_sae}")
        if self.architecture in SPARSE_ARCHITECTURES:
            if self.k is None or not 0 < self.k <= self.d_sae:
                raise ValidationError(f"{self.architecture} needs 0 < k <= d_sae ({self.d_sae}), got k={self.k}")

    @property
    def sparse_k(self) -> int:
        """``k`` of a topk or batchtopk SAE, which ``__post_init__`` guarantees is set."""
        assert self.k is not None, f"{self.architecture} has no k"
        return self.k


class BatchCollective(Protocol):
    """BatchTopK's batch-wide selection when a batch's pre-activations are split over processes.

    ``core.sae.distributed`` implements it over ``torch.distributed``: under data parallelism
    each process holds a slice of the batch's rows (``rows_factor`` = world size); with the
    latents sharded, a slice of its columns (``rows_factor`` = 1).
    """

    rows_factor: int
    """Rows of the whole batch per local row."""

    def kth_largest(self, flat: torch.Tensor, k: int) -> torch.Tensor:
        """The ``k``-th largest value among every process's ``flat`` (a scalar)."""
        ...

    def global_min(self, value: torch.Tensor) -> torch.Tensor:
        """The smallest of every process's scalar ``value``."""
        ...


@dataclass(slots=True)
class Code:
    """Sparse latent code of a batch: ``values[j]`` of latent ``cols[j]`` on row ``rows[j]``.

    Entries are grouped by row (``offsets[r]`` is where row r starts), as ``embedding_bag`` wants.
    """

    rows: torch.Tensor
    cols: torch.Tensor
    values: torch.Tensor
    offsets: torch.Tensor
    n_rows: int

    def dense(self, d_sae: int) -> torch.Tensor:
        """The code as a dense ``[n_rows, d_sae]`` tensor."""
        out = self.values.new_zeros(self.n_rows, d_sae)
        out[self.rows, self.cols] = self.values
        return out


class _GatherPre(torch.autograd.Function):
    """``pre[rows, cols]`` of an encoder whose dense pre-activations were computed without grad.

    ``centred`` is the encoder input ``x - b_dec``. The backward needs only the selected
    entries: with G the sparse ``[batch, d_sae]`` gradient (``len(rows)`` non-zeros),
    ``dW_enc = Gᵀ centred``, ``db_enc`` a scatter-add and ``dcentred = G W_enc``, so the dense
    gradient of the reference implementation is never formed.
    """

    @staticmethod
    def forward(
        ctx: Any, centred: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, pre: torch.Tensor,
        rows: torch.Tensor, cols: torch.Tensor,
    ) -> torch.Tensor:
        ctx.save_for_backward(centred, W_enc, rows, cols)
        return pre[rows, cols]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        centred, W_enc, rows, cols = ctx.saved_tensors
        grad = grad.to(centred.dtype)
        d_sae, n = W_enc.shape[0], centred.shape[0]
        G_T = torch.sparse_coo_tensor(torch.stack([cols, rows]), grad, (d_sae, n), check_invariants=False)
        grad_W = torch.sparse.mm(G_T, centred.detach())
        grad_b = grad.new_zeros(d_sae).index_add_(0, cols, grad)
        grad_c = None
        if ctx.needs_input_grad[0]:
            G = torch.sparse_coo_tensor(torch.stack([rows, cols]), grad, (n, d_sae), check_invariants=False)
            grad_c = torch.sparse.mm(G, W_enc.detach())
        return grad_c, grad_W, grad_b, None, None, None


class _StepSTE(torch.autograd.Function):
    """JumpReLU's straight-through pieces: ``H(pre - θ)`` with a rectangle-kernel gradient in θ."""

    @staticmethod
    def forward(ctx: Any, pre: torch.Tensor, threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        kernel = ((pre - threshold).abs() < eps / 2).to(pre.dtype) / eps
        return None, -(grad * kernel).sum(0), None


class _JumpSTE(torch.autograd.Function):
    """``pre * H(pre - θ)``: gradient in pre where active, and ``-(θ/ε) K`` in θ."""

    @staticmethod
    def forward(ctx: Any, pre: torch.Tensor, threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return pre * (pre > threshold)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        kernel = ((pre - threshold).abs() < eps / 2).to(pre.dtype) / eps
        grad_pre = grad * (pre > threshold)
        return grad_pre, -threshold * (grad * kernel).sum(0), None


@dataclass(slots=True)
class Forward:
    """One training forward pass."""

    recon: torch.Tensor
    """Reconstruction [batch, d_in] (scaled units)."""
    code: Code | None
    """Selected latents (sparse architectures)."""
    dense_acts: torch.Tensor | None
    """Latent activations [batch, d_sae] (relu, jumprelu)."""
    pre: torch.Tensor
    """Pre-activations [batch, d_sae]; without grad for the sparse architectures."""
    fired: torch.Tensor
    """bool [d_sae]: latents active on some row of the batch."""
    l0: torch.Tensor
    """Mean active latents per row (a scalar, no grad)."""
    sparsity_loss: torch.Tensor | None = None
    """L1 (relu) or L0 (jumprelu) penalty, before its coefficient."""


class SparseAutoencoder(nn.Module):
    """An SAE being trained; see the module docstring for the architectures."""

    # buffers, made by register_buffer in __init__ (declared here for type checkers)
    input_scale: torch.Tensor
    batch_threshold: torch.Tensor
    threshold_updates: torch.Tensor

    def __init__(self, shape: SaeShape, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.shape = shape
        d_in, d_sae = shape.d_in, shape.d_sae
        W_dec = torch.randn(d_sae, d_in, generator=generator)
        W_dec /= W_dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(W_dec)
        self.W_enc = nn.Parameter(W_dec.clone())  # [d_sae, d_in]: encoder initialised as the decoder's transpose
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        self.log_threshold = (
            nn.Parameter(torch.full((d_sae,), math.log(shape.jumprelu_init_threshold)))
            if shape.architecture == "jumprelu" else None
        )
        self.register_buffer("input_scale", torch.ones(()))
        self.register_buffer("batch_threshold", torch.zeros(()))  # batchtopk inference threshold (scaled units)
        self.register_buffer("threshold_updates", torch.zeros((), dtype=torch.long))
        self.matmul_dtype: torch.dtype | None = None
        """When set (e.g. bfloat16 on a GPU), the encoder matmul runs in it; the rest stays float32."""
        self.batch_collective: BatchCollective | None = None
        """Set by ``core.sae.distributed`` when BatchTopK's batch is split over processes."""

    # -- pieces ----------------------------------------------------------------------

    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder pre-activations [batch, d_sae] of scaled inputs."""
        centred = x - self.b_dec
        if self.matmul_dtype is not None and self.matmul_dtype != x.dtype:
            out = centred.to(self.matmul_dtype) @ self.W_enc.to(self.matmul_dtype).T
            return out.float() + self.b_enc
        return torch.addmm(self.b_enc, centred, self.W_enc.T)

    def _select(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows and columns of the active latents, grouped by row."""
        k = self.shape.sparse_k
        n = pre.shape[0]
        if self.shape.architecture == "topk":
            cols = pre.topk(k, dim=1, sorted=False).indices
            rows = torch.arange(n, device=pre.device).repeat_interleave(k)
            return rows, cols.reshape(-1)
        flat = pre.relu().reshape(-1)
        coll = self.batch_collective
        if coll is not None:  # the k·batch largest over every process's part of the batch (ties aside)
            threshold = coll.kth_largest(flat, k * n * coll.rows_factor)
            idx = ((flat > 0) & (flat >= threshold)).nonzero().squeeze(1)
        else:
            idx = flat.topk(min(k * n, flat.numel()), sorted=False).indices.sort().values
        return idx // pre.shape[1], idx % pre.shape[1]

    def _code(self, x: torch.Tensor, pre: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> Code:
        values = _GatherPre.apply(x - self.b_dec, self.W_enc, self.b_enc, pre, rows, cols).relu()
        counts = torch.bincount(rows, minlength=x.shape[0])
        offsets = torch.zeros_like(counts)
        offsets[1:] = counts.cumsum(0)[:-1]
        return Code(rows, cols, values, offsets, x.shape[0])

    def decode_code(self, code: Code, *, bias: bool = True) -> torch.Tensor:
        """``Σ values · W_dec[cols]`` per row (+ b_dec), without forming the dense code."""
        out = F.embedding_bag(code.cols, self.W_dec, code.offsets, mode="sum", per_sample_weights=code.values)
        if out.shape[0] < code.n_rows:  # trailing rows with nothing active
            out = torch.cat([out, out.new_zeros(code.n_rows - out.shape[0], out.shape[1])])
        return out + self.b_dec if bias else out

    def threshold(self) -> torch.Tensor:
        """JumpReLU thresholds θ [d_sae] (scaled units)."""
        assert self.log_threshold is not None
        return self.log_threshold.exp()

    # -- training forward --------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> Forward:
        """Encode and decode scaled inputs ``x`` [batch, d_in] with the training-time selection."""
        arch = self.shape.architecture
        if arch in SPARSE_ARCHITECTURES:
            with torch.no_grad():
                pre = self.pre_acts(x)
                rows, cols = self._select(pre)
            code = self._code(x, pre, rows, cols)
            fired = torch.zeros(self.shape.d_sae, dtype=torch.bool, device=x.device)
            fired[cols[code.values > 0]] = True
            l0 = (code.values > 0).sum() / x.shape[0]
            if arch == "batchtopk" and self.training:
                self._update_batch_threshold(code.values)
            return Forward(self.decode_code(code), code, None, pre, fired, l0.detach())
        pre = self.pre_acts(x)
        if arch == "relu":
            acts = pre.relu()
            sparsity = acts.sum(1).mean()
        else:
            theta = self.threshold()
            acts = _JumpSTE.apply(pre, theta, self.shape.jumprelu_bandwidth)
            sparsity = _StepSTE.apply(pre, theta, self.shape.jumprelu_bandwidth).sum(1).mean()
        active = acts > 0
        return Forward(
            acts @ self.W_dec + self.b_dec, None, acts, pre, active.any(0),
            active.sum(1).float().mean().detach(), sparsity,
        )

    @torch.no_grad()
    def _update_batch_threshold(self, values: torch.Tensor) -> None:
        positive = values[values > 0]
        low = positive.min() if positive.numel() else values.new_tensor(math.inf)
        if self.batch_collective is not None:
            low = self.batch_collective.global_min(low)
        if not math.isfinite(float(low)):
            return
        n = int(self.threshold_updates) + 1
        self.batch_threshold += (low - self.batch_threshold) / n
        self.threshold_updates += 1

    @torch.no_grad()
    def aux_select(self, pre: torch.Tensor, dead: torch.Tensor, k_aux: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows and columns of the ``k_aux`` largest pre-activations among ``dead`` latents, per row (AuxK)."""
        dead_idx = dead.nonzero().squeeze(1)
        k_aux = min(k_aux, dead_idx.numel())
        sub = pre[:, dead_idx].topk(k_aux, dim=1, sorted=False).indices
        rows = torch.arange(pre.shape[0], device=pre.device).repeat_interleave(k_aux)
        return rows, dead_idx[sub.reshape(-1)]

    def aux_recon(self, x: torch.Tensor, pre: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Decoder output (no bias) of the selected dead latents, with gradients into both."""
        return self.decode_code(self._code(x, pre, rows, cols), bias=False)

    # -- inference -----------------------------------------------------------------------

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Dense latents [batch, d_sae] of scaled inputs, as the saved SAE encodes them."""
        pre = self.pre_acts(x)
        arch = self.shape.architecture
        if arch == "topk":
            top = pre.topk(self.shape.sparse_k, dim=1, sorted=False)
            return torch.zeros_like(pre).scatter_(1, top.indices, top.values.relu())
        if arch == "relu":
            return pre.relu()
        theta = self.threshold() if arch == "jumprelu" else self.batch_threshold
        return pre * (pre > theta)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of raw (unscaled) activations ``x`` [batch, d_in], inference mode."""
        scale = self.input_scale
        return (self.encode(x * scale) @ self.W_dec + self.b_dec) / scale

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        """Decoder rows back to unit norm (after each optimiser step)."""
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)

    @torch.no_grad()
    def project_decoder_grad(self) -> None:
        """Drop the part of the decoder gradient parallel to each (unit) row, which would only change its norm."""
        if self.W_dec.grad is None:
            return
        parallel = (self.W_dec.grad * self.W_dec).sum(1, keepdim=True)
        self.W_dec.grad -= parallel * self.W_dec

    @torch.no_grad()
    def to_weights(self, hookpoint: str) -> SaeWeights:
        """SAE Lens weights in raw activation units (the input scale folded in).

        TopK saves as ``topk``, ReLU as ``standard``; BatchTopK and JumpReLU save as
        ``jumprelu`` with thresholds. With s the input scale, ``pre`` is unchanged by
        ``W_enc ← s·W_enc`` and ``b_dec ← b_dec / s``, and ``W_dec ← W_dec / s`` returns raw units.
        """
        s = float(self.input_scale)
        arch = self.shape.architecture
        threshold = None
        if arch == "jumprelu":
            threshold = self.threshold().double().cpu().numpy()
        elif arch == "batchtopk":
            threshold = np.full(self.shape.d_sae, float(self.batch_threshold))
        saved = {"topk": "topk", "relu": "standard", "batchtopk": "jumprelu", "jumprelu": "jumprelu"}[arch]
        return SaeWeights(
            hookpoint=hookpoint,
            W_enc=(self.W_enc.double().cpu().numpy() * s).T.copy(),
            b_enc=self.b_enc.double().cpu().numpy(),
            W_dec=self.W_dec.double().cpu().numpy() / s,
            b_dec=self.b_dec.double().cpu().numpy() / s,
            threshold=threshold,
            architecture=saved,
            k=self.shape.k if arch == "topk" else None,
        )
