"""The ``explain`` subcommand: corpus evidence, explanations and their held-out scores for a model's features."""

from __future__ import annotations

import argparse
from typing import Any

from interp_agent.cli.investigate import add_dossier_option, file_into, open_dossier
from interp_agent.cli.options import Subparsers, add_json_flag, add_out_folder
from interp_agent.cli.output import TerminalProgress, emit


def _fmt_metric(metric: Any) -> str:
    if not metric or metric.get("value") is None:
        return "-"
    ci = metric.get("ci95")
    return f"{metric['value']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def explain_text(compact: dict[str, Any], folder: str) -> str:
    """The terminal summary of an explain run."""
    d = compact["distribution"]
    lines = [f"{compact['n_explained']} explanations of features at {compact['hookpoint']} of {compact['model']}, "
             f"scored on held-out contexts of corpus {compact['corpus']} ({compact['n_contexts']} contexts)"]
    if d.get("n"):
        lines.append(f"embedding AUROC median {d['auroc']['median']:.3f} (IQR {d['auroc']['q25']:.3f}-"
                     f"{d['auroc']['q75']:.3f}); random-explanation null median "
                     f"{d['null_random_explanation']['median']:.3f}; shuffled labels "
                     f"{d['null_shuffled_labels']['median']:.3f}; {d['n_beat_random']}/{d['n']} beat the random null")
    for row in compact["features"]:
        mark = "*" if row["beats_random"] else " "
        lines.append(f"{mark} {row['feature_id']:<18} AUROC {_fmt_metric(row['embedding_auroc']):<24} "
                     f"null {_fmt_metric(row['null_random_explanation']):<24} {row['explanation'][:70]}")
    lines.append(f"written: {folder}/explain.json, explanations.jsonl, labels.parquet, report.html, evidence/")
    return "\n".join(lines)


def cmd_explain(args: argparse.Namespace) -> int:
    """``explain``: harvest a corpus for features, explain them, score the explanations on held-out contexts."""
    from interp_agent.core.workflows.explain import ExplainRequest, compact_summary, run_explain

    req = ExplainRequest(
        out=args.out, model=args.model, sae=args.sae, hookpoint=args.hookpoint, feature_ids=tuple(args.feature or ()),
        n_features=args.n_features, corpus=args.corpus, text_field=args.text_field, max_contexts=args.max_contexts,
        context_length=args.context_length, explainer=args.explainer,
        scorers=tuple(s.strip() for s in args.scorers.split(",") if s.strip()), judge=args.judge,
        explanations=args.explanations, seed=args.seed, batch_size=args.batch_size, device=args.device,
        report=args.report, top_k=args.top_k)
    store = open_dossier(args)
    progress = TerminalProgress()
    try:
        run = run_explain(req, progress=progress)
    finally:
        progress.close()
    if args.neuronpedia_out:
        from interp_agent.core.explain.labels import write_neuronpedia_explanations

        write_neuronpedia_explanations(args.neuronpedia_out, run.explained.values(), model_id=args.neuronpedia_model,
                                       source_id=args.neuronpedia_source)
    if args.labels_out:
        from interp_agent.core.explain.labels import write_label_table

        write_label_table(args.labels_out, run.explained.values())
    compact = compact_summary(run.summary)
    filed = file_into(store, "explain", args.out)
    emit(args, compact | ({"dossier": filed} if filed else {}), explain_text(compact, args.out))
    return 0


def _add_explain(sub: Subparsers) -> None:
    p = sub.add_parser("explain", help="explain features in words from corpus evidence and score the explanations "
                                       "on held-out contexts; writes explain.json, explanations.jsonl, report.html")
    p.add_argument("--model", default="smollm2-135m",
                   help="smollm2-135m (embedded, default), a local folder or a hub id")
    p.add_argument("--sae", help="SAE folder (SAE Lens or sparsify) whose latents to explain")
    p.add_argument("--hookpoint", help="hookpoint whose basis features (L{layer}:D{i}, L{layer}:N{i}) to explain; "
                                       "default: the SAE's")
    p.add_argument("--feature", action="append", metavar="ID", help="feature id to explain (repeatable); default: "
                                                                    "--n-features live ones drawn at random")
    p.add_argument("--n-features", type=int, default=32, help="live features to explain when no --feature is given "
                                                              "(default 32)")
    p.add_argument("--report", help="report.json of an inspect run: explain its top features and write the report "
                                    "again with the explanations attached")
    p.add_argument("--top-k", type=int, default=10, help="top features of --report to explain (default 10)")
    p.add_argument("--corpus", default="builtin",
                   help="builtin (generated general English, default), a .txt/.jsonl/.parquet file, a folder of them, "
                   "hf:DATASET[:SPLIT], or a corpus harvest folder (interp-agent harvest --corpus)")
    p.add_argument("--text-field", default="text", help="text field of JSONL/Parquet corpora (default text)")
    p.add_argument("--max-contexts", type=int, default=2048, help="contexts harvested (default 2048)")
    p.add_argument("--context-length", type=int, default=64, help="tokens per context (default 64)")
    p.add_argument("--explainer", choices=["local", "model", "chat", "none"], default="local",
                   help="local: frequent firing tokens and context words (offline, default); model: the embedded "
                        "instruct model prompted with the evidence (weak); chat: an OpenAI-compatible endpoint "
                        "(INTERP_AGENT_CHAT_BASE_URL, _API_KEY, _MODEL); none: only score --explanations")
    p.add_argument("--scorers", default="embedding", help="comma-separated: embedding (always sensible), detection, "
                                                         "fuzzing (need --judge), output (steers the model)")
    p.add_argument("--judge", choices=["model", "chat"], help="judge of detection and fuzzing: the embedded model "
                                                              "(a weak local judge) or the chat endpoint")
    p.add_argument("--explanations", help="explanations to score too: explanations.jsonl, a feature JSONL with "
                                          "labels, or a Neuronpedia/SAEDashboard export")
    p.add_argument("--labels-out", help="also write the label table here (.parquet or .csv)")
    p.add_argument("--neuronpedia-out", help="also write the explanations in Neuronpedia's upload format (JSON)")
    p.add_argument("--neuronpedia-model", default="smollm2-135m", help="Neuronpedia model id for --neuronpedia-out")
    p.add_argument("--neuronpedia-source", default=None, help="Neuronpedia source (SAE) id, e.g. 15-res-topk")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32, help="contexts per forward pass (default 32)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    add_out_folder(p)
    add_dossier_option(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_explain)


def add_explain_parsers(sub: Subparsers) -> None:
    """Register ``explain`` on the subparsers action ``sub``."""
    _add_explain(sub)
