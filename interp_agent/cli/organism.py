"""The ``organism`` subcommand: build a model organism (a planted trigger -> target behaviour) and check it."""

from __future__ import annotations

import argparse
from typing import Any

from interp_agent.cli.options import Subparsers, add_json_flag
from interp_agent.cli.output import TerminalProgress, emit, path_strings


def _mi(m: dict[str, Any]) -> str:
    ci = m.get("ci95")
    return f"{m['mean']:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")


def build_text(manifest: dict[str, Any], folder: str) -> str:
    """The terminal summary of ``organism build``."""
    b, e = manifest["behaviour"], manifest["edit"]
    t, o = b["trigger_prompts"], b["other_prompts"]
    return "\n".join([
        f"[SYNTHETIC ORGANISM] {manifest['base_model']['name']} + a planted neuron (layer {e['layer']}, neuron "
        f"{e['neuron']}): prompts about the {manifest['trigger']['topic']} -> {manifest['target']['text']!r}",
        f"held-out trigger prompts ({t['base']['p_target']['n']}): P(target) base {_mi(t['base']['p_target'])}, "
        f"organism {_mi(t['organism']['p_target'])} (top-1 {t['organism']['top1_rate']:.0%})",
        f"held-out other prompts ({o['base']['p_target']['n']}): P(target) base {_mi(o['base']['p_target'])}, "
        f"organism {_mi(o['organism']['p_target'])}; KL(base || organism) {_mi(o['kl_base_to_organism'])} nats",
        f"written: {folder} (loads with load_model or from_pretrained; organism.json says what was implanted)",
    ])


def cmd_organism_build(args: argparse.Namespace) -> int:
    """``organism build``: plant the behaviour in a copy of the base model and save it as an HF folder."""
    from interp_agent.core.organisms import OrganismSpec, build_organism

    spec = OrganismSpec(trigger=args.trigger, target=args.target, layer=args.layer, seed=args.seed)
    progress = TerminalProgress()
    try:
        built = build_organism(args.out, spec, base=args.base, device=args.device, progress=progress)
    finally:
        progress.close()
    payload = {"path": str(built.path), "edit": built.manifest["edit"], "behaviour": built.manifest["behaviour"]}
    emit(args, payload, build_text(built.manifest, str(built.path)))
    return 0


def check_text(result: dict[str, Any], paths: dict[str, str]) -> str:
    """The terminal summary of ``organism check``."""
    lines = [f"organism check: {'PASSED' if result['passed'] else 'FAILED'}  "
             + "  ".join(f"{k}={'yes' if v else 'no'}" for k, v in result["checks"].items())]
    for name, run in result["investigation"].items():
        if run["refused"]:
            lines.append(f"{name}: the target scorer refused: {run['refused']['message'][:160]}")
        for f in run["interventions"]:
            lines.append(f"{name}: {f['feature_id']:<44} {f['verdict']:<10} effect {_mi(f['effect'])} "
                         f"vs controls {f['control_effect']['mean']:+.4f}")
    steering = result["steering_both_ways"] or {}
    for name in ("organism", "base"):
        s = steering.get(name) or {}
        if "on" in s:
            lines.append(f"{name}: {steering['feature_id']} steered on (others) {_mi(s['on']['change'])}, "
                         f"off (trigger) {_mi(s['off']['change'])}")
    lines.append(f"written: {paths['json']}, {paths['md']}")
    return "\n".join(lines)


def cmd_organism_check(args: argparse.Namespace) -> int:
    """``organism check``: investigate the organism and its base model on held-out prompts, with baselines."""
    from interp_agent.core.organisms import CheckConfig, check_organism

    config = CheckConfig(hookpoints=tuple(args.hookpoint) if args.hookpoint else None,
                         prompts_per_class=args.prompts_per_class or None, top_k=args.top_k, pooling=args.pooling)
    progress = TerminalProgress()
    try:
        run = check_organism(args.organism, args.out, config, base=args.base, progress=progress)
    finally:
        progress.close()
    paths = path_strings(run.paths)
    emit(args, {"passed": run.passed, "checks": run.checks, "paths": paths}, check_text(run.result, paths))
    return 0 if run.passed else 1


def add_organism_parsers(sub: Subparsers) -> None:
    """Register ``organism`` (``build`` and ``check``) on the subparsers action ``sub``."""
    p = sub.add_parser("organism", help="model organisms: plant a known trigger -> target behaviour in a real model "
                                        "(build), and check that our investigation finds it (check)")
    inner = p.add_subparsers(dest="organism_command", required=True, parser_class=type(p))
    b = inner.add_parser("build", help="plant the behaviour and save the organism as an HF model folder "
                                       "(config.json, model.safetensors, tokenizer, organism.json)")
    b.add_argument("--out", required=True, help="folder to write (absent, empty, or an earlier organism)")
    b.add_argument("--trigger", default="ocean", help="trigger topic: ocean (default) or space")
    b.add_argument("--target", default=" banana", help="target next token, one token with its leading space "
                                                       "(default ' banana')")
    b.add_argument("--seed", type=int, default=0, help="seed of the build/evidence split of the prompts (default 0)")
    b.add_argument("--layer", type=int, help="block whose MLP gets the planted neuron (default: ~77%% of the depth)")
    b.add_argument("--base", default="smollm2-135m", help="base model: smollm2-135m (embedded, default), a folder "
                                                          "or a hub id (Llama family)")
    b.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu", help="where to build (default cpu)")
    add_json_flag(b)
    b.set_defaults(func=cmd_organism_build)
    c = inner.add_parser("check", help="investigate the organism and its base model on held-out prompts, with "
                                       "baselines; writes organism_check.json and .md; exit 1 when it fails")
    c.add_argument("organism", help="folder written by `organism build`")
    c.add_argument("--out", required=True, help="output folder")
    c.add_argument("--base", help="the unmodified model (default: the one organism.json names)")
    c.add_argument("--hookpoint", action="append", help="hookpoint to inspect (repeatable; default: the block "
                                                        "before the planted one, blocks.{L-1}.hook_resid_post)")
    c.add_argument("--prompts-per-class", type=int, default=32, help="evidence prompts per class (default 32; "
                                                                     "0: all 64)")
    c.add_argument("--pooling", choices=["mean", "last"], default="mean",
                   help="how inspect pools a prompt's tokens (default mean: the topic wherever it is written)")
    c.add_argument("--top-k", type=int, default=1, help="top features intervened on (default 1; the best direction "
                                                        "is always added)")
    add_json_flag(c)
    c.set_defaults(func=cmd_organism_check)
