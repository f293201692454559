"""The ``train-sae`` subcommand: a sparse autoencoder trained on one hookpoint, with its metrics."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from interp_agent.cli.options import Subparsers, add_json_flag
from interp_agent.cli.output import emit, path_strings

if TYPE_CHECKING:
    from interp_agent.core.sae.train import TrainResult, TrainSettings


def _settings(args: argparse.Namespace) -> TrainSettings:
    from interp_agent.core.sae.train import TrainSettings

    return TrainSettings(
        preset=args.preset,
        architecture=args.architecture,
        latent_dim=args.latent_dim,
        expansion_factor=args.expansion_factor,
        k=args.k,
        batch_size=args.batch_size,
        steps=args.steps,
        epochs=args.epochs,
        lr=args.lr,
        sparsity_coefficient=args.sparsity_coefficient,
        aux_coefficient=args.aux_coefficient,
        dead_after_tokens=args.dead_after_tokens,
        b_dec_init=args.b_dec_init,
        seed=args.seed,
        device=args.device,
        dtype=args.dtype,
        max_records=args.max_records,
        max_length=args.max_length,
        held_out_fraction=args.held_out_fraction,
        checkpoint_every=args.checkpoint_every,
        keep_activations=args.keep_activations,
        distributed=args.distributed,
        shard_latents=args.shard_latents,
    )


def _stderr_line() -> Callable[[float, str], None]:
    """``show(fraction, message)``: one line on a terminal, rewritten when the message changes; silent otherwise."""
    last = [""]

    def show(fraction: float, message: str) -> None:
        if sys.stderr.isatty() and message != last[0]:
            last[0] = message
            print(f"\r[{fraction:4.0%}] {message[:100]:<100}", end="", file=sys.stderr, flush=True)

    return show


def _metrics_lines(m: dict[str, Any]) -> list[str]:
    held, splice = m["held_out"], m["splice"]
    lines = [
        f"{m['sae']['architecture']} SAE, {m['sae']['d_in']} -> {m['sae']['d_sae']} latents"
        + (f", k {m['sae']['k']}" if m["sae"]["k"] else "")
        + f", at {m['sae']['hookpoint']}",
        f"trained {m['training']['steps']} steps on {m['data']['n_train_rows']} rows"
        + (
            f" ({m['training']['tokens_per_s_this_run']:.0f} tokens/s)"
            if m["training"]["tokens_per_s_this_run"]
            else ""
        ),
        f"held-out ({held['n_rows']} rows): FVU {held['fvu']:.4f}  MSE {held['mse']:.4g}  L0 {held['l0']:.1f}  "
        f"dead {held['dead_fraction']:.1%}  dense {held['dense_fraction']:.1%}",
    ]
    if splice and "ce_loss_clean" in splice:
        lines.append(
            f"spliced in on {splice['n_prompts']} held-out prompts: CE {splice['ce_loss_clean']:.3f} -> "
            f"{splice['ce_loss_spliced']:.3f} (mean-ablated {splice['ce_loss_mean_ablated']:.3f}), "
            f"loss recovered {splice['loss_recovered']:.1%}, KL {splice['kl_clean_to_spliced']:.4f}"
        )
    return lines


def _result_text(result: TrainResult) -> str:
    lines = _metrics_lines(result.metrics)
    for f in (result.causal or {}).get("features", []):
        lo, hi = f["ci95"] or (float("nan"), float("nan"))
        lines.append(
            f"causal: {f['feature_id']:<20} {f['verdict']:<10} effect {f['effect']:+.4f} CI [{lo:+.4f}, {hi:+.4f}] "
            f"controls {f['control_effect']:+.4f}"
        )
    lines += [f"{k}: {v}" for k, v in result.paths.items()]
    return "\n".join(lines)


def _result_payload(result: TrainResult) -> dict[str, Any]:
    """The metrics without the training history, and the paths."""
    m = result.metrics
    return {
        "metrics": {k: v for k, v in m.items() if k != "training"}
        | {"training": {k: v for k, v in m["training"].items() if k != "history"}},
        "paths": path_strings(result.paths),
    }


def cmd_train_sae(args: argparse.Namespace) -> int:
    """``train-sae``: train the SAE, optionally test its top latents causally, and print its metrics."""
    from interp_agent.core.workflows.trained_latents import TrainProgress, train_sae

    settings = _settings(args)
    if args.distributed and args.causal_out:
        from interp_agent.core.errors import ValidationError

        raise ValidationError("--causal-out does not run under --distributed",
                              hint="train with --distributed, then test the latents in one process")
    main_rank = not args.distributed or os.environ.get("RANK", "0") == "0"
    show = _stderr_line() if main_rank else _silent
    progress = TrainProgress(show, model=args.model)
    try:
        result = train_sae(
            out=args.out,
            model=args.model,
            dataset=args.dataset,
            pack=args.pack,
            criterion=args.criterion,
            hookpoint=args.hookpoint,
            activations=args.activations,
            records=args.records,
            settings=settings,
            causal_out=args.causal_out,
            progress=progress,
            on_point=progress.point,
        )
        held = result.metrics.get("held_out") or {"fvu": math.nan, "l0": math.nan}
        show(1.0, f"FVU {held['fvu']:.3f}, L0 {held['l0']:.1f} on held-out rows")
    finally:
        if sys.stderr.isatty() and main_rank:
            print(file=sys.stderr)
    if main_rank:  # the other ranks of a torchrun job print nothing but errors
        emit(args, _result_payload(result), _result_text(result))
    return 0


def _silent(fraction: float, message: str) -> None:
    """The progress line of a rank other than 0: nothing."""


def _add_sources(p: argparse.ArgumentParser) -> None:
    """What the SAE trains on: a live model with prompts, or stored activations or records."""
    src = p.add_argument_group("source (exactly one)")
    src.add_argument(
        "--model",
        help="a live model (smollm2-135m embedded, a local folder or hub id), with --dataset or --pack and --hookpoint",
    )
    src.add_argument(
        "--activations", nargs="+", metavar="FILE",
        help="stored activations: .safetensors, .npy or .parquet, or a harvest folder (interp-agent harvest)"
    )
    src.add_argument("--records", help="activation records JSONL (each feature id is an input dimension)")
    p.add_argument(
        "--dataset", help="with --model: scored prompts JSONL, JSONL with 'text', or .txt (one prompt per line)"
    )
    p.add_argument("--pack", help="with --model: a built-in criterion pack as the prompts")
    p.add_argument("--criterion", help="criterion of a scored --dataset (a pack brings its own)")
    p.add_argument(
        "--hookpoint", help="TransformerLens hook name, e.g. blocks.15.hook_resid_post (required with --model)"
    )


def _add_shape_and_optimiser(p: argparse.ArgumentParser) -> None:
    """The SAE's size and architecture, and the optimiser's settings."""
    p.add_argument(
        "--preset",
        choices=["minimal", "production"],
        default="minimal",
        help="minimal: 4x latents, k 16, 300 steps, seconds on a CPU (default); production: 32x latents, "
        "k 32, batch 4096, one pass over the data",
    )
    p.add_argument("--architecture", choices=["topk", "batchtopk", "relu", "jumprelu"], help="default topk")
    p.add_argument("--latent-dim", type=int, help="number of latents (wins over --expansion-factor)")
    p.add_argument("--expansion-factor", type=float, help="latents per input dimension")
    p.add_argument("--k", type=int, help="active latents per token (topk, batchtopk)")
    p.add_argument("--batch-size", type=int, help="rows per step")
    p.add_argument("--steps", type=int, help="optimiser steps (production default: --epochs passes)")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the training rows when --steps is not set")
    p.add_argument("--lr", type=float, help="Adam learning rate (warm-up 5%%, linear decay over the last 20%%)")
    p.add_argument("--sparsity-coefficient", type=float, help="relu: L1 weight; jumprelu: L0 weight (default 1)")
    p.add_argument("--aux-coefficient", type=float, default=1 / 32, help="AuxK weight for dead latents (default 1/32)")
    p.add_argument("--dead-after-tokens", type=int, help="tokens without firing before a latent counts as dead")
    p.add_argument("--b-dec-init", choices=["median", "mean", "zeros"], default="median", help="decoder bias start")
    p.add_argument("--seed", type=int, default=0, help="seed; on a CPU the same seed gives the same SAE")


def _add_run_settings(p: argparse.ArgumentParser) -> None:
    """Device and precision, data limits, checkpoints."""
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1")
    p.add_argument(
        "--dtype",
        choices=["auto", "float32", "bfloat16"],
        default="auto",
        help="bfloat16 runs the encoder matmul in bf16 (auto: on CUDA)",
    )
    p.add_argument("--max-records", type=int, help="keep a uniform reservoir sample of this many rows")
    p.add_argument("--max-length", type=int, help="tokens kept per prompt (minimal 64, production 256)")
    p.add_argument(
        "--held-out-fraction", type=float, help="share held out for metrics (0.3 for scored prompts, else 0.1)"
    )
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (a rerun on --out resumes)")
    p.add_argument("--keep-activations", action="store_true", help="keep the activation cache in --out/activations")
    p.add_argument(
        "--distributed",
        action="store_true",
        help="one rank of a torchrun job (gloo on CPU, NCCL on CUDA): data parallel, each rank a slice of every "
        "batch; launch with `torchrun --nproc-per-node N -m interp_agent train-sae --distributed ...`",
    )
    p.add_argument(
        "--shard-latents",
        action="store_true",
        help="with --distributed: split the latents (d_sae) over the ranks instead of the batch, for SAEs too wide "
        "for one device (topk, batchtopk)",
    )


def add_training_parsers(sub: Subparsers) -> None:
    """Register ``train-sae`` on the subparsers action ``sub``."""
    p = sub.add_parser(
        "train-sae",
        help="train a sparse autoencoder on one hookpoint; writes an SAE Lens folder "
        "(cfg.json, sae_weights.safetensors), metrics.json and latent records",
    )
    _add_sources(p)
    _add_shape_and_optimiser(p)
    _add_run_settings(p)
    p.add_argument(
        "--causal-out",
        help="rank the latents on training prompts and steer the top 3 with controls on "
        "held-out prompts; writes the ranking and interventions here",
    )
    p.add_argument("--out", required=True, help="output folder (a rerun on the same folder continues a killed run)")
    add_json_flag(p, help_text="print metrics and paths as JSON")
    p.set_defaults(func=cmd_train_sae)
