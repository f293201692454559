"""The ``train-crosscoder`` subcommand: a BatchTopK crosscoder over two models or several layers, its
held-out reconstruction, which latents are exclusive to one source, and (with a pack) their ranking."""

from __future__ import annotations

import argparse
from typing import Any

from interp_agent.cli.options import Subparsers, add_json_flag
from interp_agent.cli.output import emit


def _text(result: dict[str, Any]) -> str:
    held = result["held_out"]
    lines = [f"crosscoder over {len(result['sources'])} sources, held-out {held['n_tokens']} tokens: "
             f"L0 {held['l0']:.1f}, dead {held['dead_fraction']:.1%}"]
    lines += [f"  {name}: FVU {fvu:.4f}" for name, fvu in held["fvu"].items()]
    excl = result["exclusivity"]
    lines.append("exclusive latents (decoder norm and Latent Scaling both passed): "
                 + ", ".join(f"{k} {v}" for k, v in excl["exclusive"].items())
                 + "; decoder norm only: " + ", ".join(f"{k} {v}" for k, v in excl["decoder_norm_only"].items()))
    ranking = result.get("ranking")
    if ranking:
        lines.append(f"ranked against {ranking['criterion']!r} on {ranking['n_prompts']} prompts:")
        lines += [f"  {f['feature_id']:<22} held-out r {f['held_out_r']}  AUROC {f['held_out_auroc']}"
                  for f in ranking["top"]]
    lines += [f"{k}: {v}" for k, v in result["paths"].items()]
    return "\n".join(lines)


def cmd_train_crosscoder(args: argparse.Namespace) -> int:
    """``train-crosscoder``: train, save, check exclusivity, optionally rank; print the summary."""
    from interp_agent.core.crosscoder.run import train_crosscoder
    from interp_agent.core.diffing.named import resolve_model_name

    if args.models and args.model:
        from interp_agent.core.errors import ValidationError

        raise ValidationError("give --models (several models, one --hookpoint) or --model (one model, --hookpoints)")
    hookpoints = list(args.hookpoints or []) + ([args.hookpoint] if args.hookpoint else [])
    result = train_crosscoder(
        out=args.out, models=[resolve_model_name(m) for m in args.models or ([args.model] if args.model else [])]
        or None, hookpoints=hookpoints,
        activations=args.activations, corpus=args.corpus, pack=args.pack, dataset=args.dataset,
        criterion=args.criterion, latent_dim=args.latent_dim, k=args.k, steps=args.steps, batch_size=args.batch_size,
        lr=args.lr, seed=args.seed, max_length=args.max_length, max_texts=args.max_texts,
        held_out_fraction=args.held_out_fraction, norm_share=args.norm_share, max_nu=args.max_nu,
    )
    emit(args, result, _text(result))
    return 0


def add_crosscoder_parsers(sub: Subparsers) -> None:
    """Register ``train-crosscoder`` on the subparsers action ``sub``."""
    p = sub.add_parser(
        "train-crosscoder",
        help="train a BatchTopK crosscoder on two models at one hookpoint or one model at several; writes "
        "dictionary_learning's layout (ae.pt, config.json), metrics.json and exclusivity.json",
    )
    src = p.add_argument_group("sources (one of)")
    src.add_argument("--models", nargs="+", metavar="MODEL", help="two or more models sharing a tokenizer "
                     "(smollm2-135m, a local folder or a hub id), read at --hookpoint")
    src.add_argument("--model", help="one model, read at each of --hookpoints")
    src.add_argument("--activations", nargs="+", metavar="NPY", help="stored [n_tokens, d] arrays, one per source")
    p.add_argument("--hookpoint", help="the hookpoint of --models, e.g. blocks.15.hook_resid_post")
    p.add_argument("--hookpoints", nargs="+", metavar="H", help="the hookpoints of --model")
    p.add_argument("--corpus", default="builtin", help="training texts: builtin, a .txt/.jsonl/.parquet file or "
                   "folder, or hf:<dataset>")
    p.add_argument("--max-texts", type=int, default=400, help="texts read from the corpus (default 400)")
    p.add_argument("--pack", help="rank the latents against this criterion pack's prompts")
    p.add_argument("--dataset", help="rank the latents on these scored prompts (JSONL, with --criterion)")
    p.add_argument("--criterion", help="the criterion of --dataset (a pack brings its own)")
    p.add_argument("--latent-dim", type=int, default=1152, help="latents (default 1152)")
    p.add_argument("--k", type=int, default=32, help="active latents per token on average (default 32)")
    p.add_argument("--steps", type=int, default=300, help="optimiser steps (default 300)")
    p.add_argument("--batch-size", type=int, default=1024, help="tokens per step (default 1024)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 2e-4 / sqrt(latent_dim / 2^14))")
    p.add_argument("--seed", type=int, default=0, help="seed; on a CPU the same seed gives the same crosscoder")
    p.add_argument("--max-length", type=int, default=64, help="tokens kept per text (default 64)")
    p.add_argument("--held-out-fraction", type=float, default=0.1, help="share of texts held out (default 0.1)")
    p.add_argument("--norm-share", type=float, default=0.9, help="decoder-norm share that makes a latent a "
                   "candidate for one source (default 0.9)")
    p.add_argument("--max-nu", type=float, default=0.3, help="Latent Scaling passes when nu_error and "
                   "nu_reconstruction are below this (default 0.3)")
    p.add_argument("--out", required=True, help="output folder (replaced whole when the run succeeds)")
    add_json_flag(p, help_text="print the summary as JSON")
    p.set_defaults(func=cmd_train_crosscoder)
