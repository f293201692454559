"""The ``harvest`` subcommand: harvest prompts or a corpus into shards with a manifest, in-process or on Ray."""

from __future__ import annotations

import argparse
from typing import Any

from interp_agent.cli.options import Subparsers, add_json_flag
from interp_agent.cli.output import TerminalProgress, emit


def _text(result: dict[str, Any]) -> str:
    t = result["totals"]
    lines = [f"harvested {result['model']} at {result['hookpoint']} (d_in {result['d_in']}, {result['mode']}): "
             f"{t['n_shards_done']}/{t['n_shards']} shards, {t['n_units']} {result['mode']}, {t['n_tokens']} tokens, "
             f"{t['n_rows']} activation rows, {t['bytes'] / 2**20:.1f} MiB, {t['seconds']:.1f} s of worker time",
             f"manifest: {result['manifest']}"]
    if result["records"]:
        lines.append("per-prompt records in every shard: inspect --backend records --records " + result["folder"])
    lines.append("token activations: train-sae --activations " + result["folder"])
    return "\n".join(lines)


def cmd_harvest(args: argparse.Namespace) -> int:
    """``harvest``: run (or resume) a sharded harvest and print its manifest summary."""
    from interp_agent.core.shards.request import harvest_inputs, run_harvest

    inputs = harvest_inputs(dataset=args.dataset, pack=args.pack, corpus=args.corpus, max_length=args.max_length,
                            pooling=args.pooling, context_length=args.context_length, max_contexts=args.max_contexts)
    progress = TerminalProgress()
    try:
        result = run_harvest(args.model, args.hookpoint, inputs, args.out, shard_size=args.shard_size,
                             workers=args.workers, engine=args.engine, ray_address=args.ray_address,
                             torch_threads=args.torch_threads, progress=progress)
    finally:
        progress.close()
    emit(args, result, _text(result))
    return 0


def add_harvest_parser(sub: Subparsers) -> None:
    """Register ``harvest`` on the subparsers action ``sub``."""
    p = sub.add_parser(
        "harvest",
        help="harvest a prompt set or corpus at one hookpoint into shards (token activations as safetensors, "
        "per-prompt records as Parquet) with a manifest; resumable; read by train-sae, inspect and explain",
    )
    p.add_argument("--model", default="smollm2-135m", help="model: smollm2-135m (embedded), a folder or a hub id")
    p.add_argument("--hookpoint", required=True, help="TransformerLens name, e.g. blocks.15.hook_resid_post")
    src = p.add_argument_group("input (one of)")
    src.add_argument("--dataset", help="scored prompts JSONL (records carry each prompt's criterion score)")
    src.add_argument("--pack", help="a built-in criterion pack")
    src.add_argument("--corpus", help="a corpus as explain reads it (builtin, a .txt/.jsonl/.parquet file or folder), "
                     "cut into --context-length token contexts; no records")
    p.add_argument("--out", required=True, help="harvest folder (a path every worker sees); rerun to resume")
    p.add_argument("--shard-size", type=int, default=256, help="prompts or contexts per shard (default 256)")
    p.add_argument("--workers", type=int, default=1, help="Ray actors, one model replica each (default 1)")
    p.add_argument("--engine", choices=["local", "ray"], default="local", help="local: in-process; ray: Ray actors")
    p.add_argument("--ray-address", help="Ray cluster address host:port (default: RAY_ADDRESS or a local cluster)")
    p.add_argument("--torch-threads", type=int, default=1, help="torch threads of each Ray worker (default 1)")
    p.add_argument("--max-length", type=int, default=128, help="tokens kept per prompt (default 128)")
    p.add_argument("--pooling", choices=["last", "mean", "max"], default="last",
                   help="pooling of the per-prompt records (default last, as inspect --backend hf)")
    p.add_argument("--context-length", type=int, default=64, help="tokens per corpus context (default 64)")
    p.add_argument("--max-contexts", type=int, help="corpus contexts read at most")
    add_json_flag(p, help_text="print the manifest summary as JSON")
    p.set_defaults(func=cmd_harvest)
