"""The ``validate-matches`` subcommand: the same intervention on both features of each matched pair, compared."""

from __future__ import annotations

import argparse

from interp_agent.cli.investigate import add_dossier_option, file_into, open_dossier
from interp_agent.cli.options import Subparsers, add_json_flag, add_prompt_source
from interp_agent.cli.output import TerminalProgress, emit


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated numbers, e.g. 0.5,1,2") from None


def cmd_validate_matches(args: argparse.Namespace) -> int:
    """``validate-matches``: validate fingerprint matches with interventions on both sides."""
    from interp_agent.core.crossmodel.validate import validate_matches
    from interp_agent.core.diffing.named import resolve_model_name

    store = open_dossier(args)
    progress = TerminalProgress()
    try:
        result = validate_matches(
            args.matches, out=args.out, left_model=args.left_model and resolve_model_name(args.left_model),
            right_model=args.right_model and resolve_model_name(args.right_model),
            left_report=args.left_report, right_report=args.right_report, left_sae=args.left_sae,
            right_sae=args.right_sae, criterion=args.criterion, dataset=args.dataset, pack=args.pack, mode=args.mode,
            top=args.top, strengths=args.strengths, targets=args.target, scorer=args.scorer,
            patch_across=not args.no_patch_across, max_widening=args.max_widening, max_new_tokens=args.max_new_tokens,
            progress=progress)
    finally:
        progress.close()
    s = result["summary"]
    lines = [f"{r['left_feature_id']} ↔ {r['right_feature_id']}  left {r['left']['effect']:+.3f} "
             f"({r['left']['verdict']})  right {r['right']['effect']:+.3f} ({r['right']['verdict']})  {r['grade']}"
             for r in result["pairs"]]
    lines.append(f"{s['survive']} of {s['n_pairs']} matches survive intervention (scorer {result['scorer']['kind']})")
    lines.append(f"wrote {result['paths']['json']} and {result['paths']['md']}")
    filed = file_into(store, "validate_matches", args.out)
    emit(args, {"summary": s, "scorer": {k: result["scorer"][k] for k in ("kind", "why")},
                "patch_across": result["patch_across"], "pairs": result["pairs"], "paths": result["paths"]}
         | ({"dossier": filed} if filed else {}), "\n".join(lines))
    return 0


def add_validate_parsers(sub: Subparsers) -> None:
    """Register ``validate-matches`` on the subparsers action ``sub``."""
    p = sub.add_parser("validate-matches", help="validate matched feature pairs with the same intervention on each "
                       "side (held-out prompts, controls); writes validation.json and validation.md into --out")
    p.add_argument("--matches", required=True, help="matches JSON (from match or match-activations), or its folder")
    p.add_argument("--out", required=True, help="folder for validation.json, validation.md, left/ and right/")
    for side in ("left", "right"):
        p.add_argument(f"--{side}-model", help=f"{side} model (default: the matches' provenance {side}_model)")
        p.add_argument(f"--{side}-report", help=f"{side} report.json or its folder: checks the features, gives "
                       "saved directions and expected signs")
        p.add_argument(f"--{side}-sae", help=f"{side} SAE folder, for matched SAE latents")
    p.add_argument("--criterion", help="criterion text (default: the pack's; with --dataset, the matches')")
    add_prompt_source(p, "built-in criterion pack (e.g. negative_sentiment)")
    p.add_argument("--mode", choices=("steer", "ablate"), default="steer", help="the intervention (default steer)")
    p.add_argument("--top", type=int, default=5, help="validate the first N matches (default 5)")
    p.add_argument("--strengths", type=_floats, default=(0.5, 1.0, 2.0),
                   help="steering strengths > 0, in units of each feature's scale (default 0.5,1,2)")
    p.add_argument("--max-widening", type=float, default=64.0, help="widen the strength grid on calibration "
                   "prompts up to this multiple of the largest strength (default 64; 1: never)")
    p.add_argument("--target", action="append", help="target token for the target scorer (repeat); default the pack's")
    p.add_argument("--scorer", choices=("auto", "target", "probe", "classifier"), default="auto",
                   help="behaviour scorer shared by both sides (default auto: target with shared tokens and targets, "
                        "probe for one model, else classifier)")
    p.add_argument("--no-patch-across", action="store_true", help="skip steering the right model along the left "
                   "feature's mapped direction")
    p.add_argument("--max-new-tokens", type=int, default=12, help="continuation length for the classifier scorer")
    add_dossier_option(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_validate_matches)
