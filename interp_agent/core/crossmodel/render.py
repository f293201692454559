"""The markdown written beside validation.json: how many matches survive intervention, and one row per pair."""

from __future__ import annotations

from typing import Any

from interp_agent.core.crossmodel.compare import GRADES


def _num(value: Any, spec: str = "+.3f") -> str:
    return "–" if value is None or isinstance(value, bool) else format(value, spec)


def _ci(ci: Any, spec: str = "+.3f") -> str:
    return "" if not ci else f" [{format(ci[0], spec)}, {format(ci[1], spec)}]"


def _yes(value: Any) -> str:
    return "–" if value is None else "yes" if value else "no"


def _side(s: dict[str, Any]) -> str:
    return f"{_num(s['effect'])}{_ci(s['ci95'])} {s['verdict']}"


def _patch(p: dict[str, Any] | None) -> str:
    if not p:
        return "–"
    vs = p["vs_right_feature"]
    ratio = "" if vs["ratio"] is None else f", ratio {_num(vs['ratio'], '.2f')}{_ci(vs['ratio_ci95'], '.2f')}"
    return f"{_num(p['effect'])}{_ci(p['ci95'])} {p['verdict']}{ratio}"


def render_markdown(result: dict[str, Any]) -> str:
    """Summary counts per grade, the table of pairs, and the scorer, patch-across and method notes."""
    prov, s, settings = result["provenance"], result["summary"], result["settings"]
    lines = [
        "# Validated matches", "",
        f"Left model: {prov['left_model']} · right model: {prov['right_model']} · criterion: {result['criterion']}",
        f"Mode {settings['mode']}, strengths {settings['strengths']}, {settings['n_calibration']} calibration / "
        f"{settings['n_held_out']} held-out prompts; scorer {result['scorer']['kind']} ({result['scorer']['why']}).",
        "", f"**{s['survive']} of {s['n_pairs']} matches survive intervention** (same_direction or equivalent): "
        + ", ".join(f"{g} {s[g]}" for g in GRADES) + ". All numbers interventional.", "",
    ]
    head = ["#", "Left feature", "Right feature", "Similarity", "Left effect", "Right effect", "Signs agree",
            "Ratio R/L", "Grade", "Patch-across (right, left direction mapped)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["pairs"]:
        row = [str(r["rank"]), r["left_feature_id"], r["right_feature_id"], _num(r["similarity"], ".3f"),
               _side(r["left"]), _side(r["right"]), _yes(r["sign_agree"]),
               _num(r["ratio"], ".2f") + _ci(r["ratio_ci95"], ".2f"), f"**{r['grade']}**", _patch(r["patch_across"])]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    lines += ["", "Effects: mean signed change of the behaviour score on the shared held-out prompts (> 0: the "
              "edit promotes the criterion), Student-t 95% interval, the side's verdict against its own controls; "
              "ratio: 95% paired bootstrap interval.", "",
              f"Patch-across: {result['patch_across']['note']}.", "", "## Grades", ""]
    lines += [f"- {k}: {v}" for k, v in result["grade_rule"].items()]
    lines += ["", "## Method", "", result["method"] + ".", "", f"Scorer rule: {result['scorer']['rule']}."]
    return "\n".join(lines) + "\n"
