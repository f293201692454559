"""``investigate`` (one call for a whole investigation), ``dossier`` (read one) and ``plan-evidence``.

Also the ``--dossier`` option the evidence-producing subcommands (inspect, intervene,
explain, match) share: :func:`add_dossier_option` and :func:`file_into`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from interp_agent.cli.options import Subparsers, add_csv_out, add_json_flag, add_out_folder, add_prompt_source
from interp_agent.cli.output import TerminalProgress, emit

DOSSIER_HELP = ("dossier to file what this run measured into: a .json file, or a NAME for dossiers/NAME.json "
                "(created if new); read it with `interp-agent dossier`")


def dossier_file(value: str) -> Path:
    """A ``--dossier`` value as a file: a path as given, or ``dossiers/NAME.json`` for a bare name."""
    path = Path(value)
    return path if path.suffix == ".json" or len(path.parts) > 1 else Path("dossiers") / f"{value}.json"


def add_dossier_option(parser: argparse.ArgumentParser) -> None:
    """``--dossier``: file the run's evidence into a dossier once it has finished."""
    parser.add_argument("--dossier", help=DOSSIER_HELP)


def open_dossier(args: argparse.Namespace) -> Any:
    """The dossier store of ``--dossier`` (checked before the run starts), or None."""
    if getattr(args, "dossier", None) is None:
        return None
    from interp_agent.core.dossier import DossierStore

    return DossierStore.open(dossier_file(args.dossier))


def file_into(store: Any, kind: str, folder: str | Path) -> dict[str, Any] | None:
    """File a finished run's folder into the dossier (None when no --dossier was given)."""
    if store is None:
        return None
    from interp_agent.core.dossier import file_run

    folder = Path(folder)
    return {"path": str(store.path), **file_run(store, kind, folder, run_id=folder.name).to_dict()}


def cmd_investigate(args: argparse.Namespace) -> int:
    """``investigate``: inspect, explain, intervene with controls, rank again, filed into a dossier."""
    from interp_agent.core.workflows.investigate import Budget, InvestigateRequest, run_investigation

    req = InvestigateRequest(
        out=args.out, model=args.model, criterion=args.criterion, pack=args.pack, dataset=args.dataset,
        hookpoints=tuple(args.hookpoint) if args.hookpoint else None, top_k=args.top_k, n_explain=args.n_explain,
        n_intervene=args.n_intervene, mode=args.mode, scorer=args.scorer,
        targets=tuple(args.target) if args.target else None, corpus=args.corpus, max_contexts=args.max_contexts,
        budget=Budget(max_forward_passes=args.max_forward_passes, max_seconds=args.max_seconds),
        dossier=str(dossier_file(args.dossier)) if args.dossier else None)
    progress = TerminalProgress()
    try:
        run = run_investigation(req, progress=progress)
    finally:
        progress.close()
    payload, text = run.summary, investigation_text(run.summary)
    if args.csv_out and "report" in run.paths:
        from interp_agent.core.graphs import load_report_file
        from interp_agent.core.reports.csv import write_features_csv

        csv_path = write_features_csv(load_report_file(run.paths["report"])[0], args.csv_out)
        payload, text = payload | {"csv": str(csv_path)}, text + f"\nranked features as CSV: {csv_path}"
    elif args.csv_out:
        text += "\nno CSV written: the investigation stopped before its final ranking (see the steps above)"
    emit(args, payload, text)
    return 0


def investigation_text(summary: dict[str, Any]) -> str:
    """The terminal summary of an investigation: steps, verdicts, grades and the next calls."""
    lines = [f"investigation of {summary['model']} against {summary['criterion']!r}"]
    for s in summary["steps"]:
        why = f" ({s['reason']})" if s["reason"] else ""
        lines.append(f"  {s['name']:<10} {s['status']:<10} {s['forward_passes']:>9,} passes "
                     f"{s['seconds']:>8.1f} s{why}")
    for fid, verdict in summary["verdicts"].items():
        lines.append(f"  causal test: {fid:<44} {verdict}")
    lines.append(f"dossier {summary['dossier']}: {len(summary['claims'])} claims")
    lines += [f"  {c['kind']:<12} {c['feature_id']:<44} {c['grade']}" for c in summary["claims"][:10]]
    for step in (summary.get("plan") or {}).get("steps", [])[:3]:
        lines.append(f"next: {step.get('cli') or step['tool']}")
    return "\n".join(lines)


def cmd_dossier(args: argparse.Namespace) -> int:
    """``dossier``: print a dossier (text, Markdown, HTML or JSON), or list the dossiers of a folder."""
    from interp_agent.core.dossier import DossierStore, grade_claim, graded_dict, render_html, render_markdown

    path = dossier_file(args.name)
    dossier = DossierStore(path).read()
    if args.format == "md":
        print(render_markdown(dossier))
    elif args.format == "html":
        print(render_html(dossier))
    else:
        body = graded_dict(dossier)
        text = "\n".join([f"dossier {path}: {dossier.criterion!r}, {len(dossier.claims)} claims"] + [
            f"  {c.kind:<12} {c.feature_id:<44} {grade_claim(c).rung or 'ungraded':<14} {grade_claim(c).reason}"
            for c in dossier.claims])
        emit(args, body, text)
    return 0


def cmd_plan_evidence(args: argparse.Namespace) -> int:
    """``plan-evidence``: what each claim lacks and the calls that would supply it, cheapest first."""
    from interp_agent.core.dossier import DossierStore, plan_evidence, plan_from_report

    if (args.dossier is None) == (args.report is None):
        from interp_agent.core.errors import ValidationError, arg

        raise ValidationError(f"give {arg('dossier')} or {arg('report')}, one of them")
    plan = (plan_evidence(DossierStore(dossier_file(args.dossier)).read()) if args.dossier
            else plan_from_report(args.report)).to_dict()
    lines = [f"{i}. {s.get('cli') or s['tool']}\n   supplies {s.get('supplies')} for {len(s.get('claims') or [])} "
             f"claim(s); about {s.get('estimated_seconds')} s ({s.get('estimate_basis')})"
             for i, s in enumerate(plan["steps"], 1)]
    emit(args, plan, "\n".join(lines) or "nothing to plan: every claim has every rung it can get here")
    return 0


def _add_investigate(sub: Subparsers) -> None:
    p = sub.add_parser("investigate", help="a whole investigation in one call: inspect, explain the top features, "
                                           "intervene with controls, rank again; filed into a dossier, within a "
                                           "budget")
    p.add_argument("--model", default="smollm2-135m", help="smollm2-135m (embedded, default), a local folder (e.g. "
                                                           "a model organism) or a hub id")
    p.add_argument("--criterion", help="the criterion (a pack brings its own)")
    add_prompt_source(p, "built-in criterion pack, e.g. measurement_unit")
    p.add_argument("--hookpoint", action="append", help="hookpoint to inspect (repeatable); default: a few middle "
                                                         "layers")
    p.add_argument("--top-k", type=int, default=20, help="features in the reports (default 20)")
    p.add_argument("--n-explain", type=int, default=3, help="top features to explain (default 3; 0 skips)")
    p.add_argument("--n-intervene", type=int, default=3, help="top features to test causally (default 3)")
    p.add_argument("--mode", default="steer", choices=["ablate", "mean_ablate", "clamp", "steer", "patch"])
    p.add_argument("--scorer", default="auto", choices=["auto", "target", "classifier", "probe"])
    p.add_argument("--target", action="append", help="target next token of the behaviour score (repeatable)")
    p.add_argument("--corpus", default="builtin", help="corpus of the explain step (default builtin)")
    p.add_argument("--max-contexts", type=int, default=1024, help="contexts of each explain pass (default 1024)")
    p.add_argument("--max-forward-passes", type=int, help="budget: forward passes (sequences) of all steps")
    p.add_argument("--max-seconds", type=float, help="budget: wall seconds of all steps")
    p.add_argument("--dossier", help="dossier file or NAME (dossiers/NAME.json); default OUT/dossier.json")
    add_out_folder(p)
    add_csv_out(p, "the final report (inspect again with the interventions)")
    add_json_flag(p)
    p.set_defaults(func=cmd_investigate)


def add_investigation_parsers(sub: Subparsers) -> None:
    """Register ``investigate``, ``dossier`` and ``plan-evidence`` on the subparsers action ``sub``."""
    _add_investigate(sub)
    p = sub.add_parser("dossier", help="print a dossier: its claims, their grades on the evidence ladder, and the "
                                       "evidence behind them")
    p.add_argument("name", help="a dossier .json file, or NAME for dossiers/NAME.json")
    p.add_argument("--format", choices=["text", "md", "html"], default="text",
                   help="text (default; --json for the whole object), md or html")
    add_json_flag(p)
    p.set_defaults(func=cmd_dossier)
    p = sub.add_parser("plan-evidence", help="what each claim of a dossier (or feature of a report) still lacks, "
                                             "and the calls that would supply it, cheapest first")
    p.add_argument("--dossier", help="a dossier .json file, or NAME for dossiers/NAME.json")
    p.add_argument("--report", help="or a report.json (or its folder)")
    add_json_flag(p)
    p.set_defaults(func=cmd_plan_evidence)
