"""Benchmark: scale-out on existing engines — weak scaling of sharded harvesting (Ray) and of data-parallel
SAE training (torchrun), and, on a GPU, our large-shape training against a dense-torch TopK SAE.

Weak scaling: W workers get W times the work of one; efficiency = throughput(W) / (W * throughput(1)),
both measured in this run (the 1-worker run is the baseline). Each count runs ``--repeat`` times in
alternating order and the median run is reported; the harvest first runs an untimed warm-up (a fresh
cluster's first actors pay its worker start-up and cold imports, which would flatter 2 workers).

- harvest: ``harvest_shards`` with the Ray engine, each worker one model replica (the embedded SmolLM2-135M)
  with 1 torch thread, on contexts of the built-in corpus (generated English, labelled synthetic in
  interp-agent's corpus metadata). Two figures: *wall* (submit to manifest, actor start and model load
  included: what a user waits) and *steady* (tokens over the busiest worker's summed shard seconds).
- dp training: ``fit_distributed_tensor`` under ``torchrun --nproc-per-node W`` (gloo on the CPU, NCCL on
  CUDA), each rank training on ``--batch-per-rank`` rows of every global batch, 1 torch thread per rank,
  on SYNTHETIC rows (the generator of tools/bench/sae_train.py). Timed: the training loop only.
- ``--dense-baseline``: our TopK trainer (sparse decode through the selected latents, fused gather of the
  pre-activations) against a plain dense-torch TopK SAE (encoder matmul, top-k, scatter into a dense
  [batch, d_sae] code, dense decoder matmul, autograd, Adam), same rows, batch, steps and optimiser, on
  the device given. The goal is on an H100-class GPU at d_in 2304, d_sae 65,536, k 64 (``--gpu-large``):
  ours >= 3x dense torch. On the CPU it runs at a smaller shape and is reported as a CPU figure.

Ray needs a network: on a machine with root this script re-runs itself in a loopback-only network
namespace (``unshare -n``) so the local Ray cluster binds nothing outside it; elsewhere it runs as is.

    python tools/bench/scale.py                      # harvest + dp training, 1 -> 2 workers, CPU
    python tools/bench/scale.py --only dp --steps 40
    python tools/bench/scale.py --only dense --dense-baseline
    python tools/bench/scale.py --only dense --gpu-large --device cuda   # the GPU goal
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

HARVEST_GOAL = 0.85
DP_GOAL = 0.85
DENSE_GOAL = 3.0
_IN_NETNS = "INTERP_AGENT_BENCH_NETNS"


def _loopback_only() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def _reexec_in_netns() -> None:
    """Run this script again inside ``unshare -n`` (root only), once."""
    if os.environ.get(_IN_NETNS) or _loopback_only() or os.geteuid() != 0:
        return
    cmd = " ".join([sys.executable, *map(_quote, sys.argv)])
    env = os.environ | {_IN_NETNS: "1", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    code = subprocess.call(["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {cmd}"], env=env)
    sys.exit(code)


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


# --- harvesting ---------------------------------------------------------------------------


def _harvest_once(workers: int, contexts: int, shard_size: int, address: str, out: Path) -> dict[str, Any]:
    from interp_agent.core.shards.inputs import HarvestInputs
    from interp_agent.core.shards.run import harvest_shards

    inputs = HarvestInputs(kind="corpus", spec="builtin", context_length=64, max_contexts=contexts)
    start = time.perf_counter()
    manifest = harvest_shards("smollm2-135m", "blocks.15.hook_resid_post", inputs, out, shard_size=shard_size,
                              workers=workers, engine="ray", ray_address=address, torch_threads=1)
    wall = time.perf_counter() - start
    busy: dict[str, float] = defaultdict(float)
    for shard in manifest.shards:
        busy[shard.worker] += shard.seconds
    tokens = sum(s.n_tokens for s in manifest.shards)
    return {"workers": workers, "contexts": contexts, "shards": len(manifest.shards), "tokens": tokens,
            "wall_s": wall, "wall_tokens_per_s": tokens / wall,
            "steady_tokens_per_s": tokens / max(busy.values()), "workers_seen": len(busy)}


def bench_harvest(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             object_store_memory=256 * 1024 * 1024)
    address = ray.get_runtime_context().gcs_address
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # untimed: the first actors of a fresh cluster pay its worker start-up and cold imports
            _harvest_once(2, 2 * args.shard_size, args.shard_size, address, Path(tmp) / "warm-up")
            tried: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
            for rep in range(args.repeat):
                for workers in ((1, 2) if rep % 2 == 0 else (2, 1)):
                    tried[workers].append(_harvest_once(workers, args.contexts_per_worker * workers, args.shard_size,
                                                        address, Path(tmp) / f"r{rep}-w{workers}"))
    finally:
        ray.shutdown()
    one, two = (_median_run(tried[w], "steady_tokens_per_s") for w in (1, 2))
    return {"runs": [one, two], "repeats": args.repeat,
            "wall_efficiency": two["wall_tokens_per_s"] / (2 * one["wall_tokens_per_s"]),
            "steady_efficiency": two["steady_tokens_per_s"] / (2 * one["steady_tokens_per_s"])}


def _median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r[key])[len(runs) // 2]


# --- data-parallel training -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dp_worker(args: argparse.Namespace) -> None:
    """One torchrun rank: train on synthetic rows, rank 0 writes the timing to ``--result``."""
    torch.set_num_threads(1)
    from interp_agent.core.sae.distributed import fit_distributed_tensor, shutdown
    from interp_agent.core.sae.model import SaeShape
    from interp_agent.core.sae.trainer import Optimisation, default_lr

    world = int(os.environ["WORLD_SIZE"])
    rows = _synthetic(args.rows, args.d_in, seed=0)
    batch = args.batch_per_rank * world
    opt = Optimisation(batch_size=batch, steps=args.steps, lr=default_lr(args.d_sae), warmup_steps=2,
                       decay_steps=0, sparsity_coefficient=0.0, aux_coefficient=1 / 32,
                       dead_after_tokens=50 * batch, b_dec_init="mean", seed=0, checkpoint_every=0)
    _, timing = fit_distributed_tensor(rows, SaeShape("topk", args.d_in, args.d_sae, args.k), opt, device=args.device)
    if int(os.environ["RANK"]) == 0:
        timing.pop("history", None)
        Path(args.result).write_text(json.dumps(timing))
    shutdown()


def _synthetic(rows: int, d_in: int, *, seed: int) -> np.ndarray:
    sys.path.insert(0, str(Path(__file__).parent))
    from sae_train import synthetic_rows  # the sae_train bench's generator (power-law atoms)

    return synthetic_rows(rows, d_in, device="cpu", seed=seed)


def _torchrun(world: int, args: argparse.Namespace, result: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={world}", "--master-addr=127.0.0.1",
           f"--master-port={_free_port()}", __file__, "--_dp-worker", "--result", str(result),
           "--rows", str(args.rows), "--d-in", str(args.d_in), "--d-sae", str(args.d_sae), "--k", str(args.k),
           "--steps", str(args.steps), "--batch-per-rank", str(args.batch_per_rank), "--device", args.device]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    subprocess.run(cmd, check=True, env=env, timeout=1800)
    return json.loads(result.read_text())


def bench_dp(args: argparse.Namespace) -> dict[str, Any]:
    tried: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):
            for w in ((1, 2) if rep % 2 == 0 else (2, 1)):
                tried[w].append(_torchrun(w, args, Path(tmp) / f"r{rep}-w{w}.json"))
    one, two = (_median_run(tried[w], "tokens_per_s") for w in (1, 2))
    return {"runs": [one, two], "repeats": args.repeat, "efficiency": two["tokens_per_s"] / (2 * one["tokens_per_s"])}


# --- ours against a dense-torch TopK SAE ------------------------------------------------------


class DenseTopK(torch.nn.Module):
    """The plain TopK SAE a first implementation writes: dense code, dense decoder matmul, autograd."""

    def __init__(self, d_in: int, d_sae: int, k: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        w = torch.randn(d_in, d_sae, generator=g) / d_in ** 0.5
        self.W_enc = torch.nn.Parameter(w)
        self.b_enc = torch.nn.Parameter(torch.zeros(d_sae))
        self.W_dec = torch.nn.Parameter(w.t().clone())
        self.b_dec = torch.nn.Parameter(torch.zeros(d_in))
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)
        values, idx = pre.topk(self.k, dim=-1)
        code = torch.zeros_like(pre).scatter_(-1, idx, values)
        return code @ self.W_dec + self.b_dec


def _time_dense(rows: torch.Tensor, d_sae: int, k: int, batch: int, steps: int, bf16: bool) -> float:
    model = DenseTopK(rows.shape[1], d_sae, k).to(rows.device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    gen = torch.Generator(device=rows.device).manual_seed(0)
    order = [torch.randint(0, len(rows), (batch,), generator=gen, device=rows.device) for _ in range(steps + 3)]

    def step(i: int) -> None:
        x = rows[order[i]]
        with torch.autocast(rows.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = (model(x).float() - x).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for i in range(3):
        step(i)
    _sync(rows.device)
    start = time.perf_counter()
    for i in range(3, steps + 3):
        step(i)
    _sync(rows.device)
    return steps * batch / (time.perf_counter() - start)


def _time_ours(rows: torch.Tensor, d_sae: int, k: int, batch: int, steps: int, bf16: bool) -> float:
    from interp_agent.core.sae.model import SaeShape
    from interp_agent.core.sae.trainer import Optimisation, Trainer

    opt = Optimisation(batch_size=batch, steps=steps + 3, lr=1e-4, warmup_steps=1, decay_steps=0,
                       sparsity_coefficient=0.0, aux_coefficient=1 / 32, dead_after_tokens=10**9,
                       b_dec_init="mean", seed=0, checkpoint_every=0, bf16_matmul=bf16)
    trainer = Trainer(SaeShape("topk", rows.shape[1], d_sae, k), opt, device=rows.device)
    trainer.initialise(rows[:4096].cpu().numpy())
    gen = torch.Generator(device=rows.device).manual_seed(0)
    order = [torch.randint(0, len(rows), (batch,), generator=gen, device=rows.device) for _ in range(steps + 3)]
    for i in range(3):
        trainer.train_step(rows[order[i]])
    _sync(rows.device)
    start = time.perf_counter()
    for i in range(3, steps + 3):
        trainer.train_step(rows[order[i]])
    _sync(rows.device)
    return steps * batch / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_dense(args: argparse.Namespace) -> dict[str, Any]:
    d_in, d_sae, k = (2304, 65_536, 64) if args.gpu_large else (args.d_in, args.dense_d_sae, args.k)
    device = torch.device(args.device)
    bf16 = args.gpu_large or device.type == "cuda"
    rows = torch.from_numpy(_synthetic(args.dense_rows, d_in, seed=1)).to(device)
    ours = _time_ours(rows, d_sae, k, args.dense_batch, args.dense_steps, bf16)
    dense = _time_dense(rows, d_sae, k, args.dense_batch, args.dense_steps, bf16)
    return {"shape": [d_in, d_sae, k], "device": str(device), "bf16": bf16, "batch": args.dense_batch,
            "steps": args.dense_steps, "ours_tokens_per_s": ours, "dense_tokens_per_s": dense, "ratio": ours / dense}


# --- main ---------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["harvest", "dp", "dense"], action="append", help="sections to run (repeatable)")
    p.add_argument("--contexts-per-worker", type=int, default=96, help="harvest contexts (64 tokens) per worker")
    p.add_argument("--shard-size", type=int, default=16, help="harvest contexts per shard")
    p.add_argument("--rows", type=int, default=32_768, help="synthetic rows of the dp runs")
    p.add_argument("--d-in", type=int, default=576)
    p.add_argument("--d-sae", type=int, default=4096)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-per-rank", type=int, default=4096, help="rows per rank and step (default 4096)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dense-baseline", action="store_true", help="also run ours against the dense-torch TopK SAE")
    p.add_argument("--gpu-large", action="store_true", help="dense section at 2304 x 65,536, k 64, bf16 (CUDA)")
    p.add_argument("--dense-d-sae", type=int, default=16_384)
    p.add_argument("--dense-rows", type=int, default=65_536)
    p.add_argument("--dense-batch", type=int, default=4096)
    p.add_argument("--dense-steps", type=int, default=20)
    p.add_argument("--repeat", type=int, default=3, help="runs of each worker count, alternating order; the median "
                   "is reported (default 3)")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--_dp-worker", dest="dp_worker", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _report(results: dict[str, Any]) -> None:
    if "harvest" in results:
        h = results["harvest"]
        for r in h["runs"]:
            print(f"harvest  {r['workers']} worker(s): {r['tokens']:,} tokens in {r['shards']} shards, "
                  f"wall {r['wall_tokens_per_s']:,.0f} tok/s, steady {r['steady_tokens_per_s']:,.0f} tok/s")
        print(f"harvest  weak-scaling efficiency 1 -> 2: wall {h['wall_efficiency']:.2f}, steady "
              f"{h['steady_efficiency']:.2f} (goal >= {HARVEST_GOAL})")
    if "dp" in results:
        d = results["dp"]
        for r in d["runs"]:
            print(f"dp       {r['world_size']} rank(s) ({r['backend']}): {r['tokens_per_s']:,.0f} tok/s "
                  f"({r['rows_per_s_per_rank']:,.0f} rows/s per rank)")
        print(f"dp       weak-scaling efficiency 1 -> 2: {d['efficiency']:.2f} (goal >= {DP_GOAL})")
    if "dense" in results:
        x = results["dense"]
        print(f"dense    {x['shape'][0]}x{x['shape'][1]} k={x['shape'][2]} on {x['device']} (bf16 {x['bf16']}): "
              f"ours {x['ours_tokens_per_s']:,.0f} tok/s, dense torch {x['dense_tokens_per_s']:,.0f} tok/s, "
              f"ratio {x['ratio']:.2f} (GPU goal >= {DENSE_GOAL} at 2304x65536 k=64)")


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    if args.dp_worker:
        _dp_worker(args)
        return
    sections = args.only or ["harvest", "dp"] + (["dense"] if args.dense_baseline or args.gpu_large else [])
    if "harvest" in sections:
        _reexec_in_netns()
    torch.set_num_threads(1)
    results: dict[str, Any] = {"cpu_count": os.cpu_count(), "torch": torch.__version__}
    if "harvest" in sections:
        results["harvest"] = bench_harvest(args)
    if "dp" in sections:
        results["dp"] = bench_dp(args)
    if "dense" in sections:
        results["dense"] = bench_dense(args)
    _report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
