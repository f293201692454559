"""The bridge subcommands: publish to the Hub, export graphs and records, convert records and Goodfire features."""

from __future__ import annotations

import argparse
from typing import Any

from interp_agent.cli.options import Subparsers, add_json_flag, add_live_model, add_prompt_source
from interp_agent.cli.output import emit
from interp_agent.core.errors import ValidationError


def _publish_text(result: dict[str, Any], card_out: str | None) -> str:
    head = "DRY RUN: nothing was uploaded" if result["dry_run"] else f"uploaded: {result['commit_url']}"
    lines = [
        head,
        f"{result['repo_type']} repo {result['repo_id']} ({'private' if result['private'] else 'public'}) "
        f"at {result['endpoint']}; HF_TOKEN {'set' if result['token_present'] else 'not set'}",
        f"{'bytes':>12}  file",
    ]
    lines += [
        f"{f['bytes']:>12,}  {f['path']}{'  (generated card)' if f.get('generated') else ''}" for f in result["files"]
    ]
    lines += [f"     skipped  {s['path']}: {s['reason']}" for s in result["skipped"]]
    lines += [f"{result['total_bytes']:>12,}  total, {len(result['files'])} files", result["message"]]
    if card_out:
        lines.append(f"card: {card_out}")
    return "\n".join(lines)


def cmd_publish(args: argparse.Namespace) -> int:
    """``publish``: upload a run folder to a Hugging Face Hub repo (a dry run unless ``--no-dry-run``)."""
    from interp_agent.core.artifacts import write_text
    from interp_agent.core.bridges.hf_hub import publish

    result = publish(
        args.path,
        args.repo_id,
        repo_type=args.repo_type,
        dry_run=not args.no_dry_run,
        private=not args.public,
        commit_message=args.message,
    )
    if args.card_out:
        write_text(args.card_out, result["card"])
    emit(args, result, _publish_text(result, args.card_out))
    return 0


def _graph_text(doc: dict[str, Any], fmt: str) -> str:
    if fmt != "native":
        kinds = [link.get("interp_agent", {}).get("kind", "feature_criterion") for link in doc["links"]]
        counts = ", ".join(f"{kinds.count(k)} {k}" for k in sorted(set(kinds)))
        return f"neuronpedia graph: {len(doc['nodes'])} nodes, {len(doc['links'])} links" + (
            f" ({counts})" if counts else "")
    s = doc["summary"]
    text = (
        f"{'[SYNTHETIC] ' if doc['synthetic'] else ''}{s['n_features']} features, {s['n_correlational_edges']} "
        f"correlational and {s['n_interventional_edges']} interventional edges"
    )
    text += (f"; feature -> feature: {s['n_coactivation_edges']} co-activation, "
             f"{s['n_feature_effect_edges']} feature-effect")
    info = doc.get("feature_edges") or {}
    coact = info.get("coactivation") or {}
    if coact.get("skipped") or coact.get("note"):
        text += f"\nco-activation: {coact.get('skipped') or coact.get('note')}"
    elif coact:
        text += (f"\nco-activation on {coact['n_prompts']} held-out prompts: {coact['n_edges']} of "
                 f"{coact['n_pairs_tested']} pairs with q <= {coact['alpha']}")
    effects = info.get("feature_effects") or {}
    if effects.get("n_left_out"):
        text += (f"\nfeature effects: {effects['n_left_out']} of {effects['n_rows']} pairs left out "
                 f"({effects['left_out_because']})")
    return text


def cmd_export_graph(args: argparse.Namespace) -> int:
    """``export-graph``: write a report as a graph, native or Neuronpedia."""
    from interp_agent.core.graphs import export_graph

    doc = export_graph(args.report, args.out, format=args.format, top_k=args.top_k,
                       coactivation=not args.no_coactivation, records=args.records, alpha=args.alpha,
                       feature_effects=args.feature_effects, validate=args.validate)
    text = _graph_text(doc, args.format)
    if args.validate:
        text += "\nvalid against interp-agent.graph.v1" + (" (the native graph it was made from)"
                                                          if args.format != "native" else "")
    emit(args, {"out": str(args.out), "format": args.format, "graph": doc}, f"{text}\nwrote {args.out}")
    return 0


def cmd_feature_effects(args: argparse.Namespace) -> int:
    """``feature-effects``: ablate each upstream feature of a report, measure its downstream features."""
    from interp_agent.cli.output import TerminalProgress
    from interp_agent.core.feature_effects import FeatureEffectsConfig, feature_effects

    progress = TerminalProgress()
    try:
        result = feature_effects(
            args.model, args.report, out=args.out, top_k=args.top_k, features=args.feature, records=args.records,
            config=FeatureEffectsConfig(mode=args.mode, n_controls=args.controls, seed=args.seed),
            progress=lambda phase, done, total: progress(phase, done, total))
    finally:
        progress.close()
    s = result.summary
    lines = [f"{s['n_pairs']} pairs on {s['settings']['n_held_out']} held-out prompts, {s['n_beating_controls']} "
             f"beating {s['settings']['n_controls']} random-direction controls"]
    lines += [f"  {r['source']} -> {r['target']}: {r['mean_effect']:+.4g} [{r['ci95'][0]:+.4g}, {r['ci95'][1]:+.4g}]"
              f" vs controls {r['control']['mean']:+.4g} (max |{r['control']['max_abs']:.4g}|)"
              f"{'  beats controls' if r['beats_controls'] else ''}" for r in result.rows]
    lines += [f"  left out {fid}: {why}" for fid, why in s["skipped_features"].items()]
    lines += [f"  {len(s['excluded_pairs'])} same-layer pair(s) left out"] if s["excluded_pairs"] else []
    lines += [f"wrote {result.paths['feature_effects']} and {result.paths['summary']}"]
    emit(args, {"summary": s, "paths": {k: str(v) for k, v in result.paths.items()}}, "\n".join(lines))
    return 0


def cmd_export_records(args: argparse.Namespace) -> int:
    """``export-records``: activation records read through TransformerLens or nnsight."""
    from interp_agent.core.bridges.exporters import export_records, prompts_for_export

    prompts = prompts_for_export(args.dataset, args.pack)
    options = {"pooling": args.pooling, "batch_size": args.batch_size, "max_length": args.max_length}
    if args.remote:
        if args.via != "nnsight":
            raise ValidationError("--remote runs on NDIF through nnsight; add --via nnsight")
        options["remote"] = True
    out = export_records(args.out, args.model, prompts, args.hookpoint, via=args.via, **options)
    emit(args, {"out": str(out), "via": args.via, "prompts": len(prompts)}, f"wrote {out} ({len(prompts)} prompts)")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """``convert``: activation records JSONL to a Parquet dataset folder, or back."""
    from interp_agent.api import convert

    out = convert(args.src, args.out)
    emit(args, {"out": str(out)}, f"wrote {out}")
    return 0


def cmd_convert_goodfire(args: argparse.Namespace) -> int:
    """``convert-goodfire``: Goodfire SDK feature exports to feature JSONL."""
    from interp_agent.core.bridges.goodfire import write_goodfire_features

    out = write_goodfire_features(args.src, args.out, model=args.model, layer=args.layer)
    emit(
        args,
        {"out": str(out)},
        f"wrote {out} (Goodfire cards: labels only; live search is unavailable since "
        "Goodfire's hosted API shut down in 2025)",
    )
    return 0


def _add_publish(sub: Subparsers) -> None:
    p = sub.add_parser(
        "publish",
        help="upload a run folder (reports, records, SAE) to a Hugging Face Hub repo with a "
        "generated card; a dry run unless --no-dry-run",
    )
    p.add_argument("--path", required=True, help="the run folder to publish")
    p.add_argument("--repo-id", required=True, help="Hub repo 'owner/name'")
    p.add_argument("--repo-type", choices=["model", "dataset"], default="model", help="default model")
    p.add_argument(
        "--no-dry-run",
        action="store_true",
        help="really upload (token from the HF_TOKEN environment variable only; HF_ENDPOINT is respected)",
    )
    p.add_argument(
        "--public",
        action="store_true",
        help="create the repo public (default private; an existing repo keeps its visibility)",
    )
    p.add_argument("--message", help="commit message")
    p.add_argument("--card-out", help="also write the generated card (README.md) here to review it")
    add_json_flag(p)
    p.set_defaults(func=cmd_publish)


def _add_export_graph(sub: Subparsers) -> None:
    p = sub.add_parser(
        "export-graph",
        help="write a report's criterion, features and measured edges as a graph "
        "(native JSON or Neuronpedia graph JSON)",
    )
    p.add_argument("--report", required=True, help="report.json (or its folder)")
    p.add_argument(
        "--format",
        choices=["native", "neuronpedia"],
        default="native",
        help="native: interp-agent.graph.v1; neuronpedia: the Neuronpedia/circuit-tracer graph format",
    )
    p.add_argument("--top-k", type=int, default=50, help="ranked features kept as nodes (default 50)")
    p.add_argument(
        "--no-coactivation",
        action="store_true",
        help="leave out the co-activation edges (default: Pearson r of each pair of features on the report's "
        "held-out prompts, kept when the BH q-value <= --alpha)",
    )
    p.add_argument("--records", help="activation records to measure co-activation on (default: the report's own)")
    p.add_argument("--alpha", type=float, help="false discovery rate of the co-activation edges (default 0.05)")
    p.add_argument(
        "--feature-effects",
        metavar="FILE",
        help="feature_effects.jsonl from interp-agent feature-effects: directed feature -> feature edges",
    )
    p.add_argument(
        "--validate", action="store_true", help="check the graph against interp-agent.graph.v1's JSON Schema"
    )
    p.add_argument("--out", required=True, help="graph JSON file to write")
    add_json_flag(p)
    p.set_defaults(func=cmd_export_graph)


def _add_feature_effects(sub: Subparsers) -> None:
    p = sub.add_parser(
        "feature-effects",
        help="ablate each upstream feature of a report on its held-out prompts and measure the change of each "
        "feature at a later layer, against random-direction controls (for export-graph --feature-effects)",
    )
    add_live_model(p)
    p.add_argument("--report", required=True, help="report.json (or its folder) of an inspect run on --model")
    p.add_argument("--top-k", type=int, default=5, help="the report's top features taking part (default 5)")
    p.add_argument("--feature", action="append", metavar="ID", help="a feature id instead of the top ones (repeatable)")
    p.add_argument("--records", help="records to take the prompts from (default: the report's own)")
    p.add_argument(
        "--mode",
        choices=["mean", "zero"],
        default="mean",
        help="mean: set A's projection to its training-split mean (default); zero: remove it",
    )
    p.add_argument("--controls", type=int, default=8, help="random-direction controls per upstream feature (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the controls and the bootstrap (default 0)")
    p.add_argument("--out", required=True, help="folder for feature_effects.jsonl and feature_effects_summary.json")
    add_json_flag(p)
    p.set_defaults(func=cmd_feature_effects)


def _add_export_records(sub: Subparsers) -> None:
    p = sub.add_parser(
        "export-records",
        help="activation records read through TransformerLens or nnsight (same ids and pooling as our harvesting)",
    )
    p.add_argument(
        "--via", choices=["transformer-lens", "nnsight"], required=True, help="library that reads the activations"
    )
    add_live_model(p)
    add_prompt_source(p, pack_help="built-in criterion pack instead of --dataset, e.g. measurement_unit")
    p.add_argument(
        "--hookpoint",
        action="append",
        required=True,
        metavar="H",
        help="TransformerLens hookpoint, e.g. blocks.15.hook_resid_post (repeatable)",
    )
    p.add_argument(
        "--pooling",
        choices=["token", "last", "mean", "max"],
        default="mean",
        help="one row per token, or per prompt: last token, mean or max (first position left out; default mean)",
    )
    p.add_argument("--batch-size", type=int, default=16, help="prompts per forward pass (default 16)")
    p.add_argument("--max-length", type=int, default=128, help="tokens kept per prompt (default 128)")
    p.add_argument(
        "--remote", action="store_true", help="nnsight only: run on NDIF (--model must be a hub id it serves)"
    )
    p.add_argument("--out", required=True, help="records file (*.jsonl) or Parquet dataset folder")
    add_json_flag(p)
    p.set_defaults(func=cmd_export_records)


def _add_converters(sub: Subparsers) -> None:
    p = sub.add_parser("convert", help="convert activation records JSONL <-> Parquet dataset folder")
    p.add_argument("src", help="records JSONL file or Parquet dataset folder")
    p.add_argument("out", help="Parquet dataset folder (from JSONL) or *.jsonl (from Parquet)")
    add_json_flag(p)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser(
        "convert-goodfire",
        help="Goodfire SDK feature exports (Feature/FeatureGroup .json()) -> "
        "feature JSONL for inspect --backend features (no live search)",
    )
    p.add_argument("src", help="JSON file of Feature.json() dicts, a list of them, or FeatureGroup.json()")
    p.add_argument("--out", required=True, help="feature JSONL to write")
    p.add_argument("--model", help="model the SAE reads, e.g. meta-llama/Llama-3.3-70B-Instruct")
    p.add_argument("--layer", type=int, help="the SAE's layer (default: Goodfire's released SAE layer for --model)")
    add_json_flag(p)
    p.set_defaults(func=cmd_convert_goodfire)


def add_bridge_parsers(sub: Subparsers) -> None:
    """Register ``publish``, ``export-graph``, ``feature-effects``, ``export-records``, ``convert`` and
    ``convert-goodfire`` on ``sub``."""
    _add_publish(sub)
    _add_export_graph(sub)
    _add_feature_effects(sub)
    _add_export_records(sub)
    _add_converters(sub)
