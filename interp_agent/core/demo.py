"""``demo``: the main job end to end on built-in synthetic inputs.

Two toy models share planted concepts under different feature ids. The demo inspects
both (with synthetic intervention evidence and controls), matches their features, and
writes readable reports. Every artifact is labelled synthetic: no model is measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interp_agent.core.inspection import inspect
from interp_agent.core.matching import match_reports, write_matches
from interp_agent.core.ranking.rank import Progress

DEMO_CRITERION = "the next token should be a physical measurement unit"


def run_demo(out: Path, *, progress: Progress | None = None) -> dict[str, Any]:
    """Run the demo into ``out``; returns paths and a short text summary."""
    out = Path(out)
    reports = {}
    for name in ("toy/model-a", "toy/model-b"):
        folder = out / name.split("/")[-1]
        reports[name] = inspect(name, DEMO_CRITERION, backend="toy", out=folder, progress=progress)
    left, right = reports.values()
    matches = match_reports(left.report, right.report)
    json_path, md_path = write_matches(matches, out / "matches.json")
    lines = ["[SYNTHETIC] interp-agent demo: two toy models with planted features (no model was measured)"]
    for name, result in reports.items():
        top = result.report["features"][0]
        s = result.report["summary"]
        lines.append(
            f"{name}: {s['n_features_tested']} features, {s['n_held_out_supported']} of the top "
            f"{len(result.report['features'])} confirmed on held-out prompts; top {top['feature_id']} ({top['label']})"
        )
        lines.append(f"  report: {result.paths['html']}")
    lines.append(f"matches: {matches['summary']['n_matches']} pairs -> {md_path}")
    return {
        "synthetic": True,
        "reports": {name: {k: str(v) for k, v in r.paths.items()} for name, r in reports.items()},
        "matches": {"json": str(json_path), "md": str(md_path), "summary": matches["summary"]},
        "lines": lines,
    }
