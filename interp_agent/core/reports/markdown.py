"""Markdown rendering of an inspection report (``report.md``).

Also owns the number formatting and the ranked-table columns that the HTML renderer
shares, so both renderings print the same digits for the same report. Every block the
report format allows to be null renders as a dash or a sentence, never an error.
"""

from __future__ import annotations

import html
import math
from typing import Any

from interp_agent.core.ranking.verdict import VERDICT_RULE_TEXT

DASH = "—"
SYNTHETIC_BANNER = "SYNTHETIC DATA"
"""Banner text shown (in both renderings) when the report was built from generated data."""

TABLE_COLUMNS = (
    "Rank", "Feature", "Label", "Direction", "Importance", "Train r", "Held-out r",
    "Held-out supported", "AUROC (held-out)", "Specificity (held-out)", "Stability",
    "Causal (strong)",
)
"""Columns of the ranked table, in order."""

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|#"})


def dig(obj: Any, *keys: str) -> Any:
    """Nested ``dict.get``: None as soon as a level is missing or is not a dict."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def sub_dict(obj: dict, key: str) -> dict:
    """``obj[key]`` when it is a dict, else an empty dict."""
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is not a real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fmt_num(value: Any) -> str:
    """A number to 3 significant digits; ints as they are, bools as yes/no, null as a dash."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3g}" if math.isfinite(value) else DASH
    return str(value)


def fmt_p(value: Any) -> str:
    """A p or q value in scientific notation with 3 significant digits (``1.23e-05``)."""
    number = _number(value)
    if number is None:
        return DASH if value is None or isinstance(value, float) else str(value)
    return f"{number:.2e}"


def fmt_interval(value: Any) -> str:
    """A two-element interval as ``[lo, hi]``, or a dash."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"[{fmt_num(value[0])}, {fmt_num(value[1])}]"
    return DASH


def ranked_features(report: dict) -> list[dict]:
    """The report's features in rank order (``rank``, then list position); non-dicts dropped."""
    features = [f for f in (report.get("features") or []) if isinstance(f, dict)]
    order = sorted(
        range(len(features)),
        key=lambda i: (_number(features[i].get("rank")) is None, _number(features[i].get("rank")) or 0, i),
    )
    return [features[i] for i in order]


def _held_out_or_train(train: Any, held_out: Any) -> tuple[str, float | None]:
    """The held-out value, else the train value marked ``(train)``, else a dash."""
    if _number(held_out) is not None:
        return fmt_num(held_out), _number(held_out)
    if _number(train) is not None:
        return f"{fmt_num(train)} (train)", _number(train)
    return DASH, None


def with_interval(text: str, interval: Any) -> str:
    """``text`` followed by its 95% interval (``0.79 [0.71, 0.85]``), or ``text`` alone without one."""
    return f"{text} {fmt_interval(interval)}" if fmt_interval(interval) != DASH else text


def table_row(feature: dict) -> list[tuple[str, Any]]:
    """Cells of a feature's ranked-table row as (display text, sort value), per ``TABLE_COLUMNS``.

    Held-out r and AUROC carry their 95% interval when the report has one.
    """
    assoc = feature.get("association")
    supported = dig(assoc, "held_out_supported")
    auroc = _held_out_or_train(dig(assoc, "train", "auroc"), dig(assoc, "held_out", "auroc"))
    if _number(dig(assoc, "held_out", "auroc")) is not None:
        auroc = (with_interval(auroc[0], dig(assoc, "held_out", "auroc_ci95")), auroc[1])
    r_held = dig(assoc, "held_out", "pearson_r")
    spec = _held_out_or_train(dig(feature, "specificity", "train"), dig(feature, "specificity", "held_out"))
    stability = dig(feature, "stability", "bootstrap_top_k_frequency")
    causal = dig(feature, "causal", "strong_causal_score")
    cells: list[tuple[Any, Any]] = [
        (feature.get("rank"), feature.get("rank")),
        (feature.get("feature_id"), feature.get("feature_id")),
        (feature.get("label"), feature.get("label")),
        (feature.get("direction"), feature.get("direction")),
        (feature.get("importance"), feature.get("importance")),
        (dig(assoc, "train", "pearson_r"), dig(assoc, "train", "pearson_r")),
        (with_interval(fmt_num(r_held), dig(assoc, "held_out", "pearson_r_ci95")), r_held),
        (untested_or(supported, assoc), None if supported is None or untested(assoc) else int(bool(supported))),
        auroc,
        spec,
        (stability, stability),
        (causal, causal),
    ]
    return [(text if isinstance(text, str) and text else fmt_num(text), sort) for text, sort in cells]


def md_text(value: Any) -> str:
    """User text made safe for one Markdown line or table cell (HTML and Markdown escaped)."""
    if value is None:
        return DASH
    text = " ".join(str(value).split())
    return html.escape(text, quote=False).translate(_MD_SPECIAL)


def _truncate(text: str, limit: int = 240) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Lines of a Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def rows_sentence(summary: dict | None) -> str:
    """What the report's statistics rest on: rows and prompts, per split (one line, no Markdown)."""
    s = summary if isinstance(summary, dict) else {}
    if s.get("n_train_rows") is None:
        return "No activation records: nothing was measured on prompts"
    rows, prompts = s.get("n_rows"), s.get("n_prompts")
    if s.get("n_train_prompts") is None:  # a report written before prompts were counted per split
        return (f"Rows: {fmt_num(rows)} ({fmt_num(s.get('n_train_rows'))} train, "
                f"{fmt_num(s.get('n_held_out_rows'))} held-out) from {fmt_num(prompts)} prompts")
    if rows == prompts:
        return (f"Prompts: {fmt_num(prompts)}, one row each: {fmt_num(s.get('n_train_prompts'))} train, "
                f"{fmt_num(s.get('n_held_out_prompts'))} held-out")
    return (f"Rows: {fmt_num(rows)} from {fmt_num(prompts)} prompts: train {fmt_num(s.get('n_train_rows'))} rows "
            f"of {fmt_num(s.get('n_train_prompts'))} prompts, held-out {fmt_num(s.get('n_held_out_rows'))} rows "
            f"of {fmt_num(s.get('n_held_out_prompts'))} prompts")


def scores_sentence(summary: dict | None) -> str | None:
    """The kind of criterion scores and their positive rate (binary) or mean (continuous); None without records."""
    s = summary if isinstance(summary, dict) else {}
    kind = s.get("score_kind")
    if kind is None:
        return None
    if kind == "continuous":
        return f"Scores: continuous; mean score, scaled to [0, 1]: {fmt_num(s.get('positive_rate'))}"
    return f"Scores: {md_text(kind)}; positive rate {fmt_num(s.get('positive_rate'))}"


def _summary_lines(report: dict) -> list[str]:
    """Bullet lines of the summary block."""
    s = sub_dict(report, "summary")
    alpha = dig(report, "settings", "alpha")
    n_reported = len(ranked_features(report))
    lines = [f"- {rows_sentence(s)}"]
    scores = scores_sentence(s)
    if scores:
        lines.append(f"- {scores}")
    tested = f"- Features tested: {fmt_num(s.get('n_features_tested'))}"
    if s.get("n_significant_train") is not None:
        tested += (f"; significant on train (q < {fmt_num(alpha)}): {fmt_num(s.get('n_significant_train'))}; "
                   f"of the {n_reported} reported, confirmed on held-out prompts: "
                   f"{fmt_num(s.get('n_held_out_supported'))}")
        if s.get("n_held_out_excludes_chance") is not None:
            excluding = fmt_num(s.get("n_held_out_excludes_chance"))
            tested += f", with held-out 95% intervals that exclude chance: {excluding}"
    lines.append(tested)
    if s.get("ranking_stability") is not None:
        lines.append(f"- Ranking stability (mean Spearman correlation of bootstrap rankings): "
                     f"{fmt_num(s.get('ranking_stability'))}")
    lines.append(f"- Intervention rows: {fmt_num(s.get('n_intervention_rows'))}; "
                 f"control rows: {fmt_num(s.get('n_control_rows'))}")
    controls = report.get("controls")
    if isinstance(controls, dict):
        lines.append(
            f"- Controls ({md_text(controls.get('provenance'))}): n={fmt_num(controls.get('n'))}, "
            f"mean effect {fmt_num(controls.get('mean_effect'))}, 95% CI {fmt_interval(controls.get('ci95'))}"
        )
    return lines


def untested(assoc: Any) -> bool:
    """True when a feature was measured on training prompts but has no held-out statistics."""
    return isinstance(assoc, dict) and assoc.get("held_out") is None


def untested_or(supported: Any, assoc: Any) -> Any:
    """``held_out_supported`` for a table cell: "not tested" rather than a bare false when nothing was tested."""
    return "not tested" if untested(assoc) else supported


def held_out_verdict(assoc: dict, summary: dict | None) -> str:
    """Whether the held-out split supports a feature, said so that it agrees with the summary's counts."""
    held = assoc.get("held_out")
    if held is None:
        n_rows = _number(dig(summary, "n_held_out_rows"))
        if n_rows is None or n_rows >= 3:
            return "not tested (no held-out statistics)"
        rows = f"{fmt_num(int(n_rows))} row{'' if n_rows == 1 else 's'}"
        return f"not tested: the held-out split has {rows}, and held-out statistics need at least 3"
    return fmt_num(assoc.get("held_out_supported")) + interval_clause(held)


def interval_clause(held: dict) -> str:
    """``; 95% intervals exclude chance: no`` for a held-out block with intervals; empty for an older report."""
    if "ci_excludes_chance" not in held:
        return ""
    chance = held["ci_excludes_chance"]
    if chance is None:
        return "; too few held-out prompts for an interval"
    return f"; 95% intervals exclude chance: {fmt_num(chance)}"


def power_sentence(assoc: dict) -> str | None:
    """How many held-out prompts a test would need, at the training and at the held-out r; None without the block."""
    power = assoc.get("held_out_power")
    if not isinstance(power, dict):
        return None
    return (f"Held-out prompts needed ({md_text(power.get('method'))}): "
            f"{fmt_num(power.get('prompts_needed_at_train_r'))} to detect the training r, "
            f"{fmt_num(power.get('prompts_needed_at_held_out_r'))} to detect the held-out r; "
            f"this split has {fmt_num(power.get('n_held_out_prompts'))}")


def _association_lines(assoc: dict, summary: dict | None = None) -> list[str]:
    """Lines of a feature's association block: train and held-out side by side, then the power estimate."""
    rows = []
    for key, name, fmt in (
        ("n", "rows", fmt_num), ("n_prompts", "prompts", fmt_num), ("nnz", "non-zero rows", fmt_num),
        ("pearson_r", "Pearson r", fmt_num), ("pearson_r_ci95", "Pearson r, 95% CI (held-out only)", fmt_interval),
        ("p_value", "p", fmt_p), ("q_value", "q", fmt_p), ("auroc", "AUROC", fmt_num),
        ("auroc_ci95", "AUROC, 95% CI (held-out only)", fmt_interval),
        ("mean_positive", "mean activation, positive", fmt_num),
        ("mean_negative", "mean activation, negative", fmt_num),
    ):
        rows.append([name, fmt(dig(assoc, "train", key)), fmt(dig(assoc, "held_out", key))])
    power = power_sentence(assoc)
    return [
        (f"Association ({md_text(assoc.get('provenance'))}); supported on held-out prompts: "
        f"{held_out_verdict(assoc, summary)}"),
        "",
        *_md_table(["", "train", "held-out"], rows),
        *(["", power] if power else []),
    ]


def _card_lines(card: Any) -> list[str]:
    """Bullet lines of an imported feature card (Neuronpedia, Goodfire); none without one."""
    if not isinstance(card, dict):
        return []
    source = sub_dict(card, "source")
    lines = [
        (f"- Card ({md_text(card.get('provenance'))}) from {md_text(source.get('kind'))}: "
        f"{md_text(source.get('url') or source.get('file'))}, retrieved {md_text(source.get('retrieved_at'))}; "
        f"density {fmt_num(card.get('density'))}; max activation {fmt_num(card.get('max_activation'))}")
    ]
    logits = sub_dict(card, "logit_effects")
    for sign, name in (("positive", "promotes"), ("negative", "suppresses")):
        pairs = [p for p in logits.get(sign) or [] if isinstance(p, (list, tuple)) and len(p) == 2][:10]
        if pairs:
            lines.append(f"- Logit effects, {name}: " + ", ".join(f"{md_text(repr(t))} {fmt_num(v)}" for t, v in pairs))
    lines += [f"- Note: {md_text(n)}" for n in card.get("notes") or [] if n]
    return lines


def stability_sentence(stab: dict, top_k: Any) -> str:
    """How often the bootstrap kept the feature in the top k, as a count of resamples and a share."""
    share, resamples = _number(stab.get("bootstrap_top_k_frequency")), _number(stab.get("resamples"))
    top = f"top {fmt_num(top_k)}" if _number(top_k) is not None else "top k"
    if share is None or resamples is None:
        kept = f"share of bootstrap resamples in the {top} with the same sign: {fmt_num(share)}"
    else:
        kept = (f"in the {top} with the same sign in {round(share * resamples)} of {round(resamples)} bootstrap "
                f"resamples ({share:.0%})")
    return f"{kept}; bootstrap r interval {fmt_interval(stab.get('bootstrap_r_interval'))}"


def _importance_line(feature: dict) -> str:
    """The feature's importance, with its components and where each comes from."""
    components = feature.get("importance_components")
    parts = [
        f"{md_text(name)} {fmt_num(dig(comp, 'value'))} ({md_text(dig(comp, 'provenance'))})"
        for name, comp in (components.items() if isinstance(components, dict) else [])
        if isinstance(comp, dict)
    ]
    importance = f"- Importance: {fmt_num(feature.get('importance'))}"
    return importance + (f"; components: {', '.join(parts)}" if parts else "")


def causal_stability_sentence(stability: Any) -> str | None:
    """How the verdict held across the strengths tried, per strength; None without a stability block."""
    if not isinstance(stability, dict):
        return None
    n, same = stability.get("n_strengths"), stability.get("n_same")
    if not n:
        return str(stability.get("note") or "not measured")
    parts = [f"{fmt_num(b.get('strength'))}: {b.get('verdict')} {fmt_num(b.get('effect'))}"
             for b in (stability.get("by_strength") or []) if isinstance(b, dict)]
    return f"same verdict at {fmt_num(same)}/{fmt_num(n)} strengths" + (f" ({'; '.join(parts)})" if parts else "")


def method_items(report: dict) -> dict:
    """The report's method entries, plus the verdict rule when a feature's causal block has a verdict."""
    method = dict(report.get("method") or {}) if isinstance(report.get("method"), dict) else {}
    judged = any(isinstance(f, dict) and dig(f, "causal", "verdict") is not None
                 for f in (report.get("features") or []))
    if judged and "verdict" not in method:
        method["verdict"] = VERDICT_RULE_TEXT
    return method


def _causal_line(causal: Any) -> str:
    """The feature's intervention evidence: score, effect with its interval, side and control effects, verdict."""
    if not isinstance(causal, dict):
        return "- Causal: no intervention evidence"
    line = (
        f"- Causal ({md_text(causal.get('provenance'))}): strong score "
        f"{fmt_num(causal.get('strong_causal_score'))}; mean effect {fmt_num(causal.get('mean_effect'))} "
        f"(95% CI {fmt_interval(causal.get('ci95'))}, n={fmt_num(causal.get('n'))}); "
        f"side effect {fmt_num(causal.get('side_effect'))}; control effect "
        f"{fmt_num(causal.get('control_effect'))} (n={fmt_num(causal.get('n_controls'))}); "
        f"agrees with association: {fmt_num(causal.get('agrees_with_association'))}"
    )
    if causal.get("verdict") is None:
        return line
    subs = [f"  - Verdict: {md_text(causal.get('verdict'))} ({md_text(causal.get('verdict_source'))}): "
            f"{md_text(causal.get('verdict_reason'))}"]
    if causal.get("note"):
        subs.append(f"  - Note: {md_text(causal.get('note'))}")
    stability = causal_stability_sentence(causal.get("stability"))
    if stability:
        subs.append(f"  - Stability across strengths: {md_text(stability)}")
    if causal.get("confidence"):
        subs.append(f"  - Confidence: {md_text(causal.get('confidence'))}")
    return "\n".join([line, *subs])


def _example_lines(feature: dict) -> list[str]:
    """The table of the feature's top examples, or a line saying it has none."""
    examples = [e for e in (feature.get("examples") or []) if isinstance(e, dict)]
    if not examples:
        return ["No examples.", ""]
    rows = [
        [
            fmt_num(e.get("activation")), fmt_num(e.get("criterion_score")), md_text(e.get("prompt_id")),
            md_text(e.get("token")) if e.get("token") is not None else DASH,
            md_text(_truncate(str(e.get("text") or ""))),
        ]
        for e in examples
    ]
    return ["Top examples:", "", *_md_table(["activation", "score", "prompt", "token", "text"], rows), ""]


def _explained_lines(explained: Any) -> list[str]:
    """A scored explanation (explain's ``explained`` entry): its text, author and each score with its null."""
    if not isinstance(explained, dict) or not explained.get("text"):
        return []
    author = sub_dict(explained, "author")
    lines = [f"- Explanation ({md_text(author.get('kind'))}, {md_text(author.get('name'))}): "
             f"{md_text(explained['text'])}"]
    for score in explained.get("scores") or []:
        if not isinstance(score, dict):
            continue
        auroc, null = sub_dict(score, "auroc"), sub_dict(score, "null_random_explanation")
        lines.append(f"  - {md_text(score.get('method'))}: AUROC {fmt_num(auroc.get('value'))} "
                     f"{fmt_interval(auroc.get('ci95'))} vs another feature's explanation {fmt_num(null.get('value'))} "
                     f"{fmt_interval(null.get('ci95'))}, "
                     f"on {fmt_num(score.get('n_positive'))}+{fmt_num(score.get('n_negative'))} held-out contexts "
                     f"({md_text(score.get('provenance'))})")
    return [*lines, ""]


def _feature_lines(feature: dict, report: dict | None = None) -> list[str]:
    """The Markdown section of one feature."""
    lines = [
        (f"### {fmt_num(feature.get('rank'))}. {md_text(feature.get('feature_id'))}: "
        f"{md_text(feature.get('label') or '(no label)')}"),
        "",
    ]
    if feature.get("explanation"):
        lines += [f"> {md_text(feature['explanation'])}", ""]
    lines += _explained_lines(feature.get("explained"))
    lines.append(
        f"- Direction: {md_text(feature.get('direction'))}; layer {fmt_num(feature.get('layer'))}; "
        f"source {md_text(feature.get('source'))}"
    )
    lines.append(_importance_line(feature))
    spec = feature.get("specificity")
    if isinstance(spec, dict):
        lines.append(
            f"- Specificity ({md_text(spec.get('provenance'))}): train {fmt_num(spec.get('train'))}, "
            f"held-out {fmt_num(spec.get('held_out'))}, base rate {fmt_num(spec.get('base_rate'))}"
        )
    stab = feature.get("stability")
    if isinstance(stab, dict):
        lines.append(f"- Stability ({md_text(stab.get('provenance'))}): "
                     f"{md_text(stability_sentence(stab, dig(report, 'settings', 'top_k')))}")
    lines.append(_causal_line(feature.get("causal")))
    imported = feature.get("imported")
    if isinstance(imported, dict) and isinstance(imported.get("causal_effects"), dict):
        effects = ", ".join(f"{md_text(k)} {fmt_num(v)}" for k, v in imported["causal_effects"].items())
        lines.append(f"- Imported causal effects ({md_text(imported.get('provenance'))}): {effects or DASH}")
    lines += _card_lines(feature.get("card"))
    lines += [f"- Note: {md_text(n)}" for n in feature.get("notes") or [] if n]
    assoc = feature.get("association")
    if isinstance(assoc, dict):
        lines += ["", *_association_lines(assoc, dig(report, "summary")), ""]
    else:
        lines += ["- Association: not measured (no activation records)", ""]
    return lines + _example_lines(feature)


def render_markdown(report: dict) -> str:
    """Render an inspection report (``report.json`` as a dict) as Markdown.

    Args:
        report: the report, as defined in ``docs/report-format.md``; optional blocks may be null.

    Returns:
        The Markdown text, ending with a newline.
    """
    prov = sub_dict(report, "provenance")
    lines = [f"# Inspection report: {md_text(report.get('criterion'))}", ""]
    if report.get("synthetic"):
        lines += [
            (f"> **{SYNTHETIC_BANNER}.** This report was built from generated data, not from a model. "
            "No number in it describes a real model."),
            "",
        ]
    lines += [
        f"- Model: {md_text(report.get('model'))}",
        f"- Criterion: {md_text(report.get('criterion'))}",
        f"- Backend: {md_text(report.get('backend'))}",
        (f"- Tool: {md_text(prov.get('tool'))} {md_text(prov.get('tool_version'))}, "
        f"created {md_text(prov.get('created_utc'))}"),
        "",
        "## Summary",
        "",
        *_summary_lines(report),
        "",
    ]
    warnings = [w for w in (report.get("warnings") or []) if w]
    if warnings:
        lines += ["## Warnings", "", *[f"- {md_text(w)}" for w in warnings], ""]
    features = ranked_features(report)
    lines += ["## Ranked features", ""]
    if features:
        rows = [[md_text(text) for text, _ in table_row(f)] for f in features]
        lines += [*_md_table(list(TABLE_COLUMNS), rows), ""]
        for feature in features:
            lines += _feature_lines(feature, report)
    else:
        lines += ["No features were reported.", ""]
    method = method_items(report)
    if method:
        lines += ["## Method", "", *[f"- **{md_text(k)}**: {md_text(v)}" for k, v in method.items()], ""]
    return "\n".join(lines).rstrip("\n") + "\n"
