"""The import subcommands: interp-lab files into ours, hidden-state dumps into records or a training set."""

from __future__ import annotations

import argparse
from typing import Any

from interp_agent.cli.options import Subparsers, add_json_flag
from interp_agent.cli.output import emit


def _import_text(result: dict[str, Any]) -> str:
    kind = result["kind"]
    what = {"report": f"{result.get('n_features')} features", "matches": f"{result.get('n_pairs')} pairs",
            "run_config": f"{result.get('n_steps')} steps ({', '.join(result.get('commands', []))})"}[kind]
    head = f"{'[SYNTHETIC] ' if result.get('synthetic') else ''}interp-lab {kind} ({result['schema_version']}): {what}"
    return "\n".join([head, *(f"wrote {p}" for p in result["paths"].values())])


def cmd_import_interp_lab(args: argparse.Namespace) -> int:
    """``import-interp-lab``: an interp-lab report, match report or run config, written in our form."""
    from interp_agent.core.migrate.interp_lab import import_interp_lab

    result = import_interp_lab(args.src, args.out)
    emit(args, result, _import_text(result))
    return 0


def cmd_convert_hidden_dump(args: argparse.Namespace) -> int:
    """``convert-hidden-dump``: hidden states (npy, safetensors, .pt, interp-lab JSONL) → records or training set."""
    from interp_agent.core.formats.hidden_dump import convert_hidden_dump

    result = convert_hidden_dump(args.src, out=args.out, to=args.to, manifest=args.manifest,
                                 hookpoint=args.hookpoint, model=args.model, pooling=args.pool,
                                 keep_first=args.keep_first)
    dims = ", ".join(f"{h} ({d})" for h, d in result["hookpoints"].items())
    text = f"{result['n_prompts']} prompts, {result['n_tokens']} tokens at {dims}\n" + "\n".join(
        f"wrote {p}" for p in result["paths"].values())
    emit(args, result, text)
    return 0


def add_import_parsers(sub: Subparsers) -> None:
    """Register ``import-interp-lab`` and ``convert-hidden-dump`` on ``sub``."""
    p = sub.add_parser("import-interp-lab",
                       help="interp-lab report.json / matches.json / run config -> our report, matches or run.json")
    p.add_argument("src", help="interp-lab report.json (or its folder), matches.json, or run config (JSON/TOML/YAML)")
    p.add_argument("--out", required=True, help="folder to write report.json/.md/.html, matches.json or run.json into")
    add_json_flag(p)
    p.set_defaults(func=cmd_import_interp_lab)

    p = sub.add_parser("convert-hidden-dump",
                       help="hidden-state dump -> activation records (inspect --records) or train-sae activations")
    p.add_argument("src", help=".npy [N,D] or [N,T,D], .safetensors (a tensor per hookpoint), torch .pt (tensor or "
                               "dict of tensors; weights_only), or interp-lab hidden-state dump .jsonl")
    p.add_argument("--manifest", help="JSON {prompts, scores|labels, model, hookpoint|layer, tensors, lengths} or "
                                      "scored-prompts JSONL (row order)")
    p.add_argument("--to", choices=["records", "training"], default="records",
                   help="records: one pooled row per prompt; training: every token row, for train-sae --activations")
    p.add_argument("--out", required=True, help="records: *.jsonl or a Parquet folder; training: a folder")
    p.add_argument("--hookpoint", help="hookpoint of an unnamed tensor, or the one tensor to take, e.g. "
                                       "blocks.6.hook_resid_post")
    p.add_argument("--model", help="model the hidden states came from (default: the manifest's)")
    p.add_argument("--pool", choices=["last", "mean", "max"], default="last",
                   help="records from [N,T,D]: last real token, or mean/max over tokens 1.. (default last)")
    p.add_argument("--keep-first", action="store_true",
                   help="keep token position 0 (dropped by default as a BOS with massive activations; keep it for "
                        "dumps that have no BOS)")
    add_json_flag(p)
    p.set_defaults(func=cmd_convert_hidden_dump)
