"""The analysis subcommands: ``inspect`` ranks features against a criterion, ``intervene`` tests them causally."""

from __future__ import annotations

import argparse
from typing import Any

from interp_agent.cli.investigate import add_dossier_option, file_into, open_dossier
from interp_agent.cli.options import (
    Subparsers,
    add_csv_out,
    add_json_flag,
    add_live_model,
    add_out_folder,
    add_prompt_source,
)
from interp_agent.cli.output import TerminalProgress, compact_inspection, emit, inspection_text, path_strings
from interp_agent.core.errors import ValidationError


def cmd_inspect(args: argparse.Namespace) -> int:
    """``inspect``: rank features against a criterion and write the report."""
    from interp_agent.core.inspect.request import CLI_RANKING_FIELDS, InspectRequest, param_names, ranking_config
    from interp_agent.core.inspection import inspect_request

    config = ranking_config(**{name: getattr(args, name) for name in CLI_RANKING_FIELDS})
    request = InspectRequest(**{name: getattr(args, name) for name in param_names() if name != "config"}, config=config)
    store = open_dossier(args)
    progress = TerminalProgress()
    try:
        result = inspect_request(request, out=args.out, progress=progress)
    finally:
        progress.close()
    paths = dict(result.paths)
    if args.csv_out:
        from interp_agent.core.reports.csv import write_features_csv

        paths["csv"] = write_features_csv(result.report, args.csv_out)
    compact = compact_inspection(result.report, paths)
    filed = file_into(store, "inspect", args.out)
    emit(args, compact | ({"dossier": filed} if filed else {}), inspection_text(compact))
    return 0



def _strengths(value: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in value.split(","))
    except ValueError:
        raise ValidationError(
            f"--strengths must be numbers separated by commas, got {value!r}; e.g. --strengths=-1,1"
        ) from None


def _intervention_text(summary: dict[str, Any], paths: dict[str, Any]) -> str:
    rows = [
        f"{f['feature_id']:<44} {f['verdict']:<12} effect {f['effect']['mean']:+.4f} "
        f"CI {f['effect']['ci95']}  controls {f['control_effect']['mean']:+.4f}  "
        f"KL {f['side_effect']['kl_on_other_class']:.4f}"
        for f in summary["features"]
    ]
    scorer = summary["scorer"]
    return "\n".join(
        [
            f"scorer: {scorer['kind']} held-out AUROC {scorer['auroc']:.3f}",
            *rows,
            *(f"{k}: {v}" for k, v in paths.items()),
        ]
    )


def cmd_intervene(args: argparse.Namespace) -> int:
    """``intervene``: edit features of a live model, with controls, and print each feature's verdict."""
    from interp_agent.core.live import intervene

    strengths = _strengths(args.strengths)
    store = open_dossier(args)
    progress = TerminalProgress()
    try:
        result = intervene(
            args.model,
            args.criterion,
            out=args.out,
            dataset=args.dataset,
            pack=args.pack,
            report=args.report,
            features=args.feature,
            top_k=args.top_k,
            mode=args.mode,
            strengths=strengths,
            targets=args.targets,
            scorer=args.scorer,
            sae=args.sae,
            progress=lambda phase, done, total: progress(phase, done, total),
        )
    finally:
        progress.close()
    text = _intervention_text(result.summary, result.paths)
    filed = file_into(store, "intervene", args.out)
    emit(args, {"summary": result.summary, "paths": path_strings(result.paths)} | ({"dossier": filed} if filed else {}),
         text)
    return 0


def _add_inspect(sub: Subparsers) -> None:
    p = sub.add_parser("inspect", help="rank features against a criterion; writes report.json/.md/.html")
    from interp_agent.core.inspect.request import cli_options  # the flags are InspectRequest's fields

    for flag, options in cli_options():
        p.add_argument(flag, **options)
    add_out_folder(p)
    add_csv_out(p, "report.json")
    add_dossier_option(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_inspect)


def _add_intervene(sub: Subparsers) -> None:
    p = sub.add_parser(
        "intervene",
        help="ablate/steer/clamp/patch features of a live model with controls; "
        "writes interventions.jsonl and summary.json",
    )
    add_live_model(p)
    p.add_argument("--criterion", default="", help="natural-language criterion (a --pack brings its own)")
    add_prompt_source(p, pack_help="built-in criterion pack, e.g. measurement_unit")
    p.add_argument("--report", help="report.json of an hf inspect run: its top features (and contrast directions)")
    p.add_argument(
        "--feature", action="append", default=None, metavar="ID", help="feature id to intervene on (repeatable)"
    )
    p.add_argument("--top-k", type=int, default=3, help="top features of --report to test (default 3)")
    p.add_argument("--mode", choices=["ablate", "mean_ablate", "clamp", "steer", "patch"], default="steer")
    p.add_argument(
        "--strengths",
        default="-1,-0.5,0.5,1",
        help="steer/clamp strengths in units of the feature's scale (a direction's own norm, else its std; "
        "negative removes it), chosen on calibration prompts within a KL budget; write "
        "--strengths=-1,1 when the first is negative (default -1,-0.5,0.5,1)",
    )
    p.add_argument("--sae", help="SAE Lens folder (cfg.json + sae_weights.safetensors) for SAE:L{layer}:F{i} features")
    p.add_argument(
        "--scorer",
        choices=["auto", "target", "classifier", "probe"],
        default="auto",
        help="behaviour score: next-token probability of target tokens (target); an all-MiniLM-L6-v2 classifier "
        "applied to greedy continuations (classifier); a logistic probe on the last block's residual stream, "
        "mean-pooled, for criteria about the prompt itself (probe); each cross-validated on calibration prompts. "
        "auto (default): target when targets are given or the criterion names the next token, else probe",
    )
    p.add_argument(
        "--targets",
        nargs="*",
        default=None,
        help="target next tokens of the behaviour score (default: the pack's, else inferred on calibration)",
    )
    add_out_folder(p)
    add_dossier_option(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_intervene)


def add_analysis_parsers(sub: Subparsers) -> None:
    """Register ``inspect`` and ``intervene`` on the subparsers action ``sub``."""
    _add_inspect(sub)
    _add_intervene(sub)
