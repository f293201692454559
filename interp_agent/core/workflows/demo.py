"""``demo``: the main job end to end (a workflow: ``investigate`` on the embedded model).

Real (default): on the embedded SmolLM2-135M-Instruct and the built-in
``measurement_unit`` criterion, inspect the residual stream at three depths, intervene on
the top features and the contrast direction with controls, then rank again with that
causal evidence and write a report a person can read.

Synthetic (``synthetic=True``): two toy models with planted features are inspected and
matched; every artifact says it is synthetic.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from interp_agent.core.inspection import inspect
from interp_agent.core.matching import match_reports, write_matches
from interp_agent.core.progress import Progress
from interp_agent.core.ranking import RankingConfig
from interp_agent.core.workflows.investigate import investigate

DEMO_CRITERION = "the next token should be a physical measurement unit"
DEMO_PACK = "measurement_unit"
DEMO_MODEL = "smollm2-135m"


def run_demo(out: Path, *, progress: Progress | None = None, synthetic: bool = False) -> dict[str, Any]:
    """Run the demo into ``out``; returns paths and a short text summary."""
    return _synthetic(Path(out), progress) if synthetic else _real(Path(out), progress)


def _real(out: Path, progress: Progress | None) -> dict[str, Any]:
    start = time.perf_counter()
    config = RankingConfig(top_k=20)
    # the final ranking harvests again (deterministic), now ranked with the causal evidence and token highlights
    run = investigate(
        DEMO_MODEL, None, first_out=out / "1-inspect", intervene_out=out / "2-intervene", final_out=out / "3-report",
        inspect_options={"backend": "hf", "pack": DEMO_PACK, "config": config},
        intervene_options={"pack": DEMO_PACK, "top_k": 3, "mode": "steer"}, progress=progress,
    )
    first, inter, final = run.first, run.intervention, run.final
    lines = [
        f"interp-agent demo: {DEMO_MODEL} (embedded SmolLM2-135M-Instruct), criterion: {first.report['criterion']!r}",
        f"1. inspect: {first.report['summary']['n_features_tested']} features at "
        f"{', '.join(first.report['live']['hookpoints'])}; {first.report['summary']['n_held_out_supported']} of the "
        f"top {len(first.report['features'])} confirmed on held-out prompts",
        f"2. intervene (steer, with random-direction and matched-feature controls; scorer held-out AUROC "
        f"{inter.summary['scorer']['auroc']:.2f}):",
    ]
    for f in inter.summary["features"]:
        ci = f["effect"]["ci95"]
        lines.append(f"   {f['feature_id']:<44} {f['verdict']:<11} effect {f['effect']['mean']:+.4f} "
                     f"[{ci[0]:+.4f}, {ci[1]:+.4f}] vs controls {f['control_effect']['mean']:+.4f}")
    top = final.report["features"][0]
    lines.append(f"3. ranked with causal evidence: top {top['feature_id']} ({top.get('label') or 'no label'})")
    lines.append(f"report: {final.paths['html']}  ({time.perf_counter() - start:.0f} s)")
    return {
        "synthetic": False,
        "reports": {"inspect": str(first.paths["html"]), "final": str(final.paths["html"])},
        "interventions": {k: str(v) for k, v in inter.paths.items()},
        "verdicts": {f["feature_id"]: f["verdict"] for f in inter.summary["features"]},
        "lines": lines,
    }


def _synthetic(out: Path, progress: Progress | None) -> dict[str, Any]:
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
