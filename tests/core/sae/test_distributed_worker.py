"""Worker that ``test_distributed.py`` launches under torchrun (2 gloo ranks): distributed training against
the single-process reference on synthetic activations (a planted dictionary, labelled synthetic).

Run as ``torchrun --nproc-per-node 2 test_distributed_worker.py OUT.json``; rank 0 writes the largest
differences it measured to OUT.json. Importing it (pytest collects it) does nothing.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _opt(**kw: Any) -> Any:
    from interp_agent.core.sae.trainer import Optimisation

    base = dict(batch_size=256, steps=20, lr=3e-3, warmup_steps=3, decay_steps=5, sparsity_coefficient=0.0,
                aux_coefficient=1 / 32, dead_after_tokens=256, b_dec_init="median", seed=0, checkpoint_every=0)
    return Optimisation(**{**base, **kw})


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> dict[str, float]:
    """Largest absolute difference per tensor of two state dicts (the same keys)."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys(), (sa.keys(), sb.keys())
    return {k: float((sa[k].double() - sb[k].double()).abs().max()) for k in sa}


def _trained(ctx: Any, x: Any) -> dict[str, Any]:
    """Largest weight difference after 20 steps (AuxK active from step 2) per mode and architecture."""
    from interp_agent.core.sae.distributed import fit_distributed_tensor
    from interp_agent.core.sae.model import SaeShape
    from interp_agent.core.sae.trainer import fit_tensor

    out: dict[str, Any] = {}
    cases = [("data", "topk", 0.0), ("data", "batchtopk", 0.0), ("data", "relu", 0.3),
             ("latent", "topk", 0.0), ("latent", "batchtopk", 0.0)]
    for mode, arch, coef in cases:
        shape = SaeShape(arch, 32, 512, k=4 if arch != "relu" else None)  # type: ignore[arg-type]
        opt = _opt(sparsity_coefficient=coef)
        ours, stats = fit_distributed_tensor(x, shape, opt, ctx=replace(ctx, mode=mode))
        ref, ref_stats = fit_tensor(x, shape, opt)
        if ours is not None:
            out[f"{mode}/{arch}"] = _max_diff(ours, ref)
            out[f"{mode}/{arch}/final_loss"] = abs(stats["history"][-1]["loss"] - ref_stats["history"][-1]["loss"])
            out[f"{mode}/{arch}/aux_steps"] = sum("aux" in p for p in ref_stats["history"])
    return out


def _sharded_step(ctx: Any, arch: str) -> dict[str, float]:
    """One forward and backward of a latent-sharded SAE against the unsharded one, same weights."""
    import torch.distributed as dist

    from interp_agent.core.sae.distributed import LatentSharded, ShardedSparseAutoencoder
    from interp_agent.core.sae.model import SaeShape, SparseAutoencoder

    torch.manual_seed(0)
    full = SparseAutoencoder(SaeShape(arch, 16, 40, k=5), generator=torch.Generator().manual_seed(1))  # type: ignore[arg-type]
    with torch.no_grad():
        full.b_enc.normal_()
        full.b_dec.normal_()
    shard = ShardedSparseAutoencoder(full, replace(ctx, mode="latent"))
    par = LatentSharded(shard.ctx)
    x = torch.randn(24, 16)
    ref, got = full(x), shard(x)
    (ref.recon - x).pow(2).mean().backward()
    ((got.recon - x).pow(2).mean() * par.loss_scale).backward()
    par.reduce_grads(shard)
    assert ref.code is not None and got.code is not None
    pairs = torch.stack([got.code.rows, got.code.cols + shard.offset], 1).tolist()
    parts: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(parts, pairs)
    chosen = {tuple(p) for part in parts for p in part}
    expected = {tuple(p) for p in torch.stack([ref.code.rows, ref.code.cols], 1).tolist()}
    rows = slice(shard.offset, shard.offset + shard.d_local)
    ref_grads = {n: p.grad if n == "b_dec" else p.grad[rows] for n, p in full.named_parameters() if p.grad is not None}
    grads = {n: float((p.grad - ref_grads[n]).abs().max()) for n, p in shard.named_parameters() if p.grad is not None}
    assert grads.keys() == {"W_dec", "W_enc", "b_enc", "b_dec"}
    worst = torch.tensor([max(grads.values()), float((got.recon - ref.recon).detach().abs().max())])
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)
    return {f"step/{arch}/grad": float(worst[0]), f"step/{arch}/recon": float(worst[1]),
            f"step/{arch}/same_selection": float(chosen == expected), f"step/{arch}/n_selected": len(chosen)}


def _resumed(ctx: Any, x: Any, folder: str) -> dict[str, Any]:
    """10 latent-sharded steps, a checkpoint, a fresh sharded trainer that resumes it for 10 more: the
    single-process run of 20 steps (the checkpoint is the single-process file, gathered on rank 0)."""
    import torch.distributed as dist

    from interp_agent.core.sae.distributed import make_parallel
    from interp_agent.core.sae.model import SaeShape
    from interp_agent.core.sae.trainer import Trainer, fit_tensor, tensor_batches

    shape, opt, lctx = SaeShape("topk", 32, 512, k=4), _opt(), replace(ctx, mode="latent")
    data = x.astype("float32")
    sample = data[np.random.default_rng(0).permutation(len(data))[:16_384]]
    first = Trainer(shape, opt, parallel=make_parallel(lctx))
    first.initialise(sample)
    history = first.fit(islice(tensor_batches(data, 256, 0), 10))  # stops after 10 of the 20 steps
    first.save_checkpoint(Path(folder), history)
    dist.barrier()
    second = Trainer(shape, opt, parallel=make_parallel(lctx))
    assert second.load_latest(Path(folder)) is not None and second.step == 10
    second.fit(islice(tensor_batches(data, 256, 0), 10, None))
    full = second.parallel.full_sae(second.sae)  # type: ignore[union-attr]
    ref, _ = fit_tensor(data, shape, opt)
    return {"latent/resumed": _max_diff(full, ref)} if full is not None else {}


def main(out_path: str) -> None:
    """Every check on this rank; rank 0 writes the results."""
    torch.set_num_threads(1)
    from sae_planted import planted

    from interp_agent.core.sae.distributed import init_distributed, shutdown

    ctx = init_distributed("cpu", timeout_s=120)
    x, _ = planted(n=4_000)
    results: dict[str, Any] = {"world_size": ctx.world_size}
    results |= _sharded_step(ctx, "topk")
    results |= _sharded_step(ctx, "batchtopk")
    results |= _trained(ctx, x)
    results |= _resumed(ctx, x, str(Path(out_path).parent / "checkpoints"))
    shutdown()
    if ctx.is_main:
        with open(out_path, "w") as fh:
            json.dump(results, fh)


if __name__ == "__main__":
    main(sys.argv[1])
