"""SAE training over several processes under ``torchrun``: data parallel, or the latents sharded.

Launch (every rank runs the same command; see docs/sae-training.md)::

    torchrun --nproc-per-node N -m interp_agent train-sae --distributed [--shard-latents] ...

The process group comes from torchrun's environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``): gloo on the CPU, NCCL on CUDA with rank r
on ``cuda:LOCAL_RANK``. Collectives time out (``timeout_s``), so a rank blocked on a dead
peer fails instead of hanging; torchrun then stops the others.

**Data parallel** (``mode="data"``): every rank holds the whole SAE and every rank reads the
same deterministic whole batch of the activation cache (so every rank reads every shard
file); rank r keeps rows ``[r·b/W, (r+1)·b/W)`` of it and drops the rest. Gradients are
averaged over the ranks before the optimiser step; the dead-latent counters, BatchTopK's
batch-wide selection and threshold, AuxK's dead mask and the reported terms are combined
over the ranks. With equal slices the mean loss over the whole batch is the average of the
ranks' means, so a step is the single-process step on the whole batch, up to float
summation order.

**Latents sharded** (``mode="latent"``, topk and batchtopk): rank r holds rows
``[r·d_sae/W, (r+1)·d_sae/W)`` of ``W_enc`` / ``b_enc`` / ``W_dec`` (``b_dec`` is
replicated) and the whole batch. Each rank takes the top k of its own pre-activations;
an ``all_gather`` of those candidates gives every rank the global top k of each row (the
unsharded selection, ties aside); each rank decodes its winners and an autograd-aware
``all_reduce`` sums the partial reconstructions. The loss is scaled by 1/W on each rank
(the sum's backward adds the W identical upstream gradients) and the replicated ``b_dec``'s
gradient is summed over the ranks. Checkpoints and the saved SAE are gathered on rank 0 in
the single-process layout, so a checkpoint resumes under either mode or in one process.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.distributed as dist

from interp_agent.core.errors import ValidationError
from interp_agent.core.sae.model import SPARSE_ARCHITECTURES, Forward, SaeShape, SparseAutoencoder

if TYPE_CHECKING:
    from interp_agent.core.sae.trainer import Optimisation, Trainer

Mode = Literal["data", "latent"]
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
DEFAULT_TIMEOUT_S = 1800.0
LAUNCH = "torchrun --nproc-per-node N -m interp_agent train-sae --distributed ..."


@dataclass(frozen=True, slots=True)
class DistContext:
    """This process's place in a torchrun job."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    """``gloo`` or ``nccl``."""
    device: torch.device
    """``cpu``, or ``cuda:LOCAL_RANK``."""
    mode: Mode
    """``data`` (data parallel) or ``latent`` (latents sharded)."""

    @property
    def is_main(self) -> bool:
        """Rank 0, which writes the checkpoints and every artifact."""
        return self.rank == 0

    def describe(self) -> dict[str, Any]:
        """The facts a run's metadata records."""
        return {"world_size": self.world_size, "backend": self.backend,
                "mode": {"data": "data_parallel", "latent": "latent_sharded"}[self.mode]}


def under_torchrun() -> bool:
    """Whether torchrun's environment variables are all set."""
    return all(os.environ.get(v) for v in TORCHRUN_VARS)


def init_distributed(device: str = "auto", *, mode: Mode = "data", timeout_s: float = DEFAULT_TIMEOUT_S) -> DistContext:
    """Join torchrun's process group (or reuse the one already joined).

    Args:
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``; CUDA ranks use ``cuda:LOCAL_RANK``.
        mode: ``data`` or ``latent``.
        timeout_s: How long a collective waits for a peer before it fails.

    Returns:
        The context of this process.

    Raises:
        ValidationError: not launched by torchrun, or CUDA asked for without a CUDA device.
    """
    if not under_torchrun():
        missing = [v for v in TORCHRUN_VARS if not os.environ.get(v)]
        raise ValidationError(
            f"--distributed needs to be launched by torchrun (missing {', '.join(missing)})",
            hint=f"run `{LAUNCH}`, or leave out --distributed for one process",
        )
    rank, world, local = (int(os.environ[v]) for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise ValidationError("device cuda asked for but torch sees no CUDA device", hint="use --device cpu (gloo)")
    dev = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s), rank=rank, world_size=world,
                                device_id=dev if use_cuda else None)
    return DistContext(rank, world, local, dist.get_backend(), dev, mode)


def shutdown(*, wait_for_all: bool = False) -> None:
    """Leave the process group (no-op when none is joined).

    ``wait_for_all``: first wait at a barrier until every rank is done, so that no rank tears
    its connections down while rank 0 still gathers or writes (a run that ended normally; after
    an error on one rank the others would only wait out the timeout).
    """
    if dist.is_initialized():
        if wait_for_all:
            dist.barrier()
        dist.destroy_process_group()


def check_divisible(batch_size: int, d_sae: int, ctx: DistContext) -> None:
    """Raise a ValidationError unless the batch (data) or the latents (sharded) split evenly over the ranks."""
    w = ctx.world_size
    if ctx.mode == "data" and batch_size % w:
        raise ValidationError(f"batch size {batch_size} does not split evenly over {w} ranks",
                              hint=f"use a --batch-size that is a multiple of {w}")
    if ctx.mode == "latent" and d_sae % w:
        raise ValidationError(f"latent dim {d_sae} does not split evenly over {w} ranks",
                              hint=f"use a --latent-dim that is a multiple of {w}")


# -- collectives -------------------------------------------------------------------------


class _Collective:
    """BatchTopK's batch-wide selection across ranks (``model.BatchCollective``)."""

    def __init__(self, rows_factor: int, world: int) -> None:
        self.rows_factor, self.world = rows_factor, world

    def kth_largest(self, flat: torch.Tensor, k: int) -> torch.Tensor:
        """The k-th largest of all ranks' values: the union of each rank's k largest holds it."""
        local = flat.topk(min(k, flat.numel()), sorted=False).values.contiguous()
        parts = [torch.empty_like(local) for _ in range(self.world)]
        dist.all_gather(parts, local)
        every = torch.cat(parts)
        return every.topk(min(k, every.numel()), sorted=False).values.min()

    def global_min(self, value: torch.Tensor) -> torch.Tensor:
        """The smallest of the ranks' scalars."""
        out = value.detach().reshape(1).clone()
        dist.all_reduce(out, op=dist.ReduceOp.MIN)
        return out[0]


def _sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over the ranks (in place, no grad)."""
    dist.all_reduce(t)
    return t


# -- data parallel -----------------------------------------------------------------------


class DataParallel:
    """The ``trainer.Parallel`` of data parallelism: a slice of each batch per rank, averaged gradients."""

    loss_scale = 1.0

    def __init__(self, ctx: DistContext) -> None:
        self.ctx = ctx
        self.is_main = ctx.is_main
        self.rows_factor = ctx.world_size

    def wrap(self, sae: SparseAutoencoder) -> SparseAutoencoder:
        """The full SAE on every rank, BatchTopK selecting over the whole batch."""
        if sae.shape.architecture == "batchtopk":
            sae.batch_collective = _Collective(self.ctx.world_size, self.ctx.world_size)
        return sae

    def local_rows(self, batch: np.ndarray) -> np.ndarray:
        """Rows ``[r·b/W, (r+1)·b/W)`` of the whole batch."""
        per = len(batch) // self.ctx.world_size
        return batch[self.ctx.rank * per:(self.ctx.rank + 1) * per]

    @torch.no_grad()
    def synchronise(self, sae: SparseAutoencoder) -> None:
        """Broadcast rank 0's parameters and buffers (they already agree on a CPU; this makes it certain)."""
        for t in [*sae.parameters(), *sae.buffers()]:
            dist.broadcast(t.data, src=0)

    @torch.no_grad()
    def reduce_grads(self, sae: SparseAutoencoder) -> None:
        """Average the gradients over the ranks, in one flat all_reduce."""
        params = list(sae.parameters())
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        _sum(flat).div_(self.ctx.world_size)
        start = 0
        for p in params:
            n = p.numel()
            p.grad = flat[start:start + n].view_as(p).clone()
            start += n

    def count(self, mask: torch.Tensor) -> int:
        """Latents set in ``mask`` (the counters agree on every rank)."""
        return int(mask.sum())

    def fired(self, fired: torch.Tensor) -> torch.Tensor:
        """Latents that fired on any rank's rows."""
        out = fired.to(torch.int32)
        dist.all_reduce(out, op=dist.ReduceOp.MAX)
        return out.bool()

    def fvu(self, err: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Σ err² / Σ (x - mean x)² over the whole batch, from summed first and second moments (float64)."""
        n = x.shape[0] * self.ctx.world_size
        xd = x.double()
        stats = _sum(torch.cat([err.double().pow(2).sum().reshape(1), xd.sum(0), xd.pow(2).sum(0)]))
        d = x.shape[1]
        mean = stats[1:1 + d] / n
        total = (stats[1 + d:] - n * mean.pow(2)).sum()
        return (stats[0] / total.clamp_min(1e-12)).float()

    def mean_terms(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each term averaged over the ranks (means over equal slices)."""
        keys = sorted(terms)
        means = _sum(torch.stack([terms[k].float().reshape(()) for k in keys])) / self.ctx.world_size
        return dict(zip(keys, means, strict=True))

    def state_out(self, trainer: Trainer) -> dict[str, Any] | None:
        """The replica's state, on rank 0."""
        if not self.is_main:
            return None
        return {"sae": trainer.sae.state_dict(), "optimizer": trainer.optimizer.state_dict(),
                "tokens_since_fired": trainer.tokens_since_fired}

    def state_in(self, trainer: Trainer, state: dict[str, Any]) -> None:
        """Every rank loads the whole checkpoint."""
        trainer.sae.load_state_dict(state["sae"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.tokens_since_fired.copy_(state["tokens_since_fired"])

    def barrier(self) -> None:
        """Wait for every rank."""
        dist.barrier()

    def full_sae(self, sae: SparseAutoencoder) -> SparseAutoencoder | None:
        """The trained SAE (every rank holds it), no longer selecting across ranks."""
        sae.batch_collective = None
        return sae


# -- latents sharded ---------------------------------------------------------------------


class _AllReduceSum(torch.autograd.Function):
    """``all_reduce(SUM)`` with gradients: y = Σ_r x_r, so ∂L/∂x_r = Σ_s ∂L_s/∂y, another sum."""

    @staticmethod
    def forward(ctx: Any, partial: torch.Tensor) -> torch.Tensor:
        return _sum(partial.clone())

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return _sum(grad.contiguous().clone())

SHARDED_PARAMS = frozenset({"W_dec", "W_enc", "b_enc"})
"""Parameters split along d_sae (rows); ``b_dec`` and the buffers are replicated."""


class ShardedSparseAutoencoder(SparseAutoencoder):
    """Rank r's latents ``[offset, offset + d_local)`` of a topk or batchtopk SAE (see the module docstring)."""

    def __init__(self, full: SparseAutoencoder, ctx: DistContext) -> None:
        torch.nn.Module.__init__(self)
        shape = full.shape
        if shape.architecture not in SPARSE_ARCHITECTURES:
            raise ValidationError(f"latent sharding supports topk and batchtopk, not {shape.architecture}",
                                  hint="leave out --shard-latents (data parallel) for relu and jumprelu")
        self.shape, self.ctx = shape, ctx
        self.d_local = shape.d_sae // ctx.world_size
        self.offset = ctx.rank * self.d_local
        rows = slice(self.offset, self.offset + self.d_local)
        self.W_dec = torch.nn.Parameter(full.W_dec.detach()[rows].clone())
        self.W_enc = torch.nn.Parameter(full.W_enc.detach()[rows].clone())
        self.b_enc = torch.nn.Parameter(full.b_enc.detach()[rows].clone())
        self.b_dec = torch.nn.Parameter(full.b_dec.detach().clone())
        self.log_threshold = None
        for name, buf in full.named_buffers():
            self.register_buffer(name, buf.clone())
        self.matmul_dtype = full.matmul_dtype
        self.batch_collective = _Collective(1, ctx.world_size) if shape.architecture == "batchtopk" else None

    def global_topk(self, pre: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows and local columns of this rank's winners of each row's global top ``k``, grouped by row.

        Each rank's ``min(k, d_local)`` largest hold every row's global top k, so gathering
        those candidates and taking the top k of them is the unsharded selection.
        """
        top = pre.topk(min(k, self.d_local), dim=1, sorted=False)
        values, index = top.values.contiguous(), (top.indices + self.offset).contiguous()
        v_parts = [torch.empty_like(values) for _ in range(self.ctx.world_size)]
        i_parts = [torch.empty_like(index) for _ in range(self.ctx.world_size)]
        dist.all_gather(v_parts, values)
        dist.all_gather(i_parts, index)
        cand_i = torch.cat(i_parts, 1)
        winners = cand_i.gather(1, torch.cat(v_parts, 1).topk(k, dim=1, sorted=False).indices)
        mine = (winners >= self.offset) & (winners < self.offset + self.d_local)
        rows, j = mine.nonzero(as_tuple=True)
        return rows, winners[rows, j] - self.offset

    def _select(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.shape.architecture == "topk":
            return self.global_topk(pre, self.shape.sparse_k)
        return super()._select(pre)  # batchtopk: the batch-wide threshold over every rank's columns

    @staticmethod
    def _reduce(partial: torch.Tensor) -> torch.Tensor:
        """Sum of the ranks' partial reconstructions; its backward sums the ranks' upstream gradients."""
        out = _AllReduceSum.apply(partial)
        assert isinstance(out, torch.Tensor)
        return out

    def forward(self, x: torch.Tensor) -> Forward:
        """Encode and decode the whole batch ``x`` with this rank's latents; ``recon`` is the full one."""
        with torch.no_grad():
            pre = self.pre_acts(x)
            rows, cols = self._select(pre)
        code = self._code(x, pre, rows, cols)
        active = code.values > 0
        fired = torch.zeros(self.d_local, dtype=torch.bool, device=x.device)
        fired[cols[active]] = True
        l0 = _sum(active.sum().float().reshape(1))[0] / x.shape[0]
        if self.shape.architecture == "batchtopk" and self.training:
            self._update_batch_threshold(code.values)
        recon = self._reduce(self.decode_code(code, bias=False)) + self.b_dec
        return Forward(recon, code, None, pre, fired, l0.detach())

    @torch.no_grad()
    def aux_select(self, pre: torch.Tensor, dead: torch.Tensor, k_aux: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's part of each row's ``k_aux`` largest pre-activations among the dead latents of all ranks."""
        n_dead = int(_sum(dead.sum().reshape(1))[0])
        return self.global_topk(pre.masked_fill(~dead, -math.inf), min(k_aux, n_dead))

    def aux_recon(self, x: torch.Tensor, pre: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """The selected dead latents' summed decoder output (no bias), with gradients into this rank's shard."""
        return self._reduce(self.decode_code(self._code(x, pre, rows, cols), bias=False))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Not defined on a shard: gather the SAE first (``LatentSharded.full_sae``)."""
        raise ValidationError("a latent shard cannot encode on its own", hint="gather it with LatentSharded.full_sae")


class LatentSharded:
    """The ``trainer.Parallel`` of latent sharding: the whole batch on every rank, d_sae split."""

    rows_factor = 1

    def __init__(self, ctx: DistContext) -> None:
        self.ctx = ctx
        self.is_main = ctx.is_main
        self.loss_scale = 1.0 / ctx.world_size

    def wrap(self, sae: SparseAutoencoder) -> SparseAutoencoder:
        """This rank's shard of the full SAE (every rank builds the same full SAE from the seed)."""
        return ShardedSparseAutoencoder(sae, self.ctx)

    def local_rows(self, batch: np.ndarray) -> np.ndarray:
        """The whole batch."""
        return batch

    @torch.no_grad()
    def synchronise(self, sae: SparseAutoencoder) -> None:
        """Broadcast rank 0's replicated ``b_dec`` and buffers."""
        for t in [sae.b_dec, *sae.buffers()]:
            dist.broadcast(t.data, src=0)

    @torch.no_grad()
    def reduce_grads(self, sae: SparseAutoencoder) -> None:
        """Sum the replicated ``b_dec``'s gradient: its direct part is 1/W per rank, its encoder part per shard."""
        if sae.b_dec.grad is not None:
            _sum(sae.b_dec.grad)

    def count(self, mask: torch.Tensor) -> int:
        """Latents set in the shards' masks, summed."""
        return int(_sum(mask.sum().reshape(1))[0])

    def fired(self, fired: torch.Tensor) -> torch.Tensor:
        """This shard's mask (each rank counts its own latents)."""
        return fired

    def fvu(self, err: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The whole batch's FVU (every rank holds the whole reconstruction)."""
        from interp_agent.core.sae.trainer import batch_fvu

        return batch_fvu(err, x)

    def mean_terms(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The terms (already the whole batch's on every rank)."""
        return terms

    def _gather_rows(self, t: torch.Tensor) -> torch.Tensor | None:
        """The shards of ``t`` stacked along dim 0 on rank 0 (CPU); None elsewhere."""
        t = t.detach().contiguous()
        parts = [torch.empty_like(t) for _ in range(self.ctx.world_size)] if self.is_main else None
        dist.gather(t, parts, dst=0)
        return torch.cat(parts).cpu() if parts is not None else None

    def _gather_sae(self, sae: SparseAutoencoder) -> dict[str, Any]:
        return {k: self._gather_rows(v) if k in SHARDED_PARAMS else v.detach().cpu()
                for k, v in sae.state_dict().items()}

    def state_out(self, trainer: Trainer) -> dict[str, Any] | None:
        """The single-process checkpoint state, gathered on rank 0 (every rank must call it)."""
        names = [n for n, _ in trainer.sae.named_parameters()]
        opt = trainer.optimizer.state_dict()
        sae = self._gather_sae(trainer.sae)
        state = {idx: {k: self._gather_rows(v) if names[idx] in SHARDED_PARAMS and v.dim() else v
                       for k, v in sorted(st.items())} for idx, st in sorted(opt["state"].items())}
        fired = self._gather_rows(trainer.tokens_since_fired)
        if not self.is_main:
            return None
        return {"sae": sae, "optimizer": {"state": state, "param_groups": opt["param_groups"]},
                "tokens_since_fired": fired}

    def state_in(self, trainer: Trainer, state: dict[str, Any]) -> None:
        """Take this rank's rows of a single-process checkpoint state."""
        sae = trainer.sae
        assert isinstance(sae, ShardedSparseAutoencoder)
        rows = slice(sae.offset, sae.offset + sae.d_local)
        names = [n for n, _ in sae.named_parameters()]
        sae.load_state_dict({k: v[rows] if k in SHARDED_PARAMS else v for k, v in state["sae"].items()})
        opt = state["optimizer"]
        trainer.optimizer.load_state_dict({"param_groups": opt["param_groups"], "state": {
            idx: {k: v[rows] if names[idx] in SHARDED_PARAMS and v.dim() else v for k, v in st.items()}
            for idx, st in opt["state"].items()}})
        trainer.tokens_since_fired.copy_(state["tokens_since_fired"][rows])

    def barrier(self) -> None:
        """Wait for every rank."""
        dist.barrier()

    def full_sae(self, sae: SparseAutoencoder) -> SparseAutoencoder | None:
        """The whole trained SAE on rank 0 (CPU), gathered from the shards; None on the other ranks."""
        state = self._gather_sae(sae)
        if not self.is_main:
            return None
        full = SparseAutoencoder(sae.shape)
        full.load_state_dict(state)
        full.matmul_dtype = sae.matmul_dtype
        return full


def make_parallel(ctx: DistContext) -> DataParallel | LatentSharded:
    """The training loop's ``Parallel`` for the context's mode."""
    return DataParallel(ctx) if ctx.mode == "data" else LatentSharded(ctx)


def fit_distributed_tensor(
    acts: torch.Tensor | np.ndarray, shape: SaeShape, opt: Optimisation, *, mode: Mode = "data",
    device: str = "auto", ctx: DistContext | None = None,
) -> tuple[SparseAutoencoder | None, dict[str, Any]]:
    """``trainer.fit_tensor`` under torchrun: every rank calls it with the same ``acts`` (benchmarks, tests).

    ``opt.batch_size`` is the whole batch (the single-process one); under ``data`` each rank
    trains on ``batch_size / W`` of its rows. The process group is joined when ``ctx`` is None
    and left to the caller either way (:func:`shutdown`).

    Args:
        acts: Activations [n, d_in], the same on every rank.
        shape: The SAE.
        opt: The loop's settings (``checkpoint_every`` is ignored: nothing is written).
        mode: ``data`` or ``latent``.
        device: As in :func:`init_distributed`.
        ctx: A context already joined.

    Returns:
        The trained SAE (None off rank 0 when sharded) and ``{seconds, tokens_per_s,
        rows_per_s_per_rank, world_size, backend, mode, history}``; ``tokens_per_s`` counts the
        whole batches, ``rows_per_s_per_rank`` the rows one rank encodes.

    Raises:
        ValidationError: not under torchrun, or a batch / latent dim that does not split evenly.
    """
    from interp_agent.core.sae.trainer import Trainer, tensor_batches

    ctx = ctx or init_distributed(device, mode=mode)
    check_divisible(opt.batch_size, shape.d_sae, ctx)
    par = make_parallel(ctx)
    data = np.ascontiguousarray(np.asarray(acts, dtype=np.float32))
    trainer = Trainer(shape, opt, device=ctx.device, parallel=par)
    trainer.initialise(data[np.random.default_rng(opt.seed).permutation(len(data))[:16_384]])
    par.barrier()
    if ctx.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    history = trainer.fit(tensor_batches(data, opt.batch_size, opt.seed))
    if ctx.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    local_rows = opt.batch_size // ctx.world_size if ctx.mode == "data" else opt.batch_size
    return par.full_sae(trainer.sae), {
        "seconds": seconds, "tokens_per_s": opt.steps * opt.batch_size / seconds,
        "rows_per_s_per_rank": opt.steps * local_rows / seconds, **ctx.describe(), "history": history,
    }
