"""HTML rendering of an inspection report (``report.html``): one self-contained file.

The page carries its own CSS and inline-SVG histograms and references nothing outside
itself, so it opens offline. Every value taken from the report is escaped with
``html.escape``. A few lines of inline JavaScript sort the ranked table when a header is
clicked; without JavaScript the table stays in rank order.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

from interp_agent.core.reports.markdown import (
    DASH,
    SYNTHETIC_BANNER,
    TABLE_COLUMNS,
    causal_stability_sentence,
    dig,
    fmt_interval,
    fmt_num,
    fmt_p,
    held_out_verdict,
    interval_clause,
    method_items,
    power_sentence,
    ranked_features,
    rows_sentence,
    scores_sentence,
    sub_dict,
    table_row,
)
from interp_agent.core.reports.svg import (
    NEGATIVE_COLOUR,
    POSITIVE_COLOUR,
    histogram_svg,
)

_KINDS = ("correlational", "interventional", "synthetic", "imported", "semantic", "held_out_text")

REPORT_CSS = """
:root{--fg:#212529;--muted:#6c757d;--line:#dee2e6;--bg:#f8f9fa;--card:#fff;--accent:#1864ab}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
  font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.container{max-width:1280px;margin:0 auto;padding:24px 20px 48px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:32px 0 12px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:16px;margin:0}
h4{font-size:13px;margin:0 0 6px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
.criterion{font-size:17px;margin:4px 0 12px}.muted{color:var(--muted)}
.meta{display:flex;flex-wrap:wrap;gap:4px 20px;margin:0;color:var(--muted)}.meta dt{display:inline;font-weight:600}
.meta dd{display:inline;margin:0 0 0 4px;color:var(--fg)}
.synthetic-banner{margin:16px 0;padding:14px 18px;border:2px solid #e8590c;background:#fff4e6;color:#a63c06;
  border-radius:8px;font-size:16px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;margin-top:16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.card .v{font-size:22px;font-weight:600}.card .k{color:var(--muted);font-size:12px}
.warnings{background:#fff9db;border:1px solid #fcc419;border-radius:8px;padding:8px 16px;margin-top:16px}
table{border-collapse:collapse;width:100%;background:var(--card)}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#f1f3f5;font-weight:600;white-space:nowrap}
tbody tr:nth-child(even){background:#f8f9fa}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.ranked{font-size:13px}.ranked th{cursor:pointer}.ranked td.label{min-width:280px}
.scroll{overflow-x:auto;border:1px solid var(--line);border-radius:8px}
.tag{display:inline-block;padding:0 6px;border-radius:9px;font-size:11px;font-weight:500;vertical-align:middle;
  border:1px solid transparent}
.tag-correlational{background:#e7f5ff;color:#1864ab;border-color:#a5d8ff}
.tag-interventional{background:#ebfbee;color:#2b8a3e;border-color:#b2f2bb}
.tag-synthetic{background:#fff4e6;color:#d9480f;border-color:#ffd8a8}
.tag-imported{background:#f1f3f5;color:#495057;border-color:#ced4da}
.tag-semantic{background:#f3f0ff;color:#6741d9;border-color:#d0bfff}
.tag-held_out_text{background:#e6fcf5;color:#087f5b;border-color:#96f2d7}
.tag-other{background:#fff;color:#495057;border-color:#ced4da}
.dir{font-weight:600}.dir-promotes{color:#2b8a3e}.dir-suppresses{color:#c92a2a}
.yes{color:#2b8a3e;font-weight:600}.no{color:#c92a2a}
.feature{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 18px;margin:0 0 18px}
.feature-head{display:flex;flex-wrap:wrap;align-items:baseline;gap:6px 14px}
.rank{font-size:18px;font-weight:700;color:var(--muted)}.imp{margin-left:auto;font-size:15px}
.explanation{margin:6px 0;color:#343a40}
.panels{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:14px;margin-top:12px}
.panel{border:1px solid var(--line);border-radius:8px;padding:10px 12px;min-width:0}
.panel table{font-size:13px}.panel td,.panel th{padding:3px 6px}
.meter{display:inline-block;width:80px;height:8px;background:#e9ecef;border-radius:4px;vertical-align:middle;margin-right:6px;overflow:hidden}
.meter span{display:block;height:100%;background:#4dabf7}.meter span.neg{background:#ff8787}
.examples{list-style:none;padding:0;margin:12px 0 0}
.examples li{border:1px solid var(--line);border-radius:6px;padding:6px 10px;margin:0 0 6px}
.ex-act{display:inline-block;min-width:60px;font-weight:600;font-variant-numeric:tabular-nums}
.ex-text{white-space:pre-wrap;word-break:break-word}.tok{border-radius:2px}.ex-meta{display:block;color:var(--muted);font-size:12px}
.histogram{max-width:100%;height:auto}
.back{font-size:12px}footer{margin-top:40px;color:var(--muted);font-size:12px}
.explanation-panel{grid-column:1/-1}table.scores{width:auto;min-width:50%}
.scores td.num,.scores th[scope=col]{white-space:normal;text-align:right}
.scores .ci{display:block;color:var(--muted);font-size:11px}
dl.method dt{font-weight:600;margin-top:8px}dl.method dd{margin:2px 0 0 0;white-space:pre-wrap}
"""

_JS = """
document.querySelectorAll('table.ranked th').forEach(function(th,i){th.addEventListener('click',function(){
var body=th.closest('table').tBodies[0],rows=Array.prototype.slice.call(body.rows),asc=th.dataset.dir!=='asc';
th.dataset.dir=asc?'asc':'desc';rows.sort(function(a,b){var x=a.cells[i].dataset.sort,y=b.cells[i].dataset.sort;
if(x===''||y===''){return (x==='')-(y==='');}var nx=Number(x),ny=Number(y);
var c=(isNaN(nx)||isNaN(ny))?x.localeCompare(y):nx-ny;return asc?c:-c;});
rows.forEach(function(r){body.appendChild(r);});});});
"""


def _e(value: Any) -> str:
    """``value`` as escaped HTML text; null as a dash."""
    return DASH if value is None else html.escape(str(value))


def feature_anchor(feature: dict, position: int) -> str:
    """The ``id`` of a feature's card: its 1-based position and a slug of its feature id."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", str(feature.get("feature_id") or "")).strip("-")
    return f"feature-{position}-{slug}" if slug else f"feature-{position}"


def provenance_tag(provenance: Any) -> str:
    """A small provenance tag coloured by its kind."""
    if not provenance:
        return ""
    kind = provenance if provenance in _KINDS else "other"
    return f'<span class="tag tag-{kind}">{_e(provenance)}</span>'


def yes_no(value: Any) -> str:
    """A boolean as a coloured yes/no; null as a dash."""
    if value is None:
        return DASH
    return '<span class="yes">yes</span>' if value else '<span class="no">no</span>'


def kv_table(rows: list[tuple[str, str]]) -> str:
    """A two-column table of (already escaped) names and values."""
    body = "".join(f'<tr><th scope="row">{k}</th><td class="num">{v}</td></tr>' for k, v in rows)
    return f"<table><tbody>{body}</tbody></table>"


def _meter(value: Any) -> str:
    """A small bar for a value in [-1, 1]; negative values are drawn red."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return '<span class="meter"></span>'
    width = min(abs(value), 1.0) * 100
    cls = ' class="neg"' if value < 0 else ""
    return f'<span class="meter"><span{cls} style="width:{width:.1f}%"></span></span>'


def _header(report: dict) -> str:
    """Title, criterion, run metadata and (when synthetic) the banner."""
    prov = sub_dict(report, "provenance")
    meta = [
        ("Model", report.get("model")), ("Backend", report.get("backend")),
        ("Scores", dig(report, "summary", "score_kind")),
        ("Tool", f"{prov.get('tool') or 'interp-agent'} {prov.get('tool_version') or ''}".strip()),
        ("Created", prov.get("created_utc")), ("Schema", report.get("schema_version")),
    ]
    items = "".join(f"<div><dt>{k}</dt><dd>{_e(v)}</dd></div>" for k, v in meta if v is not None or k != "Scores")
    out = (
        f'<header><h1>Inspection report</h1><p class="criterion">Criterion: <strong>{_e(report.get("criterion"))}'
        f'</strong></p><dl class="meta">{items}</dl></header>'
    )
    if report.get("synthetic"):
        out += (
            f'<div class="synthetic-banner" role="alert"><strong>{SYNTHETIC_BANNER}.</strong> This report was built '
            "from generated data, not from a model. No number in it describes a real model.</div>"
        )
    return out


def _summary_cards(report: dict) -> list[tuple[str, Any]]:
    """(escaped label, value) of each summary card; cards about measured records only when there are records."""
    s = sub_dict(report, "summary")
    n_reported = len(ranked_features(report))
    measured = s.get("n_train_rows") is not None
    rate = "mean score (0..1)" if s.get("score_kind") == "continuous" else "positive rate"
    cards: list[tuple[str, Any]] = [("rows", s.get("n_rows")), ("prompts", s.get("n_prompts"))] if measured else []
    cards += [("held-out prompts", s.get("n_held_out_prompts", s.get("n_held_out_rows")))] if measured else []
    cards.append(("features tested", s.get("n_features_tested")))
    if measured:
        cards += [
            (f"significant on train (q &lt; {_e(fmt_num(dig(report, 'settings', 'alpha')))})",
             s.get("n_significant_train")),
            (f"of {n_reported} reported, confirmed on held-out", s.get("n_held_out_supported")),
        ]
        if s.get("n_held_out_excludes_chance") is not None:
            cards.append(
                (f"of {n_reported} reported, held-out 95% CI excludes chance", s.get("n_held_out_excludes_chance"))
            )
        cards += [("ranking stability", s.get("ranking_stability")), (rate, s.get("positive_rate"))]
    cards.append(("intervention rows", s.get("n_intervention_rows")))
    return cards


def _summary(report: dict) -> str:
    """Summary cards, what the numbers rest on, warnings and the controls block."""
    s = report.get("summary") if isinstance(report.get("summary"), dict) else None
    out = '<section class="cards">' + "".join(
        f'<div class="card"><div class="v">{_e(fmt_num(v))}</div><div class="k">{k}</div></div>'
        for k, v in _summary_cards(report)
    ) + "</section>"
    basis = [rows_sentence(s), scores_sentence(s)]
    out += '<p class="muted">' + _e(". ".join(b for b in basis if b)) + ".</p>"
    warnings = [w for w in (report.get("warnings") or []) if w]
    if warnings:
        out += '<section class="warnings"><h4>Warnings</h4><ul>' + "".join(f"<li>{_e(w)}</li>" for w in warnings)
        out += "</ul></section>"
    controls = report.get("controls")
    if isinstance(controls, dict):
        by_type = sub_dict(controls, "by_type")
        rows = [("n", _e(fmt_num(controls.get("n")))), ("mean effect", _e(fmt_num(controls.get("mean_effect")))),
                ("95% CI", _e(fmt_interval(controls.get("ci95"))))]
        rows += [
            (f"{_e(k)} (n={_e(fmt_num(dig(v, 'n')))})", _e(fmt_num(dig(v, "mean_effect"))))
            for k, v in by_type.items()
        ]
        out += (f'<h2>Controls {provenance_tag(controls.get("provenance"))}</h2>'
                f'<div class="panel">{kv_table(rows)}</div>')
    return out


def _ranked_table(features: list[dict]) -> str:
    """The ranked table; each feature id links to its card."""
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in TABLE_COLUMNS)
    rows = []
    for position, feature in enumerate(features, 1):
        cells = []
        for column, (text, sort) in zip(TABLE_COLUMNS, table_row(feature), strict=True):
            content = _e(text)
            if column == "Feature":
                content = f'<a href="#{feature_anchor(feature, position)}"><code>{content}</code></a>'
            numeric = isinstance(sort, (int, float)) and not isinstance(sort, bool)
            key = "" if sort is None else _e(sort)
            cls = ' class="num"' if numeric else (' class="label"' if column == "Label" else "")
            cells.append(f'<td{cls} data-sort="{key}">{content}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table class="ranked" id="ranked"><thead><tr>{head}</tr></thead><tbody>' + (
        "".join(rows) + "</tbody></table></div>"
    )


def _importance_panel(feature: dict) -> str:
    """Importance with each component, its value and provenance."""
    comps = feature.get("importance_components")
    rows = [
        f"<tr><th>{_e(name)}</th><td class='num'>{_meter(dig(c, 'value'))}{_e(fmt_num(dig(c, 'value')))}</td>"
        f"<td>{provenance_tag(dig(c, 'provenance'))}</td></tr>"
        for name, c in (comps.items() if isinstance(comps, dict) else [])
        if isinstance(c, dict)
    ]
    table = f"<table><tbody>{''.join(rows)}</tbody></table>" if rows else '<p class="muted">No components.</p>'
    return f'<section class="panel"><h4>Importance {_e(fmt_num(feature.get("importance")))}</h4>{table}</section>'


def _association_panel(assoc: Any, summary: Any = None) -> str:
    """Association on the train and held-out splits, side by side, with held-out intervals and the power estimate."""
    if not isinstance(assoc, dict):
        return (
            '<section class="panel"><h4>Association</h4>'
            '<p class="muted">Not measured (no activation records).</p></section>'
        )
    rows = []
    for key, name, fmt in (
        ("pearson_r", "Pearson r", fmt_num), ("pearson_r_ci95", "Pearson r, 95% CI", fmt_interval),
        ("p_value", "p", fmt_p), ("q_value", "q", fmt_p),
        ("auroc", "AUROC", fmt_num), ("auroc_ci95", "AUROC, 95% CI", fmt_interval),
        ("mean_positive", "mean act., positive", fmt_num),
        ("mean_negative", "mean act., negative", fmt_num), ("n", "rows", fmt_num), ("n_prompts", "prompts", fmt_num),
        ("nnz", "non-zero rows", fmt_num),
    ):
        train, held = fmt(dig(assoc, "train", key)), fmt(dig(assoc, "held_out", key))
        rows.append(f'<tr><th>{name}</th><td class="num">{_e(train)}</td><td class="num">{_e(held)}</td></tr>')
    held = assoc.get("held_out")
    verdict_html = (yes_no(assoc.get("held_out_supported")) + _e(interval_clause(held)) if isinstance(held, dict)
                    else _e(held_out_verdict(assoc, summary if isinstance(summary, dict) else None)))
    power = power_sentence(assoc)
    return (
        f'<section class="panel"><h4>Association {provenance_tag(assoc.get("provenance"))}</h4>'
        f'<table><thead><tr><th></th><th>train</th><th>held-out</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
        f"<p>Supported on held-out prompts: {verdict_html}</p>"
        + (f'<p class="muted">{_e(power)}</p>' if power else "")
        + "</section>"
    )


def _spec_stability_panel(feature: dict, top_k: Any = None) -> str:
    """Specificity and ranking stability."""
    spec, stab = feature.get("specificity"), feature.get("stability")
    out = '<section class="panel"><h4>Specificity ' + provenance_tag(dig(spec, "provenance")) + "</h4>"
    if isinstance(spec, dict):
        out += kv_table([("train", _e(fmt_num(spec.get("train")))), ("held-out", _e(fmt_num(spec.get("held_out")))),
                          ("base rate", _e(fmt_num(spec.get("base_rate"))))])
    else:
        out += '<p class="muted">Not measured.</p>'
    out += '<h4 style="margin-top:10px">Stability ' + provenance_tag(dig(stab, "provenance")) + "</h4>"
    if isinstance(stab, dict):
        top = f"top {_e(fmt_num(top_k))}" if top_k is not None else "top k"
        out += kv_table([
            (f"share of resamples in the {top}, same sign", _e(fmt_num(stab.get("bootstrap_top_k_frequency")))),
            ("bootstrap r interval", _e(fmt_interval(stab.get("bootstrap_r_interval")))),
            ("resamples", _e(fmt_num(stab.get("resamples")))),
        ])
    else:
        out += '<p class="muted">Not measured.</p>'
    return out + "</section>"


def _causal_panel(feature: dict) -> str:
    """Interventional evidence, or a note that there is none; imported effects below it."""
    causal = feature.get("causal")
    if isinstance(causal, dict):
        interventions = sub_dict(causal, "interventions")
        kinds = ", ".join(f"{_e(k)} × {_e(fmt_num(v))}" for k, v in interventions.items()) or DASH
        body = kv_table([
            ("strong causal score", _e(fmt_num(causal.get("strong_causal_score")))),
            ("mean effect", _e(fmt_num(causal.get("mean_effect")))), ("95% CI", _e(fmt_interval(causal.get("ci95")))),
            ("n", _e(fmt_num(causal.get("n")))), ("side effect", _e(fmt_num(causal.get("side_effect")))),
            ("control effect", _e(fmt_num(causal.get("control_effect")))),
            ("controls", _e(fmt_num(causal.get("n_controls")))), ("interventions", kinds),
            ("agrees with association", yes_no(causal.get("agrees_with_association"))),
            *_verdict_rows(causal),
        ])
    else:
        body = '<p class="muted">No intervention evidence.</p>'
    out = f'<section class="panel"><h4>Causal {provenance_tag(dig(causal, "provenance"))}</h4>{body}'
    imported = feature.get("imported")
    if isinstance(imported, dict):
        effects = sub_dict(imported, "causal_effects")
        rows = [(_e(k), _e(fmt_num(v))) for k, v in effects.items()]
        out += f'<h4 style="margin-top:10px">Imported {provenance_tag(imported.get("provenance"))}</h4>'
        out += kv_table(rows) if rows else '<p class="muted">No imported effects.</p>'
        texts = [t for t in (imported.get("examples") or []) if t is not None][:5]
        out += "<ul>" + "".join(f"<li>{_e(t)}</li>" for t in texts) + "</ul>" if texts else ""
    return out + "</section>"


def _verdict_rows(causal: dict) -> list[tuple[str, str]]:
    """The verdict, its reason and source, note, stability across strengths and confidence; none without a verdict."""
    if causal.get("verdict") is None:
        return []
    rows = [("verdict", f"<b>{_e(causal.get('verdict'))}</b>"), ("verdict reason", _e(causal.get("verdict_reason"))),
            ("verdict source", _e(causal.get("verdict_source")))]
    if causal.get("note"):
        rows.append(("note", _e(causal.get("note"))))
    stability = causal_stability_sentence(causal.get("stability"))
    if stability:
        rows.append(("stability across strengths", _e(stability)))
    if causal.get("confidence"):
        rows.append(("confidence", _e(causal.get("confidence"))))
    return rows


def _card_panel(feature: dict) -> str:
    """An imported feature card (Neuronpedia, Goodfire): source, density, logit effects, notes; empty without one."""
    card = feature.get("card")
    if not isinstance(card, dict):
        return ""
    source = sub_dict(card, "source")
    where = source.get("url") or source.get("file")
    link = (f'<a href="{_e(where)}">{_e(where)}</a>' if str(where or "").startswith(("http://", "https://"))
            else f"<code>{_e(where)}</code>")
    rows = [("source", f"{_e(source.get('kind'))} · {link}"), ("retrieved", _e(source.get("retrieved_at"))),
            ("density (fraction non-zero)", _e(fmt_num(card.get("density")))),
            ("max activation", _e(fmt_num(card.get("max_activation"))))]
    logits = sub_dict(card, "logit_effects")
    for sign, name in (("positive", "promotes (logit)"), ("negative", "suppresses (logit)")):
        pairs = [p for p in logits.get(sign) or [] if isinstance(p, (list, tuple)) and len(p) == 2][:10]
        if pairs:
            rows.append((name, ", ".join(f"<code>{_e(t)}</code> {_e(fmt_num(v))}" for t, v in pairs)))
    body = "".join(f'<tr><th scope="row">{k}</th><td>{v}</td></tr>' for k, v in rows)  # text wraps, unlike kv_table
    out = (f'<section class="panel"><h4>Card {provenance_tag(card.get("provenance"))}</h4>'
           f"<table><tbody>{body}</tbody></table>")
    notes = [n for n in (card.get("notes") or []) if n]
    if dig(feature, "provenance", "criterion_association"):
        notes.insert(0, dig(feature, "provenance", "criterion_association"))
    out += "<ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>" if notes else ""
    return out + "</section>"


def _histogram_panel(feature: dict) -> str:
    """The activation histogram, positive vs negative rows."""
    svg = histogram_svg(feature.get("histogram"), title=f"activation histogram of {feature.get('feature_id')}")
    body = svg or '<p class="muted">No activation histogram (no activation records).</p>'
    return f'<section class="panel"><h4>Activations</h4>{body}</section>'


def _examples(feature: dict) -> str:
    """Top examples, each shaded in proportion to its activation over the feature's largest."""
    examples = [e for e in (feature.get("examples") or []) if isinstance(e, dict)]
    if not examples:
        return '<p class="muted">No examples.</p>'
    acts = [abs(a) for e in examples if isinstance(a := e.get("activation"), (int, float)) and math.isfinite(a)]
    top = max(acts, default=0.0)
    items = []
    for e in examples:
        act = e.get("activation")
        pct = 0.0
        if isinstance(act, (int, float)) and not isinstance(act, bool) and math.isfinite(act) and top > 0:
            pct = min(abs(act) / top, 1.0) * 100
        meta = [f"prompt {_e(e.get('prompt_id'))}", f"score {_e(fmt_num(e.get('criterion_score')))}"]
        if e.get("token") is not None or e.get("token_index") is not None:
            meta.append(f"token <code>{_e(e.get('token'))}</code> at {_e(fmt_num(e.get('token_index')))}")
        text = _token_highlights(e.get("tokens")) or _e(e.get("text"))
        items.append(
            f'<li style="background:linear-gradient(90deg,rgba(12,133,153,.18) {pct:.1f}%,transparent {pct:.1f}%)">'
            f'<span class="ex-act">{_e(fmt_num(act))}</span><span class="ex-text">{text}</span>'
            f'<span class="ex-meta">{" · ".join(meta)}</span></li>'
        )
    return f'<ol class="examples">{"".join(items)}</ol>'


def _token_highlights(tokens: Any) -> str | None:
    """Each token shaded by its activation (orange up, blue down) relative to the example's largest |activation|."""
    if not isinstance(tokens, list) or not tokens:
        return None
    pairs = [(str(t[0]), float(t[1])) for t in tokens if isinstance(t, (list, tuple)) and len(t) == 2
             and isinstance(t[1], (int, float)) and math.isfinite(t[1])]
    top = max((abs(a) for _, a in pairs), default=0.0) or 1.0
    spans = []
    for tok, act in pairs:
        alpha = min(abs(act) / top, 1.0) * 0.75
        colour = f"rgba(232,89,12,{alpha:.2f})" if act >= 0 else f"rgba(24,100,171,{alpha:.2f})"
        spans.append(f'<span class="tok" style="background:{colour}" title="{_e(fmt_num(act))}">{_e(tok)}</span>')
    return "".join(spans)


def _notes(feature: dict) -> str:
    """The feature's notes (caveats on its evidence) as a warning box; empty without notes."""
    notes = [n for n in (feature.get("notes") or []) if n]
    if not notes:
        return ""
    return '<div class="warnings"><h4>Notes</h4><ul>' + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul></div>"


_SCORE_ROWS = (
    ("auroc", "AUROC"), ("null_random_explanation", "null: another feature's explanation"),
    ("null_shuffled_labels", "null: shuffled labels"), ("margin_over_random", "margin over that null"),
    ("balanced_accuracy", "balanced accuracy"), ("f1", "F1"),
)


def _metric(metric: Any) -> str:
    """A score metric ``{"value", "ci95"}`` as its value over its 95% interval."""
    ci = dig(metric, "ci95")
    interval = f'<span class="ci">{_e(fmt_interval(ci))}</span>' if ci is not None else ""
    return _e(fmt_num(dig(metric, "value"))) + interval


def _beats_random(score: dict) -> bool | None:
    """Whether the margin over the random-explanation null has an interval above 0; None without an interval."""
    ci = dig(score, "margin_over_random", "ci95")
    if not (isinstance(ci, (list, tuple)) and len(ci) == 2 and isinstance(ci[0], (int, float))):
        return None
    return ci[0] > 0


def score_table(scores: list[dict]) -> str:
    """Explanation scores side by side, one column per method: metrics with 95% intervals, nulls, judge, provenance.

    Args:
        scores: ``dataclasses.asdict`` of each ``Score`` (or its JSON form).
    """
    head = "".join(f'<th scope="col">{_e(s.get("method"))}</th>' for s in scores)
    rows = [f"<tr><th scope='row'>{name}</th>" + "".join(f'<td class="num">{_metric(s.get(key))}</td>' for s in scores)
            + "</tr>" for key, name in _SCORE_ROWS]
    extra: list[tuple[str, list[str]]] = [
        ("beats random (margin CI &gt; 0)", [yes_no(_beats_random(s)) for s in scores]),
        ("held-out items +/−", [f"{_e(fmt_num(s.get('n_positive')))} / {_e(fmt_num(s.get('n_negative')))}"
                                for s in scores]),
        ("judge", [_e(s.get("judge")) for s in scores]),
        ("random null from", [f"<code>{_e(s.get('null_feature'))}</code>" for s in scores]),
        ("provenance", [provenance_tag(s.get("provenance")) for s in scores]),
    ]
    if any(s.get("note") for s in scores):
        extra.append(("note", [_e(s.get("note") or None) for s in scores]))
    rows += [f"<tr><th scope='row'>{name}</th>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
             for name, cells in extra]
    return (f'<div style="overflow-x:auto"><table class="scores"><thead><tr><th></th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def explanation_panel(explanation: dict, *, with_text: bool = True) -> str:
    """The Explanation panel of a feature card: its text, its author and every score.

    Args:
        explanation: ``{"text", "author": {"kind", "name", "note"}, "scores": [asdict(Score), ...]}``.
        with_text: show the text (off where the card already shows it).
    """
    author = sub_dict(explanation, "author")
    who = " · ".join(_e(v) for v in (author.get("kind"), author.get("name")) if v) or DASH
    note = f" — {_e(author['note'])}" if author.get("note") else ""
    scores = [s for s in (explanation.get("scores") or []) if isinstance(s, dict)]
    out = '<section class="panel explanation-panel"><h4>Explanation</h4>'
    out += f'<p class="explanation">{_e(explanation.get("text"))}</p>' if with_text else ""
    out += f'<p class="muted">by {who}{note}</p>'
    out += score_table(scores) if scores else '<p class="muted">Not scored.</p>'
    return out + "</section>"


def _feature_card(feature: dict, position: int, report: dict | None = None) -> str:
    """The card of one feature."""
    direction = feature.get("direction")
    dir_cls = f" dir-{direction}" if direction in ("promotes", "suppresses") else ""
    label = feature.get("label")
    out = (
        f'<article class="feature" id="{feature_anchor(feature, position)}"><div class="feature-head">'
        f'<span class="rank">#{_e(fmt_num(feature.get("rank")))}</span>'
        f'<h3><code>{_e(feature.get("feature_id"))}</code> '
        f'{_e(label) if label else "<span class=muted>(no label)</span>"}</h3>'
        f'<span class="dir{dir_cls}">{_e(direction)}</span>'
        f'<span class="imp">importance <strong>{_e(fmt_num(feature.get("importance")))}</strong></span></div>'
    )
    explanation = feature.get("explanation")
    if explanation and isinstance(explanation, str):
        out += f'<p class="explanation">{_e(explanation)}</p>'
    out += f'<p class="muted">layer {_e(fmt_num(feature.get("layer")))} · source {_e(feature.get("source"))}</p>'
    out += _notes(feature)
    out += '<div class="panels">' + "".join((
        _importance_panel(feature), _association_panel(feature.get("association"), dig(report, "summary")),
        _spec_stability_panel(feature, dig(report, "settings", "top_k")), _causal_panel(feature),
        _card_panel(feature), _histogram_panel(feature),
        explanation_panel(feature["explained"]) if isinstance(feature.get("explained"), dict) else "",
    )) + "</div>"
    out += "<h4 style='margin-top:14px'>Top examples</h4>" + _examples(feature)
    return out + '<p><a class="back" href="#ranked">↑ back to the table</a></p></article>'


def _method(report: dict) -> str:
    """The method section: formulas, settings and inputs."""
    method = method_items(report)
    out = '<section id="method"><h2>Method</h2>'
    out += '<dl class="method">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in method.items()) + "</dl>"
    settings = sub_dict(report, "settings")
    if settings:
        rows = [(_e(k), _e(fmt_num(v))) for k, v in settings.items()]
        out += "<h4 style='margin-top:14px'>Settings</h4>" + kv_table(rows)
    inputs = [i for i in (dig(report, "provenance", "inputs") or []) if isinstance(i, dict)]
    if inputs:
        rows = "".join(
            f"<tr><td>{_e(i.get('role'))}</td><td><code>{_e(i.get('path'))}</code></td>"
            f"<td><code>{_e(str(i.get('sha256') or '')[:16] or None)}</code></td></tr>" for i in inputs
        )
        out += ("<h4 style='margin-top:14px'>Inputs</h4><table><thead><tr><th>role</th><th>path</th>"
                f"<th>sha256 (prefix)</th></tr></thead><tbody>{rows}</tbody></table>")
    return out + "</section>"


def render_html(report: dict) -> str:
    """Render an inspection report (``report.json`` as a dict) as one self-contained HTML page.

    Args:
        report: the report, as defined in ``docs/report-format.md``; optional blocks may be null.

    Returns:
        The HTML document; it loads nothing from outside itself.
    """
    features = ranked_features(report)
    title = f"interp-agent report: {report.get('criterion') or ''}"
    legend = (
        f'<p class="muted">Histograms: <span style="color:{POSITIVE_COLOUR}">■</span> positive rows, '
        f'<span style="color:{NEGATIVE_COLOUR}">■</span> negative rows, as fractions of each class.</p>'
    )
    cards = "".join(_feature_card(f, i, report) for i, f in enumerate(features, 1))
    body = (
        _header(report) + _summary(report) + "<h2>Ranked features</h2>"
        + (_ranked_table(features) if features else '<p class="muted">No features were reported.</p>')
        + (f"<h2>Features</h2>{legend}{cards}" if features else "") + _method(report)
        + f'<footer>{_e(dig(report, "provenance", "tool") or "interp-agent")} '
        f'{_e(dig(report, "provenance", "tool_version") or "")} · {_e(report.get("schema_version"))}</footer>'
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{REPORT_CSS}</style></head>"
        f'<body><main class="container">{body}</main><script>{_JS}</script></body></html>\n'
    )
