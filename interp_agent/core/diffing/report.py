"""``diff.json`` and ``diff.md``: a model diff on disk, every number tagged with its provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interp_agent.core.artifacts import write_json, write_text

COR, INT = "[correlational]", "[interventional]"


def _ci(m: dict[str, Any] | None, digits: int = 3) -> str:
    """``mean [lo, hi]`` of a {mean, ci95} dict."""
    if not m or m.get("mean") is None:
        return "-"
    ci = m.get("ci95")
    return f"{m['mean']:+.{digits}f}" + (f" [{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]" if ci else "")


def _feature_rows(entries: list[dict[str, Any]]) -> list[str]:
    if not entries:
        return ["(none selected)", ""]
    rows = ["| feature | confirmed | firing rate base → tuned | rate change | shift d | base↔tuned r (median) |",
            "|---|---|---|---|---|---|"]
    for e in entries:
        h = e["held_out"]
        rows.append(f"| `{e['feature_id']}` | {'yes' if e['confirmed'] else 'no'} | {h['rate_base']:.3f} → "
                    f"{h['rate_tuned']:.3f} | {_ci(h['rate_change'])} | {_ci(h['shift'], 2)} | "
                    f"{_ci(h['corr'])} ({h['corr']['median_feature_corr']:.3f}) |")
    return rows + [""]


def _mover_rows(movers: list[dict[str, Any]]) -> list[str]:
    if not movers:
        return ["(no feature's AUROC moved by the threshold on calibration prompts)", ""]
    rows = ["| feature | confirmed | AUROC base (calib.) | AUROC tuned (calib.) | held-out AUROC base → tuned | "
            "held-out change |", "|---|---|---|---|---|---|"]
    for m in movers:
        c, h = m["calibration"], m["held_out"]
        rows.append(f"| `{m['feature_id']}` | {'yes' if m['confirmed'] else 'no'} | {c['auroc_base']:.3f} | "
                    f"{c['auroc_tuned']:.3f} | {h['auroc_base']:.3f} → {h['auroc_tuned']:.3f} | "
                    f"{_ci(h['auroc_change'])} |")
    return rows + [""]


def _behaviour_lines(b: dict[str, Any] | None) -> list[str]:
    if not b:
        return []
    return [f"## Behaviour {INT}", "", f"Criterion: {b['criterion']}. {b['measure']}; held-out prompts "
            f"({b['n_positive']} positive, {b['n_negative']} negative).", "",
            "| prompts | base | tuned | change |", "|---|---|---|---|",
            *[f"| {name} | {_ci(b[name]['base'])} | {_ci(b[name]['tuned'])} | {_ci(b[name]['change'])} |"
              for name in ("positive", "negative")], "",
            f"Preference shift (positive minus negative change): {_ci(b['preference_shift'])} nats/token "
            f"({b['preference_shift']['method']}); moved: {'yes' if b['moved'] else 'no'}.", "",
            *_pair_lines(b.get("all_matched_pairs"))]


def _pair_lines(p: dict[str, Any] | None) -> list[str]:
    if not p:
        return []
    return [f"Over all {p['n_pairs']} matched pairs of the criterion's prompts ({p['measured_on']}): preference "
            f"shift {_ci(p['preference_shift'])} nats/token ({p['preference_shift']['method']}); "
            f"moved: {'yes' if p['moved'] else 'no'}.", ""]


def render_markdown(result: dict[str, Any]) -> str:
    """The diff as a page: summary, behaviour, then per hookpoint the three kinds and the criterion movers."""
    s = result["summary"]
    lines = [f"# Model diff: `{result['tuned']['name']}` against `{result['base']['name']}`", "",
             f"Features: {result['features']}; probes: {result['probes']['n_prompts']} prompts "
             f"({result['probes']['held_out_prompts']} held out, hash split salt `{result['probes']['split_salt']}`). "
             "Features are chosen on the selection half and shown on the held-out half with Poisson-bootstrap "
             f"95% intervals {COR}.", "", "## Summary", "",
             "| kind | selected | confirmed on held-out |", "|---|---|---|",
             *[f"| {k} | {v['selected']} | {v['confirmed']} |" for k, v in s["counts"].items()], ""]
    if s["top_movers"]:
        lines += [f"Top movers {COR}: " + ", ".join(f"`{m['feature_id']}` ({m['kind']}, d {m['shift']['mean']:+.2f})"
                                                     for m in s["top_movers"]), ""]
    if s["criterion_movers"]:
        lines += [f"Criterion-relevant movers {COR}: " + ", ".join(
            f"`{m['feature_id']}` (AUROC {m['auroc_base']:.2f} → {m['auroc_tuned']:.2f})"
            for m in s["criterion_movers"]), ""]
    lines += _behaviour_lines(result.get("behaviour"))
    for p in result["hookpoints"]:
        lines += [f"## `{p['hookpoint']}` (width {p['width']}; tokens: {p['n_tokens']['selection']} selection, "
                  f"{p['n_tokens']['held_out']} held out; median base↔tuned r {p['median_corr_selection']:.3f})", ""]
        for kind in ("appear", "vanish", "change"):
            lines += [f"### {kind} {COR}", "", *_feature_rows(p[kind])]
        if "criterion_movers" in p:
            lines += [f"### criterion movers {COR}", "", *_mover_rows(p["criterion_movers"])]
    return "\n".join(lines) + "\n"


def write_diff(out: str | Path, result: dict[str, Any]) -> dict[str, Path]:
    """Write ``diff.json`` and ``diff.md`` into ``out`` (atomically); returns their paths."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "diff.json", "md": folder / "diff.md"}
    write_json(paths["json"], result | {"paths": {k: str(v) for k, v in paths.items()}})
    write_text(paths["md"], render_markdown(result))
    return paths
