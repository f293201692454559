"""The ``match`` subcommand (features of two reports matched one to one), ``match-activations`` (features of
two sides matched on their activations over shared probes) and ``universality`` (the fraction of SAE latents
matched above a shuffled-probe null, for two seeds, two layers and a fine-tuned copy)."""

from __future__ import annotations

import argparse

from interp_agent.cli.investigate import add_dossier_option, file_into, open_dossier
from interp_agent.cli.options import Subparsers, add_json_flag
from interp_agent.cli.output import TerminalProgress, emit


def cmd_match(args: argparse.Namespace) -> int:
    """``match``: match the features of two reports one to one."""
    from interp_agent.api import match
    from interp_agent.core.matching import matches_paths

    json_path, md_path = matches_paths(args.out)  # checks --out before the work starts
    store = open_dossier(args)
    result = match(args.left, args.right, out=json_path, min_similarity=args.min_similarity, use_text=not args.no_text)
    lines = [
        f"{m['left_feature_id']} ↔ {m['right_feature_id']}  similarity {m['similarity']:.3f}" for m in result["matches"]
    ]
    lines += [f"note: {n}" for n in result.get("notes", [])]
    lines.append(f"wrote {json_path} and {md_path}")
    filed = file_into(store, "match", json_path)
    emit(
        args,
        {
            "summary": result["summary"],
            "notes": result.get("notes", []),
            "matches": result["matches"][:20],
            "paths": {"json": str(json_path), "md": str(md_path)},
        } | ({"dossier": filed} if filed else {}),
        "\n".join(lines),
    )
    return 0


def _side(args: argparse.Namespace, which: str) -> dict[str, object]:
    """The side spec of ``--{which}-…`` options, as ``side_from_dict`` reads it."""
    from interp_agent.core.diffing.named import resolve_model_name

    spec: dict[str, object] = {key: getattr(args, f"{which}_{key}") for key in ("model", "hookpoint", "features")}
    spec["model"] = resolve_model_name(str(spec["model"]))
    sae = getattr(args, f"{which}_sae")
    if sae is not None:
        spec["sae"] = sae
        if spec["features"] == "dims":
            spec["features"] = "sae"
    ids = getattr(args, f"{which}_feature_ids")
    if ids:
        spec["feature_ids"] = [f.strip() for f in ids.split(",") if f.strip()]
    return spec


def cmd_match_activations(args: argparse.Namespace) -> int:
    """``match-activations``: match two sides' features on their activations over shared probes."""
    from interp_agent.core.crossmodel.activations import match_sides
    from interp_agent.core.crossmodel.sides import side_from_dict
    from interp_agent.core.matching import matches_paths, write_matches

    json_path, md_path = matches_paths(args.out)  # checks --out before the work starts
    left, right = side_from_dict(_side(args, "left"), "left"), side_from_dict(_side(args, "right"), "right")
    progress = TerminalProgress()
    try:
        result = match_sides(left, right, args.probes, pooling=args.pooling, max_length=args.max_length,
                             max_prompts=args.max_prompts, null_permutations=args.null_permutations, seed=args.seed,
                             min_correlation=args.min_correlation, progress=progress)
    finally:
        progress.close()
    write_matches(result, json_path)
    s = result["summary"]
    lines = [f"{m['left_feature_id']} ↔ {m['right_feature_id']}  correlation {m['similarity']:.3f}  held-out "
             f"{m['held_out_similarity']:.3f}" + ("  above null" if m["above_null"] else "")
             for m in result["matches"][:20]]
    lines += [f"{s['n_above_null']} of {s['n_left']} live left features matched above the null "
              f"({s['fraction_above_null']:.1%}; null q99 {s['null_threshold']:.3f})"]
    lines += [f"note: {n}" for n in result["notes"]]
    lines.append(f"wrote {json_path} and {md_path}")
    emit(args, {"summary": s, "notes": result["notes"], "null": result["null"], "matches": result["matches"][:20],
                "paths": {"json": str(json_path), "md": str(md_path)}}, "\n".join(lines))
    return 0


def cmd_universality(args: argparse.Namespace) -> int:
    """``universality``: train small SAEs and measure how many latents match above the null."""
    from interp_agent.core.crossmodel.universality import (
        UniversalitySettings,
        default_pairs,
        render_table,
        universality,
        write_universality,
    )

    settings = UniversalitySettings(train_tokens=args.tokens, probe_prompts=args.probe_prompts,
                                    max_length=args.max_length, expansion=args.expansion, k=args.k, steps=args.steps,
                                    null_permutations=args.null_permutations, seed=args.seed)
    from interp_agent.core.diffing.named import resolve_model_name

    tuned = None if args.tuned_model is None else resolve_model_name(args.tuned_model)
    pairs = default_pairs(args.model, args.layer, None if args.other_layer < 0 else args.other_layer,
                          tuned, seed=args.seed)
    progress = TerminalProgress()
    try:
        result = universality(pairs, settings, progress=progress)
    finally:
        progress.close()
    json_path, md_path = write_universality(result, args.out)
    text = render_table(result) + f"\n{result['timing_s']['total']} s; wrote {json_path} and {md_path}"
    emit(args, {"rows": result["rows"], "saes": result["saes"], "timing_s": result["timing_s"],
                "paths": {"json": str(json_path), "md": str(md_path)}}, text)
    return 0


def _add_side_options(p: argparse.ArgumentParser, which: str) -> None:
    p.add_argument(f"--{which}-model", required=True, help="smollm2-135m (embedded), a model folder, a hub id or "
                   "finetune:default (the built-in fine-tune)")
    p.add_argument(f"--{which}-hookpoint", required=True, help="e.g. blocks.15.hook_resid_post")
    p.add_argument(f"--{which}-features", choices=["dims", "neurons", "sae"], default="dims",
                   help=f"dims (default), neurons (needs blocks.L.mlp.hook_post) or sae (implied by --{which}-sae)")
    p.add_argument(f"--{which}-sae", help="SAE Lens or sparsify folder of an SAE at this hookpoint")
    p.add_argument(f"--{which}-feature-ids", help="comma-separated feature ids to keep (default: all)")


def _add_match_activations_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "match-activations",
        help="match features of two sides (models, layers, SAEs) on their activations over shared probes, with a "
        "shuffled-probe null; writes the --out JSON and a markdown file named after it",
    )
    _add_side_options(p, "left")
    _add_side_options(p, "right")
    p.add_argument("--probes", default="builtin",
                   help="builtin (the general English corpus), a criterion pack name, or a JSONL / text file")
    p.add_argument("--out", required=True, help="JSON path, e.g. x/left_vs_right.json; the markdown goes beside it")
    p.add_argument("--pooling", choices=["token", "mean", "max"], default="token",
                   help="token rows (both models must tokenize alike; default) or one row per prompt")
    p.add_argument("--max-length", type=int, default=64, help="tokens per probe prompt (default 64)")
    p.add_argument("--max-prompts", type=int, default=200, help="probe prompts kept, a seeded sample (default 200)")
    p.add_argument("--null-permutations", type=int, default=5, help="shuffled pairings for the null (default 5)")
    p.add_argument("--min-correlation", type=float, default=0.0, help="smallest assigned correlation kept (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seeds the probe sample, the split and the null")
    add_json_flag(p)
    p.set_defaults(func=cmd_match_activations)


def _add_universality_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "universality",
        help="train small TopK SAEs (two seeds, two layers, optionally a fine-tuned copy) and measure the fraction "
        "of latents matched above a shuffled-probe null; writes universality.json and universality.md",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--model", default="smollm2-135m", help="base model (default: the embedded smollm2-135m)")
    p.add_argument("--layer", type=int, default=15, help="layer of the seeds row (default 15)")
    p.add_argument("--other-layer", type=int, default=20, help="second layer of the layers row (default 20; -1 skips)")
    p.add_argument("--tuned-model", help="fine-tuned copy of the model (a folder, or finetune:default): adds the "
                   "finetune row")
    p.add_argument("--tokens", type=int, default=16_000, help="training token rows per model and layer (default 16000)")
    p.add_argument("--probe-prompts", type=int, default=64, help="held-out probe passages (default 64)")
    p.add_argument("--max-length", type=int, default=64, help="tokens per passage (default 64)")
    p.add_argument("--expansion", type=int, default=2, help="d_sae = expansion * d_model (default 2)")
    p.add_argument("--k", type=int, default=16, help="TopK active latents per token (default 16)")
    p.add_argument("--steps", type=int, default=1000, help="optimiser steps per SAE (default 1000)")
    p.add_argument("--null-permutations", type=int, default=3, help="shuffled pairings for the null (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first SAE (the second gets seed + 1)")
    add_json_flag(p)
    p.set_defaults(func=cmd_universality)


def add_matching_parsers(sub: Subparsers) -> None:
    """Register ``match``, ``match-activations`` and ``universality`` on the subparsers action ``sub``."""
    p = sub.add_parser(
        "match",
        help="match features of two reports one to one; writes the --out JSON and a markdown file named after it",
    )
    p.add_argument("--left", required=True, help="report.json (or its folder)")
    p.add_argument("--right", required=True, help="report.json (or its folder)")
    p.add_argument(
        "--out",
        required=True,
        help="JSON path, e.g. x/left_vs_right.json; the markdown goes beside it "
        "under the same name (x/left_vs_right.md); an existing folder means "
        "folder/matches.json and folder/matches.md",
    )
    p.add_argument("--min-similarity", type=float, default=0.3, help="smallest combined similarity kept (default 0.3)")
    p.add_argument("--no-text", action="store_true", help="skip label embeddings (no sentence encoder)")
    add_dossier_option(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_match)
    _add_match_activations_parser(sub)
    _add_universality_parser(sub)
