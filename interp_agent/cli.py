"""The ``interp-agent`` command line: the same verbs as the Python API, ``--json`` for machines.

Bad input exits with code 2 and one line on stderr saying what is wrong and what to do.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from interp_agent._version import __version__
from interp_agent.core.errors import InterpAgentError

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
    top = []
    for f in report["features"][:limit]:
        assoc = f.get("association") or {}
        top.append(
            {
                "rank": f["rank"],
                "feature_id": f["feature_id"],
                "label": f.get("label"),
                "importance": round(f["importance"], 4),
                "direction": f.get("direction"),
                "r_train": (assoc.get("train") or {}).get("pearson_r"),
                "r_held_out": (assoc.get("held_out") or {}).get("pearson_r"),
                "held_out_supported": assoc.get("held_out_supported"),
                "strong_causal_score": (f.get("causal") or {}).get("strong_causal_score"),
            }
        )
    return {
        "model": report["model"],
        "criterion": report["criterion"],
        "backend": report["backend"],
        "synthetic": report["synthetic"],
        "summary": report["summary"],
        "warnings": report["warnings"],
        "top": top,
        "paths": {k: str(v) for k, v in paths.items()},
    }


def _fmt(value: Any) -> str:
    return "—" if value is None else (f"{value:+.3f}" if isinstance(value, float) else str(value))


def _inspection_text(compact: dict[str, Any]) -> str:
    lines = [f"{'[SYNTHETIC] ' if compact['synthetic'] else ''}{compact['model']} — {compact['criterion']}"]
    lines += [f"warning: {w}" for w in compact["warnings"]]
    lines.append(f"{'rank':>4}  {'importance':>10}  {'r train':>8}  {'r held':>8}  held-out  feature")
    for t in compact["top"]:
        lines.append(
            f"{t['rank']:>4}  {t['importance']:>10.4f}  {_fmt(t['r_train']):>8}  {_fmt(t['r_held_out']):>8}  "
            f"{'yes' if t['held_out_supported'] else 'no':>8}  {t['feature_id']}  {t['label'] or ''}"
        )
    for name, path in compact["paths"].items():
        lines.append(f"{name}: {path}")
    return "\n".join(lines)


# -- commands ---------------------------------------------------------------------------------
def cmd_inspect(args: argparse.Namespace) -> int:
    from interp_agent.core.inspection import inspect
    from interp_agent.core.ranking import RankingConfig

    config = RankingConfig(
        held_out_fraction=args.held_out_fraction, split_salt=args.split_salt, top_k=args.top_k,
        candidates=max(args.candidates, args.top_k), bootstrap=args.bootstrap, seed=args.seed, alpha=args.alpha,
    )
    progress = _TerminalProgress()
    try:
        result = inspect(
            args.model, args.criterion, backend=args.backend, records=args.records, features=args.features,
            interventions=args.interventions, out=args.out, config=config,
            allow_intervention_criterion_mismatch=args.allow_intervention_criterion_mismatch, progress=progress,
        )
    finally:
        progress.close()
    compact = _compact_inspection(result.report, result.paths)
    _emit(args, compact, _inspection_text(compact))
    return 0


def cmd_match(args: argparse.Namespace) -> int:
    from interp_agent.api import match

    result = match(args.left, args.right, out=args.out, min_similarity=args.min_similarity, use_text=not args.no_text)
    lines = [f"{m['left_feature_id']} ↔ {m['right_feature_id']}  similarity {m['similarity']:.3f}" for m in result["matches"]]
    lines += [f"note: {n}" for n in result.get("notes", [])]
    lines.append(f"wrote {args.out} and {Path(args.out).parent / 'matches.md'}")
    _emit(args, {"summary": result["summary"], "notes": result.get("notes", []), "matches": result["matches"][:20],
                 "paths": {"json": str(args.out), "md": str(Path(args.out).parent / "matches.md")}}, "\n".join(lines))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from interp_agent.api import convert

    out = convert(args.src, args.out)
    _emit(args, {"out": str(out)}, f"wrote {out}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from interp_agent.core.doctor import diagnose, render

    report = diagnose(load_models=not args.quick)
    _emit(args, report, render(report))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from interp_agent.core.demo import run_demo

    progress = _TerminalProgress()
    try:
        summary = run_demo(Path(args.out), progress=progress)
    finally:
        progress.close()
    _emit(args, summary, "\n".join(summary["lines"]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``interp-agent``."""
    parser = _Parser(prog="interp-agent", description="Criterion-driven mechanistic interpretability.")
    parser.add_argument("--version", action="version", version=f"interp-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("inspect", help="rank features against a criterion; writes report.json/.md/.html")
    p.add_argument("--model", required=True, help="model the evidence belongs to (e.g. my/model, toy/model-a)")
    p.add_argument("--criterion", required=True, help="natural-language criterion")
    p.add_argument("--backend", choices=["records", "features", "toy"], default="records",
                   help="records: activation records; features: a feature JSONL dump (label similarity, no "
                        "measured association); toy: generated planted records, labelled synthetic")
    p.add_argument("--records", help="activation records: JSONL file or Parquet dataset folder")
    p.add_argument("--features", help="feature JSONL (labels, examples, signatures)")
    p.add_argument("--interventions", help="intervention records JSONL (causal evidence)")
    p.add_argument("--allow-intervention-criterion-mismatch", action="store_true",
                   help="use intervention rows whose criterion text differs from --criterion")
    p.add_argument("--top-k", type=int, default=20, help="features in the report (default 20)")
    p.add_argument("--candidates", type=int, default=200,
                   help="features (top |r| on the training split) analysed in full (default 200)")
    p.add_argument("--held-out-fraction", type=float, default=0.3, help="share of prompts held out (default 0.3)")
    p.add_argument("--split-salt", default="interp-agent", help="salt of the prompt-id hash that draws the split")
    p.add_argument("--bootstrap", type=int, default=50, help="bootstrap resamples for stability (default 50)")
    p.add_argument("--alpha", type=float, default=0.05, help="false discovery rate for q-values (default 0.05)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap weights")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("match", help="match features of two reports one to one; writes matches.json and matches.md")
    p.add_argument("--left", required=True, help="report.json (or its folder)")
    p.add_argument("--right", required=True, help="report.json (or its folder)")
    p.add_argument("--out", required=True, help="matches.json path (matches.md goes beside it)")
    p.add_argument("--min-similarity", type=float, default=0.3, help="smallest combined similarity kept (default 0.3)")
    p.add_argument("--no-text", action="store_true", help="skip label embeddings (no sentence encoder)")
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(func=cmd_match)

    p = sub.add_parser("convert", help="convert activation records JSONL <-> Parquet dataset folder")
    p.add_argument("src", help="records JSONL file or Parquet dataset folder")
    p.add_argument("out", help="Parquet dataset folder (from JSONL) or *.jsonl (from Parquet)")
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("doctor", help="what is installed, which extras work, whether the models load")
    p.add_argument("--quick", action="store_true", help="only check imports; do not load the sentence encoder")
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("demo", help="the main job end to end on built-in synthetic inputs; writes reports")
    p.add_argument("--out", default="demo-out", help="output folder (default demo-out)")
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.set_defaults(func=cmd_demo)
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
