"""The SAE training loop: Adam with warm-up and decay, AuxK for dead latents, checkpoints.

The loss is the per-element MSE on scaled inputs, plus:
- topk / batchtopk: ``aux_coefficient * AuxK``, where the ``k_aux = d_in / 2`` largest
  pre-activations of dead latents (not active for ``dead_after_tokens`` tokens) reconstruct
  the main reconstruction's residual, in the main loss's units, scaled down while few
  latents are dead (Gao et al. 2024, appendix A.2);
- relu: ``sparsity_coefficient * mean_row Σ_i f_i / d_in`` (L1; decoder rows have unit norm);
- jumprelu: ``sparsity_coefficient * mean_row L0 / d_in`` through the straight-through estimator.

After each step the decoder gradient's component along each row is removed before the
update and the rows are renormalised after it. On the CPU a run is deterministic for a
seed: batches depend on (seed, step) only, and a checkpoint holds the parameters, the
optimiser and schedule, and the dead-latent counters, so a resumed run ends bit-identical
to an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interp_agent.core.errors import ValidationError
from interp_agent.core.sae.model import SPARSE_ARCHITECTURES, SaeShape, SparseAutoencoder

StepReport = Callable[[dict[str, Any]], None]
CHECKPOINT_DIR = "checkpoints"


@dataclass(frozen=True, slots=True)
class Optimisation:
    """Settings of the loop (everything but the SAE's shape and the data)."""

    batch_size: int
    steps: int
    lr: float
    warmup_steps: int
    decay_steps: int
    """The last ``decay_steps`` steps decay the learning rate linearly to 0."""
    sparsity_coefficient: float
    aux_coefficient: float
    dead_after_tokens: int
    b_dec_init: str
    """``median`` (geometric median of a sample), ``mean`` or ``zeros``."""
    seed: int
    checkpoint_every: int
    """Steps between checkpoints; 0 never."""
    bf16_matmul: bool = False
    """Run the encoder matmul in bfloat16 (a GPU setting)."""


def default_lr(d_sae: int) -> float:
    """2e-4 scaled by 1/√(d_sae / 2¹⁴), as sparsify does."""
    return 2e-4 / math.sqrt(d_sae / 2**14)


def geometric_median(points: torch.Tensor, *, iterations: int = 50, eps: float = 1e-6) -> torch.Tensor:
    """Weiszfeld's iteration for the point minimising the summed distance to ``points`` [n, d]."""
    guess = points.mean(0)
    for _ in range(iterations):
        w = 1.0 / (points - guess).norm(dim=1).clamp_min(eps)
        new = (w[:, None] * points).sum(0) / w.sum()
        if (new - guess).norm() < eps * (1 + guess.norm()):
            return new
        guess = new
    return guess


def _lr_factor(step: int, opt: Optimisation) -> float:
    if step < opt.warmup_steps:
        return (step + 1) / opt.warmup_steps
    decay_start = opt.steps - opt.decay_steps
    if opt.decay_steps and step >= decay_start:
        return max(0.0, (opt.steps - step) / opt.decay_steps)
    return 1.0


class Trainer:
    """Trains one SAE from a stream of raw activation batches."""

    def __init__(self, shape: SaeShape, opt: Optimisation, *, device: str | torch.device = "cpu") -> None:
        self.shape, self.opt = shape, opt
        self.device = torch.device(device)
        gen = torch.Generator().manual_seed(opt.seed)
        self.sae = SparseAutoencoder(shape, generator=gen).to(self.device)
        if opt.bf16_matmul:
            self.sae.matmul_dtype = torch.bfloat16
        self.optimizer = torch.optim.Adam(self.sae.parameters(), lr=opt.lr, betas=(0.9, 0.999))
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: _lr_factor(s, opt))
        self.tokens_since_fired = torch.zeros(shape.d_sae, dtype=torch.long, device=self.device)
        self.step = 0
        self.initialised = False

    # -- set-up --------------------------------------------------------------------------

    @torch.no_grad()
    def initialise(self, sample: np.ndarray) -> None:
        """Input scale (mean squared norm → d_in) and b_dec from a sample of raw rows."""
        x = torch.as_tensor(sample, dtype=torch.float32, device=self.device)
        scale = math.sqrt(self.shape.d_in / float(x.pow(2).sum(1).mean()))
        self.sae.input_scale.fill_(scale)
        xs = x * scale
        if self.opt.b_dec_init == "median":
            self.sae.b_dec.copy_(geometric_median(xs))
        elif self.opt.b_dec_init == "mean":
            self.sae.b_dec.copy_(xs.mean(0))
        elif self.opt.b_dec_init != "zeros":
            raise ValidationError(f"b_dec_init must be median, mean or zeros, got {self.opt.b_dec_init!r}")
        self.initialised = True

    # -- one step ------------------------------------------------------------------------

    def train_step(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimiser step on a raw batch [batch, d_in]; returns detached loss terms."""
        sae, opt = self.sae, self.opt
        x = raw.to(self.device, torch.float32, non_blocking=True) * sae.input_scale
        d_in = self.shape.d_in
        fwd = sae(x)
        err = fwd.recon - x
        mse = err.pow(2).mean()
        loss = mse
        terms: dict[str, torch.Tensor] = {"mse": mse.detach(), "l0": fwd.l0}
        if self.shape.architecture in SPARSE_ARCHITECTURES and opt.aux_coefficient > 0:
            dead = self.tokens_since_fired > opt.dead_after_tokens
            n_dead = int(dead.sum())
            if n_dead:
                k_aux = d_in // 2
                rows, cols = sae.aux_select(fwd.pre, dead, k_aux)
                residual = err.detach().neg()
                aux_recon = sae.aux_recon(x, fwd.pre, rows, cols)
                aux = (aux_recon - residual).pow(2).mean()  # the main loss's units
                loss = loss + opt.aux_coefficient * min(n_dead / k_aux, 1.0) * aux
                terms["aux"] = aux.detach()
        elif fwd.sparsity_loss is not None:
            sparsity = opt.sparsity_coefficient * fwd.sparsity_loss / d_in
            loss = loss + sparsity
            terms["sparsity"] = sparsity.detach()
        loss.backward()
        sae.project_decoder_grad()
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        sae.normalise_decoder()
        with torch.no_grad():
            self.tokens_since_fired += x.shape[0]
            self.tokens_since_fired[fwd.fired] = 0
            terms["fvu"] = err.detach().pow(2).sum() / (x - x.mean(0)).pow(2).sum().clamp_min(1e-12)
        terms["loss"] = loss.detach()
        self.step += 1
        return terms

    # -- the loop ------------------------------------------------------------------------

    def fit(
        self,
        batches: Iterator[np.ndarray],
        *,
        checkpoint_dir: Path | None = None,
        report: StepReport | None = None,
        report_every_s: float = 1.0,
    ) -> list[dict[str, float]]:
        """Train until ``opt.steps``; ``batches`` must start at the current step (after a resume).

        Returns a bounded history of ``{step, loss, mse, fvu, l0, dead_fraction}`` (at most ~200 points).
        """
        if not self.initialised:
            raise ValidationError("call initialise(sample) before fit")
        history: list[dict[str, float]] = []
        every = max(1, self.opt.steps // 200)
        last_report = time.monotonic()
        pin = self.device.type == "cuda"
        for batch in batches:
            if self.step >= self.opt.steps:
                break
            raw = torch.from_numpy(batch)
            if pin:
                raw = raw.pin_memory()
            terms = self.train_step(raw)
            if self.step % every == 0 or self.step == self.opt.steps:
                point = {"step": self.step, **{k: float(v) for k, v in terms.items()},
                         "dead_fraction": float((self.tokens_since_fired > self.opt.dead_after_tokens).float().mean())}
                history.append(point)
                if report and (time.monotonic() - last_report >= report_every_s or self.step == self.opt.steps):
                    last_report = time.monotonic()
                    report(point)
            if checkpoint_dir and self.opt.checkpoint_every and self.step % self.opt.checkpoint_every == 0 \
                    and self.step < self.opt.steps:
                self.save_checkpoint(checkpoint_dir, history)
        return history

    # -- checkpoints ---------------------------------------------------------------------

    def _fingerprint(self) -> dict[str, Any]:
        return {
            "shape": asdict(self.shape), "opt": {k: v for k, v in asdict(self.opt).items() if k != "checkpoint_every"}
        }

    def save_checkpoint(self, folder: Path, history: list[dict[str, float]]) -> Path:
        """Write ``step-NNNNNNNN.pt`` atomically; keep the two newest."""
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            "fingerprint": self._fingerprint(), "step": self.step, "sae": self.sae.state_dict(),
            "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
            "tokens_since_fired": self.tokens_since_fired, "history": history,
        }
        path = folder / f"step-{self.step:08d}.pt"
        tmp = path.with_suffix(".pt.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
        for old in sorted(folder.glob("step-*.pt"))[:-2]:
            old.unlink(missing_ok=True)
        return path

    def load_latest(self, folder: Path) -> list[dict[str, float]] | None:
        """Resume from the newest checkpoint in ``folder`` made with the same settings; its history, or None."""
        for path in sorted(folder.glob("step-*.pt"), reverse=True):
            try:
                state = torch.load(path, map_location=self.device, weights_only=False)
            except Exception:  # a torn file from a kill mid-write is skipped
                continue
            if state["fingerprint"] != self._fingerprint():
                return None
            self.sae.load_state_dict(state["sae"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.schedule.load_state_dict(state["schedule"])
            self.tokens_since_fired.copy_(state["tokens_since_fired"])
            self.step = int(state["step"])
            self.initialised = True
            return list(state["history"])
        return None


def fit_tensor(
    acts: torch.Tensor | np.ndarray, shape: SaeShape, opt: Optimisation, *, device: str = "cpu"
) -> tuple[SparseAutoencoder, dict[str, Any]]:
    """Train on an in-memory activation tensor [n, d_in] (benchmarks and tests); returns the SAE and timings."""
    data = np.ascontiguousarray(np.asarray(acts, dtype=np.float32))
    trainer = Trainer(shape, opt, device=device)
    trainer.initialise(data[np.random.default_rng(opt.seed).permutation(len(data))[:16_384]])

    def batches() -> Iterator[np.ndarray]:
        epoch = 0
        while True:
            order = np.random.default_rng([opt.seed, epoch]).permutation(len(data))
            for i in range(0, len(order) - opt.batch_size + 1, opt.batch_size):
                yield data[order[i:i + opt.batch_size]]
            epoch += 1

    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    history = trainer.fit(batches())
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return trainer.sae, {"seconds": seconds, "tokens_per_s": opt.steps * opt.batch_size / seconds, "history": history}
