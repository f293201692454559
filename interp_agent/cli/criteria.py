"""The ``compile-criterion`` and ``score-prompts`` subcommands: author a gated criterion set; score prompts with it."""

from __future__ import annotations

import argparse
from typing import Any

from interp_agent.cli.options import Subparsers, add_json_flag
from interp_agent.cli.output import emit


def _gates_text(payload: dict[str, Any]) -> str:
    lines = [f"criterion set for {payload['criterion']!r}: {payload['counts']['positive']} positive, "
             f"{payload['counts']['negative']} negative; " + ("every gate passed" if payload["passed"] else
                                                              f"FAILED: {', '.join(payload['failed_gates'])}")]
    for g in payload["gates"]:
        value = "n/a" if g["value"] is None else f"{g['value']:.3f}"
        lines.append(f"  {'ok  ' if g['passed'] else 'FAIL'} {g['gate']:<19} {value} (threshold {g['threshold']}) "
                     f"{g['detail'][:110]}")
    lines += [f"  note: {n}" for n in payload.get("notes", [])]
    return "\n".join(lines)


def cmd_compile_criterion(args: argparse.Namespace) -> int:
    """``compile-criterion``: the brief, or a gated criterion set written to ``--out``."""
    from interp_agent.core.criteria.authoring import compile_criterion, criterion_brief

    if args.brief:
        brief = criterion_brief(args.criterion)
        text = "\n".join([f"a good set for {args.criterion!r}: about {brief['per_class']['recommended']} prompts "
                          f"of each class (at least {brief['per_class']['minimum']})", *brief["write"],
                          *(f"gate {k}: {v}" for k, v in brief["gates"].items())])
        emit(args, brief, text)
        return 0
    compiled = compile_criterion(
        args.criterion, positives=args.positive, negatives=args.negative, prompts=args.prompts, source=args.source,
        template=args.template, n_per_class=args.n_per_class, seed=args.seed, out=args.out,
        allow_failures=args.allow_failures, expected_words=tuple(args.expected_word or ()),
        tokenizer_model=None if args.no_tokens else args.tokenizer_model)
    payload = compiled.to_json() | {"folder": str(compiled.folder) if compiled.folder else None}
    text = _gates_text(payload) + (f"\nwritten: {compiled.folder}/prompts.jsonl, criterion_set.json"
                                   if compiled.folder else "")
    emit(args, payload, text)
    return 0


def cmd_score_prompts(args: argparse.Namespace) -> int:
    """``score-prompts``: score a prompt file with a MiniLM classifier and report its held-out accuracy."""
    from interp_agent.core.criteria.authoring import score_prompts

    res = score_prompts(args.prompts, args.criterion, scorer=args.scorer, train=args.train, binarize=args.binarize,
                        out=args.out)
    s = res.summary
    text = (f"{s['n_prompts']} prompts scored for {s['criterion']!r} by a MiniLM classifier (held-out accuracy "
            f"{s['held_out_accuracy']:.2f}, AUROC {s['held_out_auroc']:.2f} on {s['scorer']['held_out']['n_held_out']}"
            f" prompts it was not fitted on)")
    if s.get("n_positive") is not None:
        text += f"; {s['n_positive']} at or above {s['binarize']}"
    if res.folder:
        text += f"\nwritten: {res.folder}/scored_prompts.jsonl, score_summary.json"
    emit(args, s | {"folder": str(res.folder) if res.folder else None}, text)
    return 0


def _add_compile(sub: Subparsers) -> None:
    p = sub.add_parser("compile-criterion", help="turn a criterion in words into a scored, balanced prompt set that "
                                                 "passes duplicate, balance, length, lexical and held-out gates")
    p.add_argument("criterion", help="the criterion in words, e.g. 'the text is written in French'")
    p.add_argument("--positive", action="append", metavar="TEXT", help="a text where the criterion holds "
                                                                      "(repeatable); seeds with --source model")
    p.add_argument("--negative", action="append", metavar="TEXT", help="a text where it does not (repeatable)")
    p.add_argument("--prompts", metavar="FILE", help="scored-prompts JSONL (criterion_score 0/1) instead")
    p.add_argument("--source", choices=("agent", "model", "template"), default="agent",
                   help="agent: the texts given; model: the embedded SmolLM2-135M-Instruct writes candidates; "
                        "template: expand --template")
    p.add_argument("--template", metavar="FILE", help="JSON/YAML spec: positive/negative patterns with {slot}s")
    p.add_argument("--n-per-class", type=int, default=40, help="prompts of each class to generate or expand")
    p.add_argument("--seed", type=int, default=0, help="seeds sampling and template expansion")
    p.add_argument("--expected-word", action="append", metavar="WORD",
                   help="a word the criterion is about, allowed to separate the classes (repeatable)")
    p.add_argument("--tokenizer-model", default="smollm2-135m", help="whose tokens the length gate counts")
    p.add_argument("--no-tokens", action="store_true", help="length gate on word counts only (no tokenizer)")
    p.add_argument("--out", help="folder for prompts.jsonl and criterion_set.json (replaced)")
    p.add_argument("--allow-failures", action="store_true", help="keep a set that fails gates, failures recorded")
    p.add_argument("--brief", action="store_true", help="print what a good set needs, and stop")
    add_json_flag(p)
    p.set_defaults(func=cmd_compile_criterion)


def _add_score(sub: Subparsers) -> None:
    p = sub.add_parser("score-prompts", help="score a prompt file against a criterion with a sentence-encoder "
                                             "classifier, with its held-out accuracy")
    p.add_argument("prompts", metavar="PROMPTS", help="JSONL (objects with text) or a text file, one prompt a line")
    p.add_argument("--criterion", help="the criterion in words (default: the pack's or the compiled set's)")
    p.add_argument("--scorer", default="classifier", help="'classifier' (trained on --train) or a pack name")
    p.add_argument("--train", metavar="PATH", help="labelled prompts to learn from: scored-prompts JSONL or a "
                                                   "compile-criterion output folder")
    p.add_argument("--binarize", type=float, metavar="THRESHOLD", help="write 0/1 labels at this probability")
    p.add_argument("--out", help="folder for scored_prompts.jsonl and score_summary.json")
    add_json_flag(p)
    p.set_defaults(func=cmd_score_prompts)


def add_criteria_parsers(sub: Subparsers) -> None:
    """Register ``compile-criterion`` and ``score-prompts`` on the subparsers action ``sub``."""
    _add_compile(sub)
    _add_score(sub)
