"""A dossier as Markdown, as one self-contained HTML page, and as the compact JSON view a tool returns.

Claims are grouped by feature; each shows its grade and the reason, the ladder as a row of
rungs (reached, weak, contradicted, missing, or not applicable to its kind), and every evidence
item with its stance, provenance, numbers and the run it came from. Evidence whose run folder
or file is gone (``DossierStore.missing_runs``) is marked, not hidden. The HTML page carries
its own CSS (the report's, ``core.reports.html.REPORT_CSS``), escapes every value and loads
nothing from outside itself.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from typing import Any

from interp_agent.core.dossier.grading import RungStatus, claim_rungs, grade_claim
from interp_agent.core.dossier.model import RUNGS, Claim, Dossier, Evidence, Rung, RunRef
from interp_agent.core.dossier.store import MissingRun

MARK: dict[str, str] = {"reached": "✓", "weak": "~", "contradicted": "✗", "missing": "·", "not_applicable": " "}
"""How the Markdown shows each rung status."""
_STATUS_ORDER: tuple[RungStatus, ...] = ("reached", "contradicted", "weak", "missing")
"""A feature's rung takes the first status any of its claims has, in this order (the last is the default)."""

LADDER_CSS = """
.ladder{display:flex;flex-wrap:wrap;gap:4px;margin:6px 0}
.rung{padding:1px 8px;border-radius:4px;font-size:12px;border:1px solid transparent}
.rung-reached{background:#d3f9d8;color:#2b8a3e;border-color:#8ce99a;font-weight:600}
.rung-contradicted{background:#ffe3e3;color:#c92a2a;border-color:#ffa8a8;text-decoration:line-through}
.rung-weak{background:#fff3bf;color:#a86b00;border-color:#ffe066}
.rung-missing{background:#f1f3f5;color:#868e96;border-color:#dee2e6}
.rung-not_applicable{color:#ced4da;border:1px dashed #e9ecef}
.claim{border-top:1px solid var(--line);padding:10px 0 4px}.grade{font-weight:600}
.evidence{font-size:13px;margin:6px 0 0;padding-left:18px}.evidence li{margin:4px 0}
.stance-supports{color:#2b8a3e;font-weight:600}.stance-contradicts{color:#c92a2a;font-weight:600}
.numbers{color:var(--muted);font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.missing-run{color:#c92a2a;font-weight:600}
"""

RunLink = Callable[[RunRef], str]


def default_link(ref: RunRef) -> str:
    """Where a rendering beside the dossier file (in ``dossiers/``) finds a run's file."""
    return ref.path if ref.folder.startswith("/") else f"../{ref.path}"


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_num(v) for v in value) + "]"
    return "null" if value is None else str(value)


def numbers_text(ev: Evidence) -> str:
    """The evidence's numbers as ``key=value`` pairs (nulls left out)."""
    return ", ".join(f"{k}={_num(v)}" for k, v in ev.numbers.items() if v is not None)


def feature_rungs(dossier: Dossier, model: str, feature_id: str) -> dict[Rung, RungStatus]:
    """A feature's ladder: each rung's best status over every claim about it."""
    statuses = [claim_rungs(c) for c in dossier.claims_about(model, feature_id)]
    out: dict[Rung, RungStatus] = {}
    for rung in RUNGS:
        found: set[RungStatus] = {s[rung] for s in statuses}
        out[rung] = _STATUS_ORDER[-1]
        for status in _STATUS_ORDER:
            if status in found:
                out[rung] = status
                break
    return out


def _missing_ids(missing: Iterable[MissingRun]) -> set[tuple[str | None, str | None]]:
    return {(m.claim_id, m.evidence_id) for m in missing}


def _synthetic(dossier: Dossier) -> bool:
    return any(ev.provenance == "synthetic" for c in dossier.claims for ev in c.evidence)


# -- Markdown ----------------------------------------------------------------------------------


def _md_ladder(rungs: dict[Rung, RungStatus]) -> str:
    return " | ".join(f"{r} {MARK[rungs[r]]}" for r in RUNGS if rungs[r] != "not_applicable")


def _md_evidence(claim: Claim, ev: Evidence, gone: set[tuple[str | None, str | None]], link: RunLink) -> str:
    flags = " (weak)" if ev.weak else ""
    run = f"[{ev.run.path}]({link(ev.run)})" + (f" (run {ev.run.run_id})" if ev.run.run_id else "")
    if (claim.id, ev.id) in gone:
        run += " **RUN MISSING**"
    note = f" — {ev.note}" if ev.note else ""
    return (f"- **{ev.rung}** {ev.stance}{flags} · {ev.provenance} · {ev.summary}{note}  \n"
            f"  `{numbers_text(ev)}` · {ev.tool}: {run} · filed {ev.filed_at}")


def _md_claim(claim: Claim, gone: set[tuple[str | None, str | None]], link: RunLink) -> list[str]:
    grade = grade_claim(claim)
    lines = [f"### {claim.kind}: {claim.text}", "", f"`{claim.id}` · grade **{grade.rung or 'none'}** — "
             f"{grade.reason}", "", f"Ladder: {_md_ladder(grade.rungs)}", ""]
    lines += [_md_evidence(claim, ev, gone, link) for ev in claim.evidence] or ["- no evidence"]
    return lines + [""]


def render_markdown(dossier: Dossier, *, missing_runs: Iterable[MissingRun] = (),
                    run_link: RunLink = default_link) -> str:
    """The dossier as Markdown: header, missing runs, then each feature's ladder and claims."""
    missing = tuple(missing_runs)
    gone = _missing_ids(missing)
    lines = [f"# Dossier {dossier.name}", "", f"Criterion: {dossier.criterion or '(not set yet)'}  ",
             f"Models: {', '.join(dossier.models) or '(none yet)'}  ",
             f"Created {dossier.created} · {len(dossier.claims)} claims · {len(dossier.runs)} runs filed", ""]
    if _synthetic(dossier):
        lines += ["**SYNTHETIC:** some evidence comes from generated data, not a measured model.", ""]
    if missing:
        lines += ["**Missing runs:** evidence below cites run files that are no longer there:", ""]
        lines += [f"- {f}/{n}: {r}" for f, n, r in dict.fromkeys((m.folder, m.file, m.reason) for m in missing)]
        lines.append("")
    lines += ["Ladder, lowest first: " + " → ".join(RUNGS) + f"; {MARK['reached']} reached, {MARK['weak']} weak, "
              f"{MARK['contradicted']} contradicted, {MARK['missing']} missing.", ""]
    for model, feature in dossier.features():
        ladder = _md_ladder(feature_rungs(dossier, model, feature))
        lines += [f"## {feature} ({model})", "", f"Feature ladder: {ladder}", ""]
        for claim in dossier.claims_about(model, feature):
            lines += _md_claim(claim, gone, run_link)
    return "\n".join(lines).rstrip() + "\n"


# -- HTML --------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _html_ladder(rungs: dict[Rung, RungStatus]) -> str:
    cells = "".join(f'<span class="rung rung-{rungs[r]}" title="{_e(r)}: {_e(rungs[r])}">{_e(r)}</span>'
                    for r in RUNGS)
    return f'<div class="ladder">{cells}</div>'


def _html_evidence(claim: Claim, ev: Evidence, gone: set[tuple[str | None, str | None]], link: RunLink) -> str:
    from interp_agent.core.reports.html import provenance_tag

    run = f'<a href="{_e(link(ev.run))}">{_e(ev.run.path)}</a>' + (f" (run {_e(ev.run.run_id)})"
                                                                   if ev.run.run_id else "")
    if (claim.id, ev.id) in gone:
        run += ' <span class="missing-run">run missing</span>'
    weak = " (weak)" if ev.weak else ""
    note = f' — <span class="muted">{_e(ev.note)}</span>' if ev.note else ""
    return (f'<li><b>{_e(ev.rung)}</b> <span class="stance-{_e(ev.stance)}">{_e(ev.stance)}{weak}</span> '
            f"{provenance_tag(ev.provenance)} {_e(ev.summary)}{note}<br>"
            f'<span class="numbers">{_e(numbers_text(ev))}</span><br>'
            f'<span class="muted">{_e(ev.tool)}: </span>{run}'
            f'<span class="muted"> · filed {_e(ev.filed_at)}</span></li>')


def _html_claim(claim: Claim, gone: set[tuple[str | None, str | None]], link: RunLink) -> str:
    grade = grade_claim(claim)
    items = "".join(_html_evidence(claim, ev, gone, link) for ev in claim.evidence) or "<li>no evidence</li>"
    return (f'<div class="claim" id="{_e(claim.id)}"><h3>{_e(claim.kind)}: {_e(claim.text)}</h3>'
            f'<p><code>{_e(claim.id)}</code> · grade <span class="grade">{_e(grade.rung or "none")}</span> — '
            f"{_e(grade.reason)}</p>{_html_ladder(grade.rungs)}<ul class=\"evidence\">{items}</ul></div>")


def _html_header(dossier: Dossier, missing: tuple[MissingRun, ...]) -> str:
    out = (f"<h1>Dossier {_e(dossier.name)}</h1>"
           f'<p class="criterion">{_e(dossier.criterion or "(criterion not set yet)")}</p>'
           f'<dl class="meta"><dt>Models</dt><dd>{_e(", ".join(dossier.models) or "none yet")}</dd>'
           f"<dt>Created</dt><dd>{_e(dossier.created)}</dd><dt>Claims</dt><dd>{len(dossier.claims)}</dd>"
           f"<dt>Runs filed</dt><dd>{len(dossier.runs)}</dd></dl>")
    if _synthetic(dossier):
        out += ('<div class="synthetic-banner"><b>SYNTHETIC:</b> some evidence comes from generated data, '
                "not a measured model.</div>")
    if missing:
        rows = "".join(f"<li>{_e(f)}/{_e(n)}: {_e(r)}</li>" for f, n, r in
                       dict.fromkeys((m.folder, m.file, m.reason) for m in missing))
        out += f'<div class="warnings"><b>Missing runs</b>: evidence cites files no longer there<ul>{rows}</ul></div>'
    return out + f'<p class="muted">Ladder, lowest first: {_e(" → ".join(RUNGS))}.</p>'


def render_html(dossier: Dossier, *, missing_runs: Iterable[MissingRun] = (),
                run_link: RunLink = default_link) -> str:
    """The dossier as one self-contained HTML page (escaped; no external assets)."""
    from interp_agent.core.reports.html import REPORT_CSS

    missing = tuple(missing_runs)
    gone = _missing_ids(missing)
    sections = []
    for model, feature in dossier.features():
        claims = "".join(_html_claim(c, gone, run_link) for c in dossier.claims_about(model, feature))
        sections.append(f'<section class="feature"><div class="feature-head"><h2>{_e(feature)}</h2>'
                        f'<span class="muted">{_e(model)}</span></div>'
                        f"{_html_ladder(feature_rungs(dossier, model, feature))}{claims}</section>")
    body = _html_header(dossier, missing) + ("".join(sections) or '<p class="muted">No claims yet.</p>')
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Dossier {_e(dossier.name)}</title><style>{REPORT_CSS}{LADDER_CSS}</style></head>"
            f'<body><main class="container">{body}</main></body></html>\n')


# -- the compact view ----------------------------------------------------------------------------


def summary_dict(dossier: Dossier, *, missing_runs: Iterable[MissingRun] = (), limit: int | None = None
                 ) -> dict[str, Any]:
    """What a tool returns about a dossier: each claim with its grade, reason and ladder (not every number),
    the count of claims per grade, and the runs that have gone missing.

    Args:
        limit: at most this many claims, highest grade first (None: all).
    """
    order = {r: i for i, r in enumerate(RUNGS)}
    rows = []
    for claim in dossier.claims:
        grade = grade_claim(claim)
        rows.append({"claim_id": claim.id, "kind": claim.kind, "model": claim.model, "feature_id": claim.feature_id,
                     "text": claim.text, "grade": grade.rung, "reason": grade.reason,
                     "rungs": {r: s for r, s in grade.rungs.items() if s != "not_applicable"},
                     "n_evidence": len(claim.evidence)})
    rows.sort(key=lambda r: -1 if r["grade"] is None else order[r["grade"]], reverse=True)
    by_grade: dict[str, int] = {}
    for row in rows:
        by_grade[row["grade"] or "none"] = by_grade.get(row["grade"] or "none", 0) + 1
    return {"name": dossier.name, "criterion": dossier.criterion, "models": list(dossier.models),
            "created": dossier.created, "n_claims": len(rows), "n_runs": len(dossier.runs), "by_grade": by_grade,
            "claims": rows if limit is None else rows[:limit], "missing_runs": [m.to_dict() for m in missing_runs]}
