"""The ``interp-agent`` command line: the same verbs as the Python API, ``--json`` for machines.

Bad input exits with code 2 and one line on stderr saying what is wrong and what to do.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from interp_agent._version import __version__
from interp_agent.core.errors import InterpAgentError, ValidationError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _TerminalProgress:
    """A tqdm bar per phase on a terminal; silent otherwise."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.bar: Any = None
        self.phase: str | None = None

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = tqdm(total=total, desc=phase, unit="rows", file=sys.stderr, leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(text)


def _compact_inspection(report: dict[str, Any], paths: dict[str, Path], limit: int = 10) -> dict[str, Any]:
    from interp_agent.core.reports.compact import compact_feature

    return {
        "model": report["model"],
        "criterion": report["criterion"],
        "backend": report["backend"],
        "synthetic": report["synthetic"],
        "summary": report["summary"],
        "warnings": report["warnings"],
        "top": [compact_feature(f) for f in report["features"][:limit]],
        "paths": {k: str(v) for k, v in paths.items()},
    }


def _fmt(value: Any, spec: str = "+.3f") -> str:
    return "—" if value is None else (format(value, spec) if isinstance(value, float) else str(value))


def _with_ci(value: Any, ci: Any, spec: str) -> str:
    """``+0.370 [-0.10, +0.71]``: a value and its 95% interval, or a dash."""
    if value is None:
        return "—"
    if not ci:
        return _fmt(value, spec)
    short = spec.replace(".3f", ".2f")
    return f"{_fmt(value, spec)} [{_fmt(ci[0], short)}, {_fmt(ci[1], short)}]"


def _inspection_text(compact: dict[str, Any]) -> str:
    from interp_agent.core.reports.markdown import rows_sentence

    lines = [
        f"{'[SYNTHETIC] ' if compact['synthetic'] else ''}{compact['model']} — {compact['criterion']}",
        rows_sentence(compact["summary"]),
    ]
    lines += [f"warning: {w}" for w in compact["warnings"]]
    lines.append(
        f"{'rank':>4}  {'importance':>10}  {'r train':>7}  {'r held-out [95% CI]':<22}  "
        f"{'AUROC held-out [95% CI]':<23}  {'n held-out':>10}  supported  feature"
    )
    for t in compact["top"]:
        tested = t["r_held_out"] is not None or t["auroc_held_out"] is not None
        supported = "untested" if not tested else ("yes" if t["held_out_supported"] else "no")
        lines.append(
            f"{t['rank']:>4}  {t['importance']:>10.4f}  {_fmt(t['r_train']):>7}  "
            f"{_with_ci(t['r_held_out'], t['r_held_out_ci95'], '+.3f'):<22}  "
            f"{_with_ci(t['auroc_held_out'], t['auroc_held_out_ci95'], '.3f'):<23}  "
            f"{_fmt(t['n_held_out_prompts']):>10}  {supported:>9}  {t['feature_id']}  {t['label'] or ''}"
        )
        lines += [f"{'':>6}note: {n}" for n in t["notes"]]
    for name, path in compact["paths"].items():
        lines.append(f"{name}: {path}")
    return "\n".join(lines)


# -- commands ---------------------------------------------------------------------------------
def cmd_inspect(args: argparse.Namespace) -> int:
    from interp_agent.core.inspect.request import CLI_RANKING_FIELDS, InspectRequest, param_names, ranking_config
    from interp_agent.core.inspection import inspect_request

    config = ranking_config(**{name: getattr(args, name) for name in CLI_RANKING_FIELDS})
    request = InspectRequest(**{name: getattr(args, name) for name in param_names() if name != "config"}, config=config)
    progress = _TerminalProgress()
    try:
        result = inspect_request(request, out=args.out, progress=progress)
    finally:
        progress.close()
    compact = _compact_inspection(result.report, result.paths)
    _emit(args, compact, _inspection_text(compact))
    return 0


def cmd_intervene(args: argparse.Namespace) -> int:
    from interp_agent.core.live import intervene

    try:
        strengths = tuple(float(x) for x in args.strengths.split(","))
    except ValueError:
        raise ValidationError(
            f"--strengths must be numbers separated by commas, got {args.strengths!r}; e.g. --strengths=-1,1"
        ) from None
    progress = _TerminalProgress()
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
    rows = [
        f"{f['feature_id']:<44} {f['verdict']:<12} effect {f['effect']['mean']:+.4f} "
        f"CI {f['effect']['ci95']}  controls {f['control_effect']['mean']:+.4f}  "
        f"KL {f['side_effect']['kl_on_other_class']:.4f}"
        for f in result.summary["features"]
    ]
    scorer = result.summary["scorer"]
    text = "\n".join(
        [
            f"scorer: {scorer['kind']} held-out AUROC {scorer['auroc']:.3f}",
            *rows,
            *(f"{k}: {v}" for k, v in result.paths.items()),
        ]
    )
    _emit(args, {"summary": result.summary, "paths": {k: str(v) for k, v in result.paths.items()}}, text)
    return 0


def cmd_train_sae(args: argparse.Namespace) -> int:
    from interp_agent.core.sae.train import TrainSettings
    from interp_agent.core.workflows.trained_latents import train_sae

    settings = TrainSettings(
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
    )
    last = [""]

    def progress(phase: str, fraction: float, message: str) -> None:
        if sys.stderr.isatty() and message != last[0]:
            last[0] = message
            print(f"\r[{fraction:4.0%}] {message[:100]:<100}", end="", file=sys.stderr, flush=True)

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
        )
    finally:
        if sys.stderr.isatty():
            print(file=sys.stderr)
    m = result.metrics
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
    for f in (result.causal or {}).get("features", []):
        lo, hi = f["ci95"] or (float("nan"), float("nan"))
        lines.append(
            f"causal: {f['feature_id']:<20} {f['verdict']:<10} effect {f['effect']:+.4f} CI [{lo:+.4f}, {hi:+.4f}] "
            f"controls {f['control_effect']:+.4f}"
        )
    lines += [f"{k}: {v}" for k, v in result.paths.items()]
    _emit(
        args,
        {
            "metrics": {k: v for k, v in m.items() if k != "training"}
            | {"training": {k: v for k, v in m["training"].items() if k != "history"}},
            "paths": {k: str(v) for k, v in result.paths.items()},
        },
        "\n".join(lines),
    )
    return 0


def cmd_match(args: argparse.Namespace) -> int:
    from interp_agent.api import match
    from interp_agent.core.matching import matches_paths

    json_path, md_path = matches_paths(args.out)  # checks --out before the work starts
    result = match(args.left, args.right, out=json_path, min_similarity=args.min_similarity, use_text=not args.no_text)
    lines = [
        f"{m['left_feature_id']} ↔ {m['right_feature_id']}  similarity {m['similarity']:.3f}" for m in result["matches"]
    ]
    lines += [f"note: {n}" for n in result.get("notes", [])]
    lines.append(f"wrote {json_path} and {md_path}")
    _emit(
        args,
        {
            "summary": result["summary"],
            "notes": result.get("notes", []),
            "matches": result["matches"][:20],
            "paths": {"json": str(json_path), "md": str(md_path)},
        },
        "\n".join(lines),
    )
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
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
    if args.card_out:
        lines.append(f"card: {args.card_out}")
    _emit(args, result, "\n".join(lines))
    return 0


def cmd_export_graph(args: argparse.Namespace) -> int:
    from interp_agent.core.graphs import export_graph

    doc = export_graph(args.report, args.out, format=args.format, top_k=args.top_k)
    if args.format == "native":
        s = doc["summary"]
        text = (
            f"{'[SYNTHETIC] ' if doc['synthetic'] else ''}{s['n_features']} features, {s['n_correlational_edges']} "
            f"correlational and {s['n_interventional_edges']} interventional edges"
        )
    else:
        text = f"neuronpedia graph: {len(doc['nodes'])} nodes, {len(doc['links'])} links"
    _emit(args, {"out": str(args.out), "format": args.format, "graph": doc}, f"{text}\nwrote {args.out}")
    return 0


def cmd_export_records(args: argparse.Namespace) -> int:
    from interp_agent.core.bridges.exporters import export_records, prompts_for_export

    prompts = prompts_for_export(args.dataset, args.pack)
    options = {"pooling": args.pooling, "batch_size": args.batch_size, "max_length": args.max_length}
    if args.remote:
        if args.via != "nnsight":
            raise ValidationError("--remote runs on NDIF through nnsight; add --via nnsight")
        options["remote"] = True
    out = export_records(args.out, args.model, prompts, args.hookpoint, via=args.via, **options)
    _emit(args, {"out": str(out), "via": args.via, "prompts": len(prompts)}, f"wrote {out} ({len(prompts)} prompts)")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from interp_agent.api import convert

    out = convert(args.src, args.out)
    _emit(args, {"out": str(out)}, f"wrote {out}")
    return 0


def cmd_convert_goodfire(args: argparse.Namespace) -> int:
    from interp_agent.core.bridges.goodfire import write_goodfire_features

    out = write_goodfire_features(args.src, args.out, model=args.model, layer=args.layer)
    _emit(
        args,
        {"out": str(out)},
        f"wrote {out} (Goodfire cards: labels only; live search is unavailable since "
        "Goodfire's hosted API shut down in 2025)",
    )
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from interp_agent.core.doctor import diagnose, render

    report = diagnose(load_models=not args.quick)
    _emit(args, report, render(report))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from interp_agent.core.workflows.demo import run_demo

    progress = _TerminalProgress()
    try:
        summary = run_demo(Path(args.out), progress=progress, synthetic=args.synthetic)
    finally:
        progress.close()
    _emit(args, summary, "\n".join(summary["lines"]))
    return 0


def cmd_profile_env(args: argparse.Namespace) -> int:
    from interp_agent.core.scale import profile_env, render_profile, save_profile

    profile = profile_env(Path(args.workspace) if args.workspace else None)
    text = render_profile(profile)
    if args.out:
        save_profile(profile, args.out)
        text += f"\nwrote {args.out}"
    _emit(args, profile, text)
    return 0


def cmd_plan_scale(args: argparse.Namespace) -> int:
    from interp_agent.core.artifacts import write_json
    from interp_agent.core.scale import ScalePlanInput, load_profile, plan_scale, profile_env, render_plan

    env = profile_env() if args.from_env else load_profile(args.env_profile) if args.env_profile else None
    inp = ScalePlanInput.from_sizes(
        model_params=args.model_params,
        tokens=args.tokens,
        d_model=args.d_model,
        selected_layers=args.selected_layers,
        latent_dim=args.latent_dim,
        k=args.k,
        dtype=args.dtype,
        accelerator=args.accelerator,
        n_accelerators=args.n_accelerators,
        target_shard_size=args.target_shard_size,
        causal_prompts=args.causal_prompts,
        causal_features=args.causal_features,
        interventions_per_feature=args.interventions_per_feature,
        prompt_tokens=args.prompt_tokens,
        mfu=args.mfu,
        max_wall_hours=args.max_wall_hours,
    )
    plan = plan_scale(inp, env)
    text = render_plan(plan)
    if args.out:
        write_json(args.out, plan)
        text += f"\nwrote {args.out}"
    _emit(args, plan, text)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from interp_agent.core.runs import ProgramRunner, run_config

    # each step is this command line again, in its own process; args.commands: every subcommand of the parser
    runner = ProgramRunner(program=(sys.executable, "-m", "interp_agent.cli"), commands=tuple(args.commands))
    manifest = run_config(args.config, out=args.out, runner=runner)
    lines = [
        f"run {manifest['name'] or Path(args.config).name}: {manifest['status']} in {manifest['total_seconds']:.1f} s"
    ]
    for step in manifest["steps"]:
        took = f" ({step['seconds']:.1f} s)" if step["seconds"] is not None else ""
        lines.append(
            f"  {step['index']}: {step['command']} {step['status']}{took}"
            + (f", exit {step['exit_code']}" if step["status"] == "failed" else "")
        )
        if step["status"] == "failed" and step.get("stderr_tail"):
            lines.append("     " + step["stderr_tail"].strip().splitlines()[-1])
    lines.append(f"manifest: {manifest['manifest']}")
    _emit(args, manifest, "\n".join(lines))
    return 0 if manifest["status"] == "completed" else 1


def _workspace(value: str | None) -> Path:
    return Path(value or os.environ.get("INTERP_AGENT_WORKSPACE") or Path.cwd())


def cmd_serve(args: argparse.Namespace) -> int:
    from interp_agent.server import serve

    serve(_workspace(args.workspace), read_roots=tuple(args.read_root), max_concurrent_jobs=args.max_jobs)
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from interp_agent.jobs import JobRunner

    runner = JobRunner(_workspace(args.workspace))
    if args.action == "list":
        jobs = [j.model_dump(mode="json") for j in runner.list(limit=args.limit)]
        lines = [f"{j['job_id']}  {j['kind']:<8} {j['state']:<10} {j['progress']:>4.0%}  {j['message']}" for j in jobs]
        _emit(args, {"jobs": jobs}, "\n".join(lines) or "no jobs")
        return 0
    if not args.job_id:
        raise ValidationError(f"jobs {args.action} needs a JOB_ID; list them with: interp-agent jobs list")
    if args.action == "status":
        job = runner.get(args.job_id).model_dump(mode="json")
        _emit(args, job, f"{job['job_id']}  {job['kind']}  {job['state']}  {job['progress']:.0%}  {job['message']}")
    elif args.action == "result":
        job = runner.get(args.job_id)
        result = runner.result(args.job_id)
        _emit(
            args,
            {"job": job.model_dump(mode="json"), "result": result},
            json.dumps(result, indent=2) if result is not None else f"{job.state}: {job.error or job.message}",
        )
    elif args.action == "resume":
        job = runner.resume(args.job_id).model_dump(mode="json")
        _emit(args, job, f"{job['job_id']}  {job['state']}  attempt {job['attempts']}  {job['message']}")
    else:
        job = runner.cancel(args.job_id).model_dump(mode="json")
        _emit(args, job, f"{job['job_id']}  {job['state']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``interp-agent``."""
    parser = _Parser(prog="interp-agent", description="Criterion-driven mechanistic interpretability.")
    parser.add_argument("--version", action="version", version=f"interp-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("serve", help="serve the MCP tools over stdio (JSON-RPC on stdout, logs on stderr)")
    p.add_argument(
        "--workspace",
        help="folder for runs, job state and outputs; path arguments resolve here "
        "(default: $INTERP_AGENT_WORKSPACE or the current folder)",
    )
    p.add_argument(
        "--read-root",
        action="append",
        default=[],
        metavar="DIR",
        help="an extra folder whose files tools may read (repeatable)",
    )
    p.add_argument("--max-jobs", type=int, default=2, help="background jobs running at once (default 2)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("jobs", help="list, follow, fetch, cancel or resume background jobs of a workspace")
    p.add_argument(
        "action",
        choices=["list", "status", "result", "cancel", "resume"],
        help="resume: run a failed or cancelled job again in its run folder, from its last checkpoint "
        "(kinds that checkpoint only)",
    )
    p.add_argument("job_id", nargs="?", help="job id (not for list)")
    p.add_argument(
        "--workspace", help="the server's workspace (default: $INTERP_AGENT_WORKSPACE or the current folder)"
    )
    p.add_argument("--limit", type=int, default=20, help="jobs to list (default 20)")
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("inspect", help="rank features against a criterion; writes report.json/.md/.html")
    from interp_agent.core.inspect.request import cli_options  # the flags are InspectRequest's fields

    for flag, options in cli_options():
        p.add_argument(flag, **options)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser(
        "intervene",
        help="ablate/steer/clamp/patch features of a live model with controls; "
        "writes interventions.jsonl and summary.json",
    )
    p.add_argument("--model", required=True, help="smollm2-135m (embedded), a local folder or a hub id")
    p.add_argument("--criterion", default="", help="natural-language criterion (a --pack brings its own)")
    p.add_argument("--dataset", help="scored prompts JSONL")
    p.add_argument("--pack", help="built-in criterion pack, e.g. measurement_unit")
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
        choices=["target", "classifier"],
        default="target",
        help="behaviour score: next-token probability of target tokens (target), or an all-MiniLM-L6-v2 "
        "classifier trained on the calibration prompts applied to greedy continuations (classifier)",
    )
    p.add_argument(
        "--targets",
        nargs="*",
        default=None,
        help="target next tokens of the behaviour score (default: the pack's, else inferred on calibration)",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(func=cmd_intervene)

    p = sub.add_parser(
        "train-sae",
        help="train a sparse autoencoder on one hookpoint; writes an SAE Lens folder "
        "(cfg.json, sae_weights.safetensors), metrics.json and latent records",
    )
    src = p.add_argument_group("source (exactly one)")
    src.add_argument(
        "--model",
        help="a live model (smollm2-135m embedded, a local folder or hub id), with --dataset or --pack and --hookpoint",
    )
    src.add_argument(
        "--activations", nargs="+", metavar="FILE", help="stored activations: .safetensors, .npy or .parquet"
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
        "--causal-out",
        help="rank the latents on training prompts and steer the top 3 with controls on "
        "held-out prompts; writes the ranking and interventions here",
    )
    p.add_argument("--out", required=True, help="output folder (a rerun on the same folder continues a killed run)")
    p.add_argument("--json", action="store_true", help="print metrics and paths as JSON")
    p.set_defaults(func=cmd_train_sae)

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
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(func=cmd_match)

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
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(func=cmd_publish)

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
    p.add_argument("--out", required=True, help="graph JSON file to write")
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(func=cmd_export_graph)

    p = sub.add_parser(
        "export-records",
        help="activation records read through TransformerLens or nnsight (same ids and pooling as our harvesting)",
    )
    p.add_argument(
        "--via", choices=["transformer-lens", "nnsight"], required=True, help="library that reads the activations"
    )
    p.add_argument("--model", required=True, help="smollm2-135m (embedded), a local folder or a hub id")
    p.add_argument("--dataset", help="scored prompts JSONL")
    p.add_argument("--pack", help="built-in criterion pack instead of --dataset, e.g. measurement_unit")
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
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(func=cmd_export_records)

    p = sub.add_parser("convert", help="convert activation records JSONL <-> Parquet dataset folder")
    p.add_argument("src", help="records JSONL file or Parquet dataset folder")
    p.add_argument("out", help="Parquet dataset folder (from JSONL) or *.jsonl (from Parquet)")
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
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
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(func=cmd_convert_goodfire)

    p = sub.add_parser("doctor", help="what is installed, which extras work, whether the models load")
    p.add_argument(
        "--quick",
        action="store_true",
        help="only check imports; load neither the embedded model nor the sentence encoder",
    )
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser(
        "demo",
        help="the main job end to end on the embedded SmolLM2-135M: inspect, intervene with "
        "controls, report (--synthetic: two toy models, no model)",
    )
    p.add_argument("--out", default="demo-out", help="output folder (default demo-out)")
    p.add_argument("--synthetic", action="store_true", help="the toy demo: planted features, no model, seconds")
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "profile-env", help="cores, memory, disk, accelerators, packages, credentials present; route advice"
    )
    p.add_argument("--workspace", help="folder whose disk is measured (default: the current folder)")
    p.add_argument("--out", help="also write the profile to this JSON file (input of plan-scale --env-profile)")
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(func=cmd_profile_env)

    p = sub.add_parser(
        "plan-scale",
        help="size a harvest + SAE training + causal validation job: storage, memory, GPU-hours, shards, risks, route",
    )
    p.add_argument("--model-params", required=True, help="model parameters, e.g. 135M, 70B, 1T")
    p.add_argument("--tokens", required=True, help="tokens harvested and trained on, e.g. 100M, 1B")
    p.add_argument("--d-model", required=True, help="residual width d_model, e.g. 4096, 16384")
    p.add_argument("--selected-layers", required=True, help="layers harvested (one SAE each)")
    p.add_argument(
        "--latent-dim",
        "--d-sae",
        dest="latent_dim",
        required=True,
        help="latents per SAE (d_sae), e.g. 64k, 1M, 1Mi (= 2**20)",
    )
    p.add_argument("--k", default="32", help="active latents per token of a TopK SAE (default 32)")
    p.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16", "float8"],
        default="bfloat16",
        help="precision of stored activations and weights (default bfloat16)",
    )
    p.add_argument(
        "--accelerator",
        choices=["H100", "H200", "A100-80GB", "A100-40GB", "L4", "RTX4090", "cpu"],
        help="accelerator to plan for (default: the profiled device, else H100)",
    )
    p.add_argument("--n-accelerators", help="accelerators available (default: the profiled count, else 1)")
    p.add_argument("--target-shard-size", default="64GB", help="bytes per storage shard (default 64GB)")
    p.add_argument("--causal-prompts", default="1000", help="prompts per causal intervention (default 1000)")
    p.add_argument("--causal-features", default="100", help="features validated causally (default 100)")
    p.add_argument(
        "--interventions-per-feature",
        default="5",
        help="interventions per feature and prompt (default 5: 3 strengths + 2 controls)",
    )
    p.add_argument("--prompt-tokens", default="64", help="assumed tokens per causal prompt (default 64)")
    p.add_argument("--mfu", type=float, default=0.4, help="model FLOPs utilisation assumed (default 0.4)")
    p.add_argument(
        "--max-wall-hours",
        type=float,
        default=72.0,
        help="wall hours beyond which one machine is too slow (default 72)",
    )
    env = p.add_mutually_exclusive_group()
    env.add_argument("--from-env", action="store_true", help="profile this machine and plan for it")
    env.add_argument("--env-profile", help="plan for the machine of a profile-env --out file")
    p.add_argument("--out", help="also write the plan to this JSON file")
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(func=cmd_plan_scale)

    p = sub.add_parser("run", help="run the interp-agent steps of a JSON/TOML/YAML config; writes a manifest")
    p.add_argument(
        "config",
        help="run config: {'steps': [{'command': ..., 'args': {...}}, ...]}; relative paths "
        "in it are relative to its folder",
    )
    p.add_argument("--out", help="manifest path (default: <config stem>.manifest.json beside the config)")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=cmd_run, commands=sub.choices)  # the live mapping: subcommands added later count too
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InterpAgentError as exc:
        print(f"interp-agent: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interp-agent: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
