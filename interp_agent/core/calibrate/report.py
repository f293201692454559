"""calibration.json and calibration.md, and the tables both the markdown and the terminal show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interp_agent.core.artifacts import write_json, write_text
from interp_agent.core.calibrate.metrics import verdict_table
from interp_agent.core.calibrate.result import CAVEATS, CalibrationResult
from interp_agent.core.calibrate.run import LevelResult
from interp_agent.core.calibrate.worlds import DECOY_FAMILIES


def fmt_spread(block: dict[str, Any]) -> str:
    """``0.875 ± 0.125 [0.750, 1.000]``, or ``n/a`` when no seed gave a value."""
    if block["mean"] is None:
        return "n/a"
    return f"{block['mean']:.3f} ± {block['sd']:.3f} [{block['min']:.3f}, {block['max']:.3f}]"


def _num(value: Any) -> str:
    return "n/a" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))


def aggregate_rows(level: LevelResult) -> list[tuple[str, str]]:
    """(metric, mean ± sd [min, max]) rows of one level, in table order."""
    agg = level.aggregate()
    rows = []
    for k in agg["precision_at_k"]:
        rows.append((f"precision@{k}", fmt_spread(agg["precision_at_k"][k])))
        rows.append((f"recall@{k}", fmt_spread(agg["recall_at_k"][k])))
    k = str(level.n_true)
    rows += [(f"{fam} rate@{k}", fmt_spread(agg["decoy_rate_at_k"][k][fam])) for fam in DECOY_FAMILIES]
    rows += [(name.replace("_", " "), fmt_spread(agg[name])) for name in
             ("spearman", "spearman_all", "causal_recovery", "false_causal", "mean_abs_error",
              "true_held_out_supported", "held_out_supported_precision", "control_mean_effect")]
    return rows


def verdict_rows(level: LevelResult) -> list[tuple[str, ...]]:
    """Per verdict over the level's intervened features: count, truly causal, P(true | verdict) and its interval."""
    table = verdict_table([r for w in level.worlds for r in w.effects])
    return [(v, str(b["n"]), str(b["n_true"]), f"{b['p_true']:.3f}", f"[{b['ci95'][0]:.3f}, {b['ci95'][1]:.3f}]")
            for v, b in table.items()]


SEED_COLUMNS = ("seed", "P@k", "R@k", "always_on", "rare", "confounded", "noise", "spearman", "recovery",
                "false causal", "held-out used", "controls quiet")
"""Columns of the per-seed table (k = number of true features)."""


def seed_rows(level: LevelResult) -> list[tuple[str, ...]]:
    """One row per seed: the metrics at k = number of true features, effects, held-out use, controls."""
    rows = []
    for w in level.worlds:
        top = w.at(level.n_true)
        e = w.effect_summary
        rows.append((str(w.seed), _num(top.precision), _num(top.recall),
                     *(_num(top.decoy_rates[f]) for f in DECOY_FAMILIES), _num(e["spearman"]),
                     _num(e["causal_recovery"]), _num(e["false_causal"]), str(w.held_out["used"]),
                     str(w.controls["quiet"])))
    return rows


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    return [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}",
            *(f"| {' | '.join(r)} |" for r in rows)]


def render_markdown(result: CalibrationResult) -> str:
    """The short human summary: verdict, failed checks, per-level aggregates and per-seed rows, caveats."""
    cfg = result.config
    lines = ["# interp-agent calibration", "",
             "SYNTHETIC: planted worlds, no model was measured. Every number below is provenance `synthetic`.", "",
             f"Verdict: **{'passed' if result.passed else 'FAILED'}** "
             f"({len(result.checks) - len(result.failed)}/{len(result.checks)} checks)", ""]
    lines += [f"- failed: {c.describe()}" for c in result.failed]
    lines += ["", f"Seeds {list(cfg.seeds)}; per world {cfg.n_prompts} prompts, {cfg.n_features} features "
              f"({cfg.n_true} true, {cfg.n_always_on} always-on, {cfg.n_rare} rare, {cfg.n_confounded} "
              f"confounder-tied, {cfg.n_noise} noise); k = {list(cfg.cutoffs)}.", ""]
    for level in result.levels:
        lv = level.level
        lines += [f"## {lv.name}: signal {lv.signal}, absent {lv.absent_rate:.0%}, effect noise {lv.effect_noise}",
                  "", *_table(("metric", "mean ± sd [min, max] over seeds"), aggregate_rows(level)), "",
                  *_table(SEED_COLUMNS, seed_rows(level)), "",
                  *_table(("verdict", "n", "truly causal", "P(true | verdict)", "Wilson 95%"), verdict_rows(level)),
                  ""]
    lines += ["## Checks", "", *_table(("check", "passed"), [(c.describe(), str(c.passed)) for c in result.checks]),
              "", "## Caveats", "", *(f"- {c}" for c in CAVEATS), ""]
    return "\n".join(lines)


def write_calibration(result: CalibrationResult, out: str | Path) -> dict[str, Path]:
    """Write calibration.json and calibration.md into ``out``, each atomically (temporary file, then rename)."""
    folder = Path(out)
    return {"json": write_json(folder / "calibration.json", result.to_json()),
            "md": write_text(folder / "calibration.md", render_markdown(result))}
