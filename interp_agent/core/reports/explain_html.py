"""HTML page of an explain run (``explain.html``): one self-contained file, one card per feature.

The page reuses the inspection report's CSS (:data:`~interp_agent.core.reports.html.REPORT_CSS`)
and its score table, carries inline-SVG histograms and references nothing outside itself, so
it opens offline. Every value taken from the evidence or the explanations is escaped.

Each card shows a feature's explanation with its author and scores (nulls, judge,
provenance), the causal verdict when one is given, its density and activations, the
histogram of per-context maximum activation, the tokens it promotes and suppresses, and
its examples from both splits: tokens shaded in proportion to their activation over the
feature's largest, whitespace and control characters drawn as visible marks. At most
:data:`EXAMPLE_CAPS` examples of each role are shown per split, so a page of many features
stays small.
"""

from __future__ import annotations

import html
import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from interp_agent.core.explain.evidence import (
    SPLITS,
    Contexts,
    EvidenceSet,
    Example,
    FeatureEvidence,
    Role,
    Split,
)
from interp_agent.core.explain.explanations import Method, Metric, ScoredExplanation
from interp_agent.core.reports.html import REPORT_CSS, explanation_panel, kv_table, provenance_tag, yes_no
from interp_agent.core.reports.markdown import DASH, SYNTHETIC_BANNER, fmt_interval, fmt_num
from interp_agent.core.reports.svg import counts_histogram_svg

EXAMPLE_CAPS: dict[Role, int] = {"top": 6, "quantile": 10, "random": 3}
"""Most examples of each role shown per split."""
MAX_OUTPUT_TOKENS = 10
"""Most promoted (and suppressed) tokens listed per feature."""

_OTHER_METHODS: tuple[Method, ...] = ("detection", "fuzzing", "output")
_EXAMPLE_ROLES: tuple[tuple[Role, str], ...] = (
    ("top", "Top activations"), ("quantile", "Quantile samples (low to high)"))
_SPLIT_NAMES: dict[Split, str] = {"explain": "explain", "held_out": "held-out"}
_VISIBLE = {"\n": "↵", "\t": "→", "\r": "␍", " ": "·"}
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}
_CSS = """
.feature-card .explanation.lead{font-size:16px;margin:8px 0}
.feature-card .panels{grid-template-columns:repeat(auto-fit,minmax(340px,1fr))}
.splits{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:14px}
.splits h5{margin:6px 0 0;font-size:12px;color:var(--muted);font-weight:600}
.examples li.example{padding:4px 8px}.ws{color:#adb5bd}.tok .ws{color:inherit;opacity:.65}
.split{display:inline-block;padding:0 5px;margin-right:6px;border-radius:8px;font-size:11px;border:1px solid}
.split-explain{background:#f3f0ff;color:#5f3dc4;border-color:#d0bfff}
.split-held_out{background:#e6fcf5;color:#087f5b;border-color:#96f2d7}
.tokens{margin:0;padding-left:18px;font-size:13px}.tokens code{white-space:pre}
details.random{margin-top:10px}details.random summary{cursor:pointer;color:var(--muted)}
.summary td.label{min-width:240px}.summary th{white-space:normal}
.summary .ci,.imp .ci{color:var(--muted);font-size:11px}.summary .ci{display:block}.imp .ci{margin-left:4px}
"""


def _e(value: Any) -> str:
    """``value`` as escaped HTML text; None as a dash."""
    return DASH if value is None else html.escape(str(value))


def report_explanation(item: ScoredExplanation) -> dict[str, Any]:
    """The ``explanation`` block of an inspection report's feature: text, author and every score as dicts.

    :func:`~interp_agent.core.reports.html.render_html` draws it as the card's Explanation panel.
    """
    return {"text": item.explanation.text, "author": asdict(item.explanation.author),
            "scores": [asdict(s) for s in item.scores]}


def anchors(feature_ids: Sequence[str]) -> dict[str, str]:
    """The ``id`` of each feature's card: ``feature-`` and a slug of its id, numbered when two slugs collide."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for feature_id in feature_ids:
        base = "feature-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", feature_id).strip("-") or "x")
        anchor, n = base, 1
        while anchor in taken:
            n += 1
            anchor = f"{base}-{n}"
        taken.add(anchor)
        out[feature_id] = anchor
    return out


def render_explain_html(evidence: EvidenceSet, explained: Mapping[str, ScoredExplanation], *,
                        feature_ids: Sequence[str] | None = None, verdicts: Mapping[str, dict] | None = None,
                        title: str = "interp-agent explanations") -> str:
    """Render an explain run as one self-contained HTML page: a header, a summary table, one card per feature.

    Args:
        evidence: the harvest the explanations were written from and scored on.
        explained: scored explanations by feature id; a feature without one gets a card all the same.
        feature_ids: features to show, in order (default: every feature of ``evidence``).
        verdicts: causal verdicts by feature id, e.g. ``{"verdict": "...", "effect": x, "ci95": [lo, hi]}``.
        title: the page title.

    Returns:
        The HTML document; it loads nothing from outside itself.

    Raises:
        ValidationError: a feature id that ``evidence`` does not have.
    """
    ids = list(evidence.features) if feature_ids is None else list(dict.fromkeys(feature_ids))
    features = [evidence.feature(i) for i in ids]
    where = anchors(ids)
    verdicts = verdicts or {}
    cards = "".join(
        _card(f, evidence.contexts, explained.get(f.feature_id), verdicts.get(f.feature_id), where[f.feature_id])
        for f in features)
    body = (_header(evidence, title) + '<h2 id="summary">Features</h2>'
            + (_summary_table(features, explained, where) if features else '<p class="muted">No features.</p>')
            + cards + f"<footer>{_e(evidence.manifest.schema_version)}</footer>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{REPORT_CSS}{_CSS}</style></head>"
        f'<body><main class="container">{body}</main></body></html>\n'
    )


def _plain(value: Any) -> str:
    """A manifest value as short text: numbers to 3 digits, containers as compact JSON."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str, ensure_ascii=False, separators=(", ", ": "))
    return fmt_num(value)


def _header(evidence: EvidenceSet, title: str) -> str:
    """Title, where the evidence came from, how it was split, and (when the corpus is generated) the banner."""
    m, contexts = evidence.manifest, evidence.contexts
    corpus = m.corpus
    n_held = int(np.count_nonzero(contexts.held_out))
    corpus_text = " · ".join(str(v) for v in (corpus.get("name"), corpus.get("note")) if v)
    meta = [
        ("Model", m.model), ("Hookpoint", m.hookpoint), ("Features from", _plain(m.feature_source)),
        ("Corpus", corpus_text or None), ("Synthetic corpus", fmt_num(bool(corpus.get("synthetic")))),
        ("Contexts", f"{m.n_contexts} × {m.context_length} tokens ({m.n_tokens} counted)"),
        ("Splits", f"{len(contexts) - n_held} explain / {n_held} held-out (held-out fraction "
                   f"{fmt_num(m.held_out_fraction)}, seed {m.seed})"),
    ]
    meta += [(f"Corpus {k}", _plain(v)) for k, v in corpus.items() if k not in ("name", "note", "synthetic")]
    meta += [(str(k), _plain(v)) for k, v in m.provenance.items()]
    items = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in meta)
    out = f'<header><h1>{_e(title)}</h1><dl class="meta">{items}</dl></header>'
    if m.settings:
        out += f'<p class="muted">Harvest settings: {_e(_plain(m.settings))}</p>'
    made_up = m.feature_source.get("kind") == "synthetic" or bool(m.settings.get("synthetic"))
    if corpus.get("synthetic"):
        note = f" Corpus note: {_e(corpus.get('note'))}." if corpus.get("note") else ""
        if made_up:
            out += (f'<div class="synthetic-banner" role="alert"><strong>{SYNTHETIC_BANNER}.</strong> The corpus is '
                    f"generated, not real text, and so are the activations.{note} No number here describes how a "
                    "model reads real text.</div>")
        else:
            out += ('<div class="synthetic-banner" role="alert"><strong>GENERATED CORPUS.</strong> The text was '
                    f"written by a language model, not by people.{note} The activations and scores are measured on "
                    "the model over this text; they describe the features on text like it.</div>")
    return out


def _metric_cell(metric: Metric | None) -> str:
    """A metric's value with its interval (escaped), or a dash."""
    if metric is None or metric.value is None:
        return DASH
    ci = f'<span class="ci">{_e(fmt_interval(metric.ci95))}</span>' if metric.ci95 is not None else ""
    return _e(fmt_num(metric.value)) + ci


def _summary_table(features: list[FeatureEvidence], explained: Mapping[str, ScoredExplanation],
                   where: Mapping[str, str]) -> str:
    """One row per feature: explanation, author, embedding AUROC, null, margin, beats random, other AUROCs."""
    items = [explained.get(f.feature_id) for f in features]
    others: list[Method] = [m for m in _OTHER_METHODS if any(i and i.score(m) for i in items)]
    head = ["Feature", "Explanation", "Author", "AUROC (embedding)", "Null (random expl.)", "Margin", "Beats random",
            *(f"AUROC ({m})" for m in others), "Density"]
    rows = []
    for feature, item in zip(features, items, strict=True):
        emb = item.score("embedding") if item else None
        cells = [f'<a href="#{where[feature.feature_id]}"><code>{_e(feature.feature_id)}</code></a>',
                 _e(item.explanation.text) if item else '<span class="muted">not explained</span>',
                 _e(f"{item.explanation.author.kind} · {item.explanation.author.name}") if item else DASH,
                 *(_metric_cell(m) for m in ((emb.auroc, emb.null_random_explanation, emb.margin_over_random)
                                             if emb else (None, None, None))),
                 yes_no(emb.beats_random) if emb else DASH]
        cells += [_metric_cell(s.auroc) if item and (s := item.score(m)) else DASH for m in others]
        cells.append(_e(fmt_num(feature.density)))
        rows.append("<tr>" + "".join(f'<td class="{_cell_class(i)}">{c}</td>' for i, c in enumerate(cells))
                    + "</tr>")
    thead = "".join(f'<th scope="col">{_e(h)}</th>' for h in head)
    return (f'<div class="scroll"><table class="summary"><thead><tr>{thead}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _cell_class(column: int) -> str:
    """CSS class of a summary-table column: the explanation wraps, numbers align right."""
    return "label" if column == 1 else ("" if column in (0, 2) else "num")


def _card(feature: FeatureEvidence, contexts: Contexts, item: ScoredExplanation | None, verdict: dict | None,
          anchor: str) -> str:
    """The card of one feature."""
    emb = item.score("embedding") if item else None
    head = (f'<article class="feature feature-card" id="{_e(anchor)}"><div class="feature-head">'
            f'<h3><code>{_e(feature.feature_id)}</code></h3><span class="muted">{_e(feature.kind)}</span>'
            + (f'<span class="imp">embedding AUROC <strong>{_metric_cell(emb.auroc)}</strong></span>' if emb else "")
            + "</div>")
    lead = (f'<p class="explanation lead">{_e(item.explanation.text)}</p>' if item
            else '<p class="muted">Not explained yet.</p>')
    panels = [explanation_panel(report_explanation(item), with_text=False) if item else "",
              _verdict_panel(verdict) if verdict else "", _stats_panel(feature), _histogram_panel(feature),
              _output_panel(feature)]
    return (head + lead + '<div class="panels">' + "".join(panels) + "</div>" + _examples(feature, contexts)
            + '<p><a class="back" href="#summary">↑ back to the table</a></p></article>')


def _verdict_panel(verdict: Mapping[str, Any]) -> str:
    """The causal verdict: verdict, effect and its interval, then any other scalar fields."""
    rows = [("verdict", f"<b>{_e(verdict.get('verdict'))}</b>"), ("effect", _e(fmt_num(verdict.get("effect")))),
            ("95% CI", _e(fmt_interval(verdict.get("ci95"))))]
    rows += [(_e(k), _e(_plain(v))) for k, v in verdict.items()
             if k not in ("verdict", "effect", "ci95", "provenance")]
    tag = provenance_tag(verdict.get("provenance") or "interventional")
    return f'<section class="panel"><h4>Causal verdict {tag}</h4>{kv_table(rows)}</section>'


def _stats_panel(feature: FeatureEvidence) -> str:
    """Firing density and the largest and mean firing activation."""
    rows = [("density (fraction of tokens firing)", fmt_num(feature.density)),
            ("max activation", fmt_num(feature.max_activation)),
            ("mean activation (when firing)", fmt_num(feature.mean_activation)),
            ("fires above", fmt_num(feature.active_threshold)),
            ("contexts with a firing token", fmt_num(feature.n_active_contexts))]
    return f'<section class="panel"><h4>Activations</h4>{kv_table([(k, _e(v)) for k, v in rows])}</section>'


def _histogram_panel(feature: FeatureEvidence) -> str:
    """The histogram of the per-context maximum activation of firing contexts."""
    svg = counts_histogram_svg(feature.hist_edges, feature.hist_counts, x_label="max activation in the context",
                               title=f"per-context max activation of {feature.feature_id}")
    body = svg or '<p class="muted">No firing contexts.</p>'
    return f'<section class="panel"><h4>Max activation per firing context</h4>{body}</section>'


def _output_panel(feature: FeatureEvidence) -> str:
    """The tokens the feature's output direction promotes and suppresses through the unembedding."""
    return (f'<section class="panel"><h4>Promotes (logit per unit)</h4>{_token_list(feature.promoted)}'
            f'<h4 style="margin-top:10px">Suppresses</h4>{_token_list(feature.suppressed)}</section>')


def _token_list(pairs: tuple[tuple[str, float], ...]) -> str:
    """(token, value) pairs as a numbered list, at most ``MAX_OUTPUT_TOKENS``."""
    if not pairs:
        return '<p class="muted">None recorded.</p>'
    return '<ol class="tokens">' + "".join(
        f"<li><code>{_visible(t)}</code> {_e(fmt_num(float(v)))}</li>" for t, v in pairs[:MAX_OUTPUT_TOKENS]
    ) + "</ol>"


def _examples(feature: FeatureEvidence, contexts: Contexts) -> str:
    """Top and quantile examples of both splits side by side, then random non-firing ones collapsed."""
    scale = _scale(feature)
    out = "" if feature.activating else (
        "<p class='muted' style='margin-top:14px'>It never fires on this corpus: no top or quantile examples.</p>")
    for role, name in _EXAMPLE_ROLES if feature.activating else ():
        columns = "".join(_split_column(feature, contexts, role, split, scale) for split in SPLITS)
        out += f"<h4 style='margin-top:14px'>{name}</h4><div class='splits'>{columns}</div>"
    randoms = [e for s in SPLITS for e in feature.select("random", s)[:EXAMPLE_CAPS["random"]]]
    if randoms:
        items = "".join(_example_item(e, contexts, scale) for e in randoms)
        out += (f'<details class="random"><summary>Random contexts where it does not fire ({len(randoms)} shown)'
                f'</summary><ol class="examples">{items}</ol></details>')
    return out


def _split_column(feature: FeatureEvidence, contexts: Contexts, role: Role, split: Split, scale: float) -> str:
    """One split's examples of ``role``, at most ``EXAMPLE_CAPS[role]``."""
    chosen = feature.select(role, split)
    shown = chosen[:EXAMPLE_CAPS[role]] if role == "top" else _spread(chosen, EXAMPLE_CAPS[role])
    what = "shown to the explainer" if split == "explain" else "scored on"
    more = f", {len(shown)} of {len(chosen)}" if len(shown) < len(chosen) else ""
    body = ('<ol class="examples">' + "".join(_example_item(e, contexts, scale) for e in shown) + "</ol>"
            if shown else '<p class="muted">None.</p>')
    return f"<div><h5>{_SPLIT_NAMES[split]} split ({what}{more})</h5>{body}</div>"


def _spread(examples: list[Example], cap: int) -> list[Example]:
    """At most ``cap`` examples taken evenly across the list (quantile examples are ordered low to high)."""
    if len(examples) <= cap:
        return examples
    picks = sorted({round(i * (len(examples) - 1) / (cap - 1)) for i in range(cap)}) if cap > 1 else [0]
    return [examples[i] for i in picks]


def _scale(feature: FeatureEvidence) -> float:
    """The activation a token is shaded in full at: the feature's largest, else the largest shown."""
    if math.isfinite(feature.max_activation) and feature.max_activation > 0:
        return float(feature.max_activation)
    shown = [float(np.max(np.abs(e.acts))) for e in feature.examples if e.acts is not None and e.acts.size]
    return max([s for s in shown if math.isfinite(s)], default=0.0) or 1.0


def _example_item(example: Example, contexts: Contexts, scale: float) -> str:
    """One example: its maximum activation, split, context and quantile bin, and its tokens shaded."""
    meta = f"context {example.context}"
    if example.quantile is not None:
        meta += f" · quantile bin {example.quantile}"
    split = f'<span class="split split-{example.split}">{_SPLIT_NAMES[example.split]}</span>'
    act = _e(fmt_num(float(example.max_activation))) if example.acts is not None else "not firing"
    return (f'<li class="example">{split}<span class="ex-act">{act}</span><span class="ex-meta">{_e(meta)}</span>'
            f'<span class="ex-text">{token_spans(contexts.tokens[example.context], example.acts, scale)}</span></li>')


def token_spans(tokens: Sequence[str], acts: np.ndarray | None, scale: float) -> str:
    """Tokens as HTML, each with a non-zero activation shaded (orange up, blue down) by ``|act| / scale``.

    Args:
        tokens: the context's tokens as text.
        acts: float [len(tokens)] activations, or None (no shading).
        scale: the activation shaded in full (the feature's largest).

    Returns:
        Escaped HTML; a shaded token's ``title`` holds its activation.
    """
    out = []
    for i, token in enumerate(tokens):
        act = float(acts[i]) if acts is not None and i < len(acts) else 0.0
        text = _visible(token)
        if act == 0.0 or not math.isfinite(act):
            out.append(text)
            continue
        alpha = min(abs(act) / scale, 1.0) * 0.85 if scale > 0 else 0.85
        colour = f"rgba(232,89,12,{alpha:.2f})" if act > 0 else f"rgba(24,100,171,{alpha:.2f})"
        out.append(f'<span class="tok" style="background:{colour}" title="{act:.3g}">{text}</span>')
    return "".join(out)


def _visible(token: str) -> str:
    """A token as escaped HTML with newlines, tabs and control characters drawn as marks.

    A token that is only whitespace shows its spaces as ``·``, and an empty token as ``∅``;
    spaces inside a token stay spaces. Bidirectional overrides are drawn as their code point.
    """
    if not token:
        return '<span class="ws">∅</span>'
    blank = not token.strip()
    parts = []
    for ch in token:
        if ch in _VISIBLE and (ch != " " or blank):
            parts.append(f'<span class="ws">{_VISIBLE[ch]}</span>')
        elif ch in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            parts.append(f'<span class="ws">&lt;U+{ord(ch):04X}&gt;</span>')
        else:
            parts.append(html.escape(ch))
    return "".join(parts)
