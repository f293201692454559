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
from typing import Any, Protocol

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


class Parallel(Protocol):
    """How the ranks of a distributed run split a step and combine its pieces (``core.sae.distributed``).

    Every hook is a no-op in a single process, so the loop reads the same either way.
    """

    is_main: bool
    """Whether this process writes checkpoints and reports (rank 0)."""
    rows_factor: int
    """Rows of the whole batch per local row (the world size under data parallelism, else 1)."""
    loss_scale: float
    """Factor on the loss before ``backward`` (1/world size with the latents sharded, else 1)."""

    def wrap(self, sae: SparseAutoencoder) -> SparseAutoencoder:
        """This rank's module for a freshly initialised full SAE (on the CPU)."""
        ...

    def local_rows(self, batch: np.ndarray) -> np.ndarray:
        """This rank's rows of a whole batch."""
        ...

    def synchronise(self, sae: SparseAutoencoder) -> None:
        """Make the replicated parameters and buffers rank 0's (after initialisation)."""
        ...

    def reduce_grads(self, sae: SparseAutoencoder) -> None:
        """Combine the ranks' gradients into the whole batch's, before the optimiser step."""
        ...

    def count(self, mask: torch.Tensor) -> int:
        """Number of latents set in a per-latent ``mask`` over the whole SAE."""
        ...

    def fired(self, fired: torch.Tensor) -> torch.Tensor:
        """This rank's per-latent ``fired`` mask made the whole batch's."""
        ...

    def fvu(self, err: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Fraction of variance unexplained over the whole batch."""
        ...

    def mean_terms(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The reported loss terms of the whole batch."""
        ...

    def state_out(self, trainer: Trainer) -> dict[str, Any] | None:
        """The full (unsharded) ``sae``, ``optimizer`` and ``tokens_since_fired`` states; None off rank 0."""
        ...

    def state_in(self, trainer: Trainer, state: dict[str, Any]) -> None:
        """Load a full checkpoint state into this rank's pieces."""
        ...

    def barrier(self) -> None:
        """Wait for every rank."""
        ...


def batch_fvu(err: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Fraction of variance unexplained of one batch: Σ err² / Σ (x - mean x)²."""
    return err.pow(2).sum() / (x - x.mean(0)).pow(2).sum().clamp_min(1e-12)


class Trainer:
    """Trains one SAE from a stream of raw activation batches (one rank's part of it under ``parallel``)."""

    def __init__(
        self, shape: SaeShape, opt: Optimisation, *, device: str | torch.device = "cpu",
        parallel: Parallel | None = None,
    ) -> None:
        self.shape, self.opt, self.parallel = shape, opt, parallel
        self.device = torch.device(device)
        gen = torch.Generator().manual_seed(opt.seed)
        sae = SparseAutoencoder(shape, generator=gen)
        self.sae = (parallel.wrap(sae) if parallel is not None else sae).to(self.device)
        if opt.bf16_matmul:
            self.sae.matmul_dtype = torch.bfloat16
        self.optimizer = torch.optim.Adam(self.sae.parameters(), lr=opt.lr, betas=(0.9, 0.999))
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: _lr_factor(s, opt))
        n_latents = self.sae.W_dec.shape[0]  # this rank's latents when they are sharded
        self.tokens_since_fired = torch.zeros(n_latents, dtype=torch.long, device=self.device)
        self.step = 0
        self.initialised = False

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints and reports (always, in a single process)."""
        return self.parallel is None or self.parallel.is_main

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
        if self.parallel is not None:
            self.parallel.synchronise(self.sae)
        self.initialised = True

    # -- one step ------------------------------------------------------------------------

    def train_step(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimiser step on a raw batch [batch, d_in] (this rank's rows); returns detached loss terms."""
        sae, opt, par = self.sae, self.opt, self.parallel
        x = raw.to(self.device, torch.float32, non_blocking=True) * sae.input_scale
        fwd = sae(x)
        err = fwd.recon - x
        mse = err.pow(2).mean()
        loss = mse
        terms: dict[str, torch.Tensor] = {"mse": mse.detach(), "l0": fwd.l0}
        if self.shape.architecture in SPARSE_ARCHITECTURES and opt.aux_coefficient > 0:
            aux = self._aux_loss(x, err, fwd.pre)
            if aux is not None:
                loss = loss + aux[0]
                terms["aux"] = aux[1]
        elif fwd.sparsity_loss is not None:
            sparsity = opt.sparsity_coefficient * fwd.sparsity_loss / self.shape.d_in
            loss = loss + sparsity
            terms["sparsity"] = sparsity.detach()
        (loss if par is None else loss * par.loss_scale).backward()
        if par is not None:
            par.reduce_grads(sae)
        sae.project_decoder_grad()
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        sae.normalise_decoder()
        with torch.no_grad():
            fired = fwd.fired if par is None else par.fired(fwd.fired)
            self.tokens_since_fired += x.shape[0] * (1 if par is None else par.rows_factor)
            self.tokens_since_fired[fired] = 0
            terms["fvu"] = batch_fvu(err.detach(), x) if par is None else par.fvu(err.detach(), x)
        terms["loss"] = loss.detach()
        self.step += 1
        return terms if par is None else par.mean_terms(terms)

    def _aux_loss(
        self, x: torch.Tensor, err: torch.Tensor, pre: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """AuxK's weighted term and its raw value, or None while no latent is dead."""
        dead = self.tokens_since_fired > self.opt.dead_after_tokens
        n_dead = int(dead.sum()) if self.parallel is None else self.parallel.count(dead)
        if not n_dead:
            return None
        k_aux = self.shape.d_in // 2
        rows, cols = self.sae.aux_select(pre, dead, k_aux)
        residual = err.detach().neg()
        aux_recon = self.sae.aux_recon(x, pre, rows, cols)
        aux = (aux_recon - residual).pow(2).mean()  # the main loss's units
        return self.opt.aux_coefficient * min(n_dead / k_aux, 1.0) * aux, aux.detach()

    def dead_fraction(self) -> float:
        """Share of the SAE's latents not active for ``dead_after_tokens`` tokens."""
        dead = self.tokens_since_fired > self.opt.dead_after_tokens
        n_dead = int(dead.sum()) if self.parallel is None else self.parallel.count(dead)
        return n_dead / self.shape.d_sae

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

        Under ``parallel`` the batches are whole batches and each rank trains on its rows;
        only rank 0 reports and writes checkpoints. Returns a bounded history of
        ``{step, loss, mse, fvu, l0, dead_fraction}`` (at most ~200 points).
        """
        if not self.initialised:
            raise ValidationError("call initialise(sample) before fit")
        history: list[dict[str, float]] = []
        every = max(1, self.opt.steps // 200)
        last_report = time.monotonic()
        pin = self.device.type == "cuda"
        report = report if self.is_main else None
        while self.step < self.opt.steps:  # checked before a batch is read: none is read past the last step
            batch = next(batches, None)
            if batch is None:
                break
            if self.parallel is not None:
                batch = self.parallel.local_rows(batch)
            raw = torch.from_numpy(np.ascontiguousarray(batch))
            if pin:
                raw = raw.pin_memory()
            terms = self.train_step(raw)
            if self.step % every == 0 or self.step == self.opt.steps:
                point = {"step": self.step, **{k: float(v) for k, v in terms.items()},
                         "dead_fraction": self.dead_fraction()}
                history.append(point)
                if report and (time.monotonic() - last_report >= report_every_s or self.step == self.opt.steps):
                    last_report = time.monotonic()
                    report(point)
            if checkpoint_dir and self.opt.checkpoint_every and self.step % self.opt.checkpoint_every == 0 \
                    and self.step < self.opt.steps:
                self.save_checkpoint(checkpoint_dir, history)
        if self.parallel is not None:
            self.parallel.barrier()  # no rank is still reading the cache when rank 0 moves on
        return history

    # -- checkpoints ---------------------------------------------------------------------

    def _fingerprint(self) -> dict[str, Any]:
        return {
            "shape": asdict(self.shape), "opt": {k: v for k, v in asdict(self.opt).items() if k != "checkpoint_every"}
        }

    def save_checkpoint(self, folder: Path, history: list[dict[str, float]]) -> Path | None:
        """Write ``step-NNNNNNNN.pt`` atomically; keep the two newest. Its path; None off rank 0.

        Under ``parallel`` every rank must call it (the latent shards are gathered on rank 0),
        and the file is the one a single process writes.
        """
        if self.parallel is not None:
            full = self.parallel.state_out(self)
        else:
            full = {"sae": self.sae.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "tokens_since_fired": self.tokens_since_fired}
        if full is None:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        state = {"fingerprint": self._fingerprint(), "step": self.step, **full,
                 "schedule": self.schedule.state_dict(), "history": history}
        path = folder / f"step-{self.step:08d}.pt"
        tmp = path.with_suffix(".pt.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
        for old in sorted(folder.glob("step-*.pt"))[:-2]:
            old.unlink(missing_ok=True)
        return path

    def load_latest(self, folder: Path) -> list[dict[str, float]] | None:
        """Resume from the newest checkpoint in ``folder`` made with the same settings; its history, or None.

        Under ``parallel`` every rank reads the same file and takes its part.
        """
        for path in sorted(folder.glob("step-*.pt"), reverse=True):
            try:
                state = torch.load(path, map_location=self.device, weights_only=False)
            except Exception:  # a torn file from a kill mid-write is skipped
                continue
            if state["fingerprint"] != self._fingerprint():
                return None
            if self.parallel is not None:
                self.parallel.state_in(self, state)
            else:
                self.sae.load_state_dict(state["sae"])
                self.optimizer.load_state_dict(state["optimizer"])
                self.tokens_since_fired.copy_(state["tokens_since_fired"])
            self.schedule.load_state_dict(state["schedule"])
            self.step = int(state["step"])
            self.initialised = True
            return list(state["history"])
        return None


def tensor_batches(data: np.ndarray, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Endless batches of an in-memory array, a seeded permutation per epoch (``fit_tensor``'s)."""
    epoch = 0
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(len(data))
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield data[order[i:i + batch_size]]
        epoch += 1


def fit_tensor(
    acts: torch.Tensor | np.ndarray, shape: SaeShape, opt: Optimisation, *, device: str = "cpu"
) -> tuple[SparseAutoencoder, dict[str, Any]]:
    """Train on an in-memory activation tensor [n, d_in] (benchmarks and tests); returns the SAE and timings."""
    data = np.ascontiguousarray(np.asarray(acts, dtype=np.float32))
    trainer = Trainer(shape, opt, device=device)
    trainer.initialise(data[np.random.default_rng(opt.seed).permutation(len(data))[:16_384]])

    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    history = trainer.fit(tensor_batches(data, opt.batch_size, opt.seed))
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return trainer.sae, {"seconds": seconds, "tokens_per_s": opt.steps * opt.batch_size / seconds, "history": history}
