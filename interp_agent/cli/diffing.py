"""The ``finetune`` and ``diff-models`` subcommands: a CPU fine-tune of the embedded model, and a model diff."""

from __future__ import annotations

import argparse
from typing import Any

from interp_agent.cli.options import Subparsers, add_json_flag, add_prompt_source
from interp_agent.cli.output import TerminalProgress, emit


def _ci(m: dict[str, Any] | None) -> str:
    if not m or m.get("mean") is None:
        return "-"
    ci = m.get("ci95")
    return f"{m['mean']:+.4f}" + (f" [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "")


def finetune_text(manifest: dict[str, Any], folder: str) -> str:
    """The terminal summary of ``finetune``."""
    t, b, loss = manifest["trained"], manifest["behaviour"], manifest["loss_curve"]
    return "\n".join([
        f"{manifest['description']}",
        f"trained {t['n_parameters']:,} parameters for {t['steps']} steps in {t['seconds']:.0f} s; loss "
        f"{loss['first_10_mean']:.3f} -> {loss['last_10_mean']:.3f} (first/last 10 steps, synthetic training texts)",
        f"held-out {b['pack']} prompts [interventional]: log-lik change positive {_ci(b['positive']['change'])}, "
        f"negative {_ci(b['negative']['change'])}; preference shift {_ci(b['preference_shift'])} nats/token",
        f"folder: {folder} (loads with load_model; finetune.json says what was trained)",
    ])


def cmd_finetune(args: argparse.Namespace) -> int:
    """``finetune``: build (or reuse) the fine-tuned copy of the base model."""
    from interp_agent.core.diffing import FinetuneSpec, ensure_finetuned, read_manifest

    spec = FinetuneSpec(steps=args.steps, seed=args.seed, lr=args.lr)
    progress = TerminalProgress()
    try:
        path = ensure_finetuned(spec, base=args.base, folder=args.out, device=args.device, progress=progress)
    finally:
        progress.close()
    manifest = read_manifest(path)
    emit(args, {"path": str(path), "trained": manifest["trained"], "behaviour": manifest["behaviour"]},
         finetune_text(manifest, str(path)))
    return 0


def diff_text(result: dict[str, Any]) -> str:
    """The terminal summary of ``diff-models``."""
    s = result["summary"]
    lines = ["model diff [correlational]: " + "  ".join(f"{k} {v['confirmed']}/{v['selected']} confirmed"
                                                        for k, v in s["counts"].items())]
    lines += [f"  {m['feature_id']:<22} {m['kind']:<7} d {_ci(m['shift'])}  rate {m['rate_base']:.3f} -> "
              f"{m['rate_tuned']:.3f}" for m in s["top_movers"][:5]]
    lines += [f"  criterion mover {m['feature_id']:<22} AUROC {m['auroc_base']:.3f} -> {m['auroc_tuned']:.3f}"
              for m in s["criterion_movers"][:5]]
    if s["behaviour_preference_shift"]:
        lines.append(f"behaviour [interventional]: preference shift {_ci(s['behaviour_preference_shift'])} nats/token "
                     "(held-out prompts)")
    if s.get("behaviour_paired_shift"):
        lines.append(f"behaviour [interventional]: preference shift {_ci(s['behaviour_paired_shift'])} nats/token "
                     "(all matched pairs)")
    lines.append(f"written: {result['paths']['json']}, {result['paths']['md']}")
    return "\n".join(lines)


def cmd_diff_models(args: argparse.Namespace) -> int:
    """``diff-models``: which features appear, vanish or change from the base model to the tuned one."""
    from interp_agent.core.diffing import diff_models

    progress = TerminalProgress()
    try:
        from interp_agent.core.diffing.named import resolve_model_name

        base, tuned = resolve_model_name(args.base), resolve_model_name(args.tuned)
        result = diff_models(base, tuned, hookpoints=args.hookpoint, features=args.features,
                             probes=args.probes, n_probes=args.n_probes, pack=args.pack, dataset=args.dataset,
                             criterion=args.criterion, max_length=args.max_length, config={"top_k": args.top_k},
                             out=args.out, device=args.device, progress=progress)
    finally:
        progress.close()
    emit(args, {"summary": result["summary"], "paths": result["paths"]}, diff_text(result))
    return 0


def add_diffing_parsers(sub: Subparsers) -> None:
    """Register ``finetune`` and ``diff-models`` on the subparsers action ``sub``."""
    f = sub.add_parser("finetune", help="fine-tune a copy of the embedded model on synthetic negative reviews (the "
                                        "MLPs of a few middle blocks, seeded, minutes on a CPU); built once, cached")
    f.add_argument("--out", help="folder of the fine-tune (default: $INTERP_AGENT_FINETUNE_DIR or the cache)")
    f.add_argument("--steps", type=int, default=150, help="AdamW steps (default 150)")
    f.add_argument("--seed", type=int, default=0, help="seed of the texts, batch order and torch (default 0)")
    f.add_argument("--lr", type=float, default=3e-4, help="learning rate (default 3e-4)")
    f.add_argument("--base", default="smollm2-135m", help="base model (default smollm2-135m, embedded)")
    f.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu", help="where to train (default cpu)")
    add_json_flag(f)
    f.set_defaults(func=cmd_finetune)
    d = sub.add_parser("diff-models", help="features that appear, vanish or change between a model and its "
                                           "fine-tune, chosen on half the probes and shown on the other half; "
                                           "writes diff.json and diff.md")
    d.add_argument("--base", default="smollm2-135m", help="base model (default smollm2-135m)")
    d.add_argument("--tuned", required=True, help="the tuned model: a folder (e.g. from `finetune`), a hub id, "
                   "or finetune:default (the built-in fine-tune, built once)")
    d.add_argument("--hookpoint", action="append", required=True,
                   help="hookpoint to diff (repeatable), e.g. blocks.20.mlp.hook_post")
    d.add_argument("--features", choices=["neurons", "dims"], default="neurons",
                   help="neurons (at mlp.hook_post, default) or dims (d_model sites)")
    add_prompt_source(d, pack_help="criterion pack whose movers and behaviour to measure (e.g. negative_sentiment)")
    d.add_argument("--criterion", help="the criterion in words (with --dataset)")
    d.add_argument("--probes", default="builtin", help="probe corpus: builtin (default) or a corpus path")
    d.add_argument("--n-probes", type=int, default=160, help="probe passages (default 160)")
    d.add_argument("--max-length", type=int, default=48, help="tokens per prompt (default 48)")
    d.add_argument("--top-k", type=int, default=20, help="features kept per kind (default 20)")
    d.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu", help="where to run (default cpu)")
    d.add_argument("--out", required=True, help="output folder")
    add_json_flag(d)
    d.set_defaults(func=cmd_diff_models)
