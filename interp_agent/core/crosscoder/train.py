"""Training a BatchTopK crosscoder on paired activations, and measuring it on held-out tokens.

The loss is the squared reconstruction error summed over sources and dimensions, per token, in
the crosscoder's normalised units (every source has total variance 1 there, so the loss is
close to the sum of the per-source fractions of variance unexplained), plus
``aux_coefficient × AuxK``: the ``d / 2`` largest latents among the dead ones (inactive for
``dead_after_tokens`` tokens) reconstruct the main residual, normalised by the residual's
variance (Gao et al. 2024, appendix A.2, as dictionary_learning's crosscoder trainer does).

Adam with a linear warm-up and a linear decay over the last ``decay_fraction`` of the steps;
gradients clipped to norm 1; the decoder biases start at each source's geometric median. The
inference threshold is the mean, over the steps after ``threshold_start_fraction`` of training,
of the smallest kept ``f · Σ_s ‖W_dec[s]‖`` in the batch (BatchTopK's own estimate; a running
mean rather than dictionary_learning's 0.999 EMA, which barely moves in a run of a few hundred
steps). On the CPU a run is deterministic for a seed: batches depend on (seed, epoch) only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from interp_agent.core.crosscoder.model import BatchTopKCrossCoder, CrosscoderShape
from interp_agent.core.errors import ValidationError
from interp_agent.core.sae.trainer import default_lr, geometric_median

StepReport = Callable[[dict[str, float]], None]


@dataclass(frozen=True, slots=True)
class CrosscoderTraining:
    """Settings of the training loop."""

    batch_size: int = 1024
    """Tokens per step."""
    steps: int = 300
    """Optimiser steps."""
    lr: float | None = None
    """Adam learning rate; default 2e-4 / √(latent_dim / 2¹⁴), as dictionary_learning and sparsify do."""
    warmup_fraction: float = 0.05
    """Share of the steps with a linear warm-up."""
    decay_fraction: float = 0.2
    """Share of the steps, at the end, over which the learning rate decays linearly to 0."""
    aux_coefficient: float = 1 / 32
    """Weight of the AuxK term."""
    dead_after_tokens: int | None = None
    """A latent inactive for this many tokens is dead; default min(10M, a fifth of the training tokens)."""
    threshold_start_fraction: float = 0.5
    """The inference threshold averages the steps after this share of training."""
    seed: int = 0
    """Seeds the initialisation and the batch order."""

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.steps < 1:
            raise ValidationError(f"batch_size and steps must be positive, got {self.batch_size} and {self.steps}")
        for name in ("warmup_fraction", "decay_fraction", "threshold_start_fraction"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValidationError(f"{name} must be in [0, 1), got {value}")
        if self.lr is not None and not self.lr > 0:
            raise ValidationError(f"lr must be positive, got {self.lr}")

    def resolved_lr(self, latent_dim: int) -> float:
        """The learning rate used: ``lr`` or the width-scaled default."""
        return self.lr if self.lr is not None else default_lr(latent_dim)


def _lr_factor(step: int, steps: int, warmup: int, decay: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    if decay and step >= steps - decay:
        return max(0.0, (steps - step) / decay)
    return 1.0


def _batches(data_NSD: np.ndarray, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    epoch = 0
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(len(data_NSD))
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield data_NSD[np.sort(order[i:i + batch_size])]
        epoch += 1


@torch.no_grad()
def _initialise(model: BatchTopKCrossCoder, data_NSD: np.ndarray, seed: int) -> None:
    """Normaliser from the training rows; each decoder bias at its source's geometric median."""
    sample = data_NSD[np.random.default_rng(seed).permutation(len(data_NSD))[:65_536]]
    x = torch.as_tensor(sample, dtype=torch.float32)
    model.set_normaliser(x.mean(0), x.std(0, correction=0))
    xn = model.normalise(x[:4096])
    for s in range(model.shape.n_sources):
        model.decoder.bias[s] = geometric_median(xn[:, s])


def _aux_loss(
    model: BatchTopKCrossCoder, f_BM: torch.Tensor, residual_BSD: torch.Tensor, dead_M: torch.Tensor
) -> torch.Tensor:
    """AuxK: the ``d // 2`` largest dead latents per token reconstruct the residual (normalised by its variance)."""
    k_aux = min(model.shape.d // 2, int(dead_M.sum()))
    scaled = torch.where(dead_M[None], (f_BM * model.code_norm()).detach(), -torch.inf)
    idx = scaled.topk(k_aux, dim=1, sorted=False).indices
    aux_f = torch.zeros_like(f_BM).scatter(1, idx, f_BM.gather(1, idx))
    aux_recon = model.decode_normalised(aux_f, bias=False)
    denominator = (residual_BSD - residual_BSD.mean(0)).pow(2).sum((1, 2)).mean().clamp_min(1e-12)
    return (aux_recon - residual_BSD).pow(2).sum((1, 2)).mean() / denominator


@dataclass(slots=True)
class _Loop:
    """The mutable state of one training run."""

    model: BatchTopKCrossCoder
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    tokens_since_fired: torch.Tensor
    dead_after: int
    threshold_sum: float = 0.0
    threshold_n: int = 0


def _step(loop: _Loop, x_BSD: torch.Tensor, aux_coefficient: float, update_threshold: bool) -> dict[str, float]:
    model = loop.model
    xn = model.normalise(x_BSD)
    f_BM = model.select_batch_topk(model.pre_relu(xn))
    err = xn - model.decode_normalised(f_BM)
    loss = mse = err.pow(2).sum((1, 2)).mean()
    dead = loop.tokens_since_fired > loop.dead_after
    aux = torch.zeros(())
    if aux_coefficient > 0 and bool(dead.any()):
        aux = _aux_loss(model, f_BM, err.detach(), dead)
        loss = loss + aux_coefficient * aux
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    loop.optimizer.step()
    loop.schedule.step()
    loop.optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        active = f_BM > 0
        loop.tokens_since_fired += x_BSD.shape[0]
        loop.tokens_since_fired[active.any(0)] = 0
        if update_threshold and bool(active.any()):
            loop.threshold_sum += float((f_BM * model.code_norm())[active].min())
            loop.threshold_n += 1
        fvu_S = err.pow(2).sum((0, 2)) / (xn - xn.mean(0)).pow(2).sum((0, 2)).clamp_min(1e-12)
    return {"loss": float(loss.detach()), "mse": float(mse.detach()), "aux": float(aux.detach()),
            "l0": float(active.sum(1).float().mean()),
            "fvu": float(fvu_S.mean()), "dead_fraction": float(dead.float().mean())}


def fit_crosscoder(
    acts_NSD: np.ndarray, shape: CrosscoderShape, training: CrosscoderTraining, *, report: StepReport | None = None
) -> tuple[BatchTopKCrossCoder, dict[str, Any]]:
    """Train on in-memory paired activations ``[n_tokens, n_sources, d]`` (raw units).

    Returns the trained crosscoder (eval mode, threshold set) and ``{seconds, history}``, the history a
    bounded list of ``{step, loss, mse, aux, l0, fvu, dead_fraction}`` (``fvu`` the mean over sources).
    """
    data = np.ascontiguousarray(np.asarray(acts_NSD, dtype=np.float32))
    if data.ndim != 3 or data.shape[1:] != (shape.n_sources, shape.d):
        raise ValidationError(f"activations have shape {data.shape}, expected [n_tokens, {shape.n_sources}, {shape.d}]")
    batch = min(training.batch_size, len(data))
    if batch < 2:
        raise ValidationError(f"{len(data)} training token(s) are too few to train a crosscoder",
                              hint="give more or longer texts")
    torch.manual_seed(training.seed)
    model = BatchTopKCrossCoder(shape, generator=torch.Generator().manual_seed(training.seed))
    _initialise(model, data, training.seed)
    steps = training.steps
    warmup = max(1, round(steps * training.warmup_fraction))
    decay = round(steps * training.decay_fraction)
    optimizer = torch.optim.Adam(model.parameters(), lr=training.resolved_lr(shape.latent_dim), betas=(0.9, 0.999))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, steps, warmup, decay))
    dead_after = training.dead_after_tokens or min(10_000_000, max(batch, steps * batch // 5))
    loop = _Loop(model, optimizer, schedule, torch.zeros(shape.latent_dim, dtype=torch.long), dead_after)
    start_threshold = int(steps * training.threshold_start_fraction)
    every = max(1, steps // 200)
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    for step, raw in zip(range(steps), _batches(data, batch, training.seed), strict=False):
        point = _step(loop, torch.from_numpy(raw), training.aux_coefficient, step >= start_threshold)
        if (step + 1) % every == 0 or step + 1 == steps:
            history.append({"step": step + 1, **point})
            if report is not None:
                report(history[-1])
    with torch.no_grad():
        model.threshold.fill_(loop.threshold_sum / loop.threshold_n if loop.threshold_n else 0.0)
    return model.eval(), {"seconds": round(time.perf_counter() - t0, 3), "history": history}


@torch.no_grad()
def held_out_metrics(
    model: BatchTopKCrossCoder, acts_NSD: np.ndarray, source_names: list[str], *, chunk: int = 4096
) -> dict[str, Any]:
    """Reconstruction on held-out tokens with the inference threshold: per-source FVU, L0, dead fraction.

    FVU_s = Σ‖x_s − x̂_s‖² / Σ‖x_s − mean(x_s)‖² in raw units; explained variance is 1 − FVU.
    """
    data = np.asarray(acts_NSD, dtype=np.float32)
    if len(data) == 0:
        raise ValidationError("no held-out tokens to measure the crosscoder on", hint="give more texts")
    mean_SD = torch.as_tensor(data.mean(0, dtype=np.float64), dtype=torch.float32)
    err_S = torch.zeros(model.shape.n_sources, dtype=torch.float64)
    var_S = torch.zeros_like(err_S)
    fired = torch.zeros(model.shape.latent_dim, dtype=torch.bool)
    l0_sum = 0.0
    for i in range(0, len(data), chunk):
        x = torch.as_tensor(data[i:i + chunk])
        f = model.encode(x)
        recon = model.denormalise(model.decode_normalised(f))
        err_S += (x - recon).double().pow(2).sum((0, 2))
        var_S += (x - mean_SD).double().pow(2).sum((0, 2))
        fired |= (f > 0).any(0)
        l0_sum += float((f > 0).sum())
    fvu = (err_S / var_S.clamp_min(1e-12)).tolist()
    return {
        "n_tokens": len(data),
        "fvu": dict(zip(source_names, fvu, strict=True)),
        "explained_variance": {name: 1.0 - v for name, v in zip(source_names, fvu, strict=True)},
        "l0": l0_sum / len(data),
        "dead_fraction": float((~fired).float().mean()),
        "provenance": "correlational",
    }

