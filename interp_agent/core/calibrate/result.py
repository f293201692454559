"""The thresholds applied to what was measured: one check per expectation, and the result CI holds the pipeline to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from interp_agent.core.artifacts import run_provenance, schema_version
from interp_agent.core.calibrate.config import CalibrationConfig, Thresholds
from interp_agent.core.calibrate.run import LevelResult, WorldResult
from interp_agent.core.ranking.verdict import MIN_CAUSAL_EFFECT

SCHEMA_VERSION = schema_version("calibration")
"""``interp-agent.calibration.v1``."""


@dataclass(frozen=True, slots=True)
class Check:
    """One expectation on one level, and whether the measurement met it."""

    level: str
    """The level's name."""
    name: str
    """What is checked: precision_at_k, always_on_rate, spearman, causal_recovery, false_causal, held_out, controls."""
    statistic: str
    """How the seeds are combined: ``mean over seeds``, ``worst seed`` or ``every seed``."""
    value: float | bool | None
    """The measured value (None: not measurable, which fails)."""
    op: Literal[">=", "<=", "is"]
    """How value is compared with threshold."""
    threshold: float | bool
    """The documented expectation."""
    passed: bool
    """Whether value meets threshold."""

    def describe(self) -> str:
        """One line: ``easy: precision_at_k (mean over seeds) = 0.625, needs >= 0.8``."""
        shown = "not measurable" if self.value is None else (
            f"{self.value:.3f}" if isinstance(self.value, float) else str(self.value))
        needs = str(self.threshold) if self.op == "is" else f"{self.op} {self.threshold}"
        return f"{self.level}: {self.name} ({self.statistic}) = {shown}, needs {needs}"

    def to_json(self) -> dict[str, Any]:
        """The check as JSON."""
        return {"level": self.level, "name": self.name, "statistic": self.statistic, "value": self.value,
                "op": self.op, "threshold": self.threshold, "passed": self.passed, "provenance": "synthetic"}


def _bound(level: str, name: str, values: list[float | None], how: Literal["mean", "max"], op: Literal[">=", "<="],
           threshold: float) -> Check:
    """A numeric check on the mean (or the worst seed's value) of ``values``; a missing value fails."""
    value: float | None
    if any(v is None for v in values):
        value = None
    else:
        xs = [float(v) for v in values if v is not None]
        value = sum(xs) / len(xs) if how == "mean" else max(xs)
    ok = value is not None and (value >= threshold if op == ">=" else value <= threshold)
    return Check(level, name, "mean over seeds" if how == "mean" else "worst seed", value, op, threshold, ok)


def _every(level: str, name: str, worlds: tuple[WorldResult, ...], holds: Callable[[WorldResult], bool]) -> Check:
    """A yes/no check that must hold on every seed."""
    ok = all(holds(w) for w in worlds)
    return Check(level, name, "every seed", ok, "is", True, ok)


def level_checks(result: LevelResult) -> list[Check]:
    """The checks of one level's thresholds (those set to None are skipped)."""
    t: Thresholds = result.level.thresholds
    name, ws, k = result.level.name, result.worlds, result.n_true
    checks = []
    if t.min_precision is not None:
        checks.append(_bound(name, f"precision_at_{k}", [w.at(k).precision for w in ws], "mean", ">=",
                             t.min_precision))
    if t.max_always_on_rate is not None:
        checks.append(_bound(name, f"always_on_rate_at_{k}", [w.at(k).decoy_rates["always_on"] for w in ws], "max",
                             "<=", t.max_always_on_rate))
    if t.min_spearman is not None:
        checks.append(_bound(name, "spearman", [w.effect_summary["spearman"] for w in ws], "mean", ">=",
                             t.min_spearman))
    if t.min_causal_recovery is not None:
        checks.append(_bound(name, "causal_recovery", [w.effect_summary["causal_recovery"] for w in ws], "mean", ">=",
                             t.min_causal_recovery))
    if t.max_false_causal is not None:
        checks.append(_bound(name, "false_causal", [w.effect_summary["false_causal"] for w in ws], "max", "<=",
                             t.max_false_causal))
    if t.require_held_out:
        checks.append(_every(name, "held_out_used", ws, lambda w: bool(w.held_out["used"])))
    if t.require_quiet_controls:
        checks.append(_every(name, "controls_present_and_quiet", ws,
                             lambda w: bool(w.controls["present"] and w.controls["quiet"])))
    return checks


CAVEATS = (
    "Synthetic worlds, not a model: the planted features, decoys and effects are clean and independent, so these "
    "numbers check the ranking and the causal summary on known truth; they are not error rates on real activations.",
    "Only the records backend with intervention records is exercised (the code of `inspect --backend records`); "
    "live harvesting (hf, saelens) and live interventions (`intervene`) are not.",
    "Intervention rows are generated with their effects, not measured: the calibration checks how the report "
    "estimates and judges effects from rows, not how well an edit of a model measures them.",
    f"A verdict claims an effect when it is causal or contradicts; zero-effect decoys are judged by the report's "
    f"rule (interval, controls, |effect| >= {MIN_CAUSAL_EFFECT}).",
)
"""What the numbers do and do not say; written into calibration.json and calibration.md."""

METHOD = {
    "worlds": "per level and seed, core.synthetic.planted_records plants true features (distinct ablation effects, "
              "the last one suppressing) among always-on, rare, confounder-tied and sparse-noise decoys; true "
              "features are absent from a share of the prompts they should fire on; absent features are omitted "
              "from most rows and written as explicit zeros on the others; labels are not written",
    "interventions": "every true feature and some confounder-tied decoys (planted effect 0) are ablated on held-out "
                     "positive prompts with N(0, effect_noise) row noise; sparse-noise features give random_feature "
                     "control rows",
    "ranking": "interp_agent.core.inspection.inspect(backend='records') with the default RankingConfig, top_k = the "
               "largest k",
    "precision_at_k": "share of the top k ranked features that are true features; recall_at_k: share of the true "
                      "features in the top k",
    "decoy_rate": "share of the top k taken by each decoy family",
    "spearman": "Spearman rho between the true features' planted |effect| and the report's |causal.mean_effect|; "
                "spearman_all: signed effects of every intervened feature, zero-effect decoys included",
    "causal_recovery": "share of true features whose report verdict is causal; false_causal: share of zero-effect "
                       "decoys whose verdict is causal or contradicts",
    "held_out": "the report's held-out prompt count and held-out blocks; ranking_unchanged_by_held_out_scores: the "
                "top features, in order, are the same when every held-out row's criterion score is flipped (the "
                "features are chosen on the training rows only)",
    "verdicts": "per verdict over every intervened feature of a level: P(truly causal | verdict), Wilson 95% interval",
    "spread": "mean, sample sd (ddof 1), min and max across seeds",
}
"""How each number is made, for calibration.json."""


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """Every level's measurements, the checks of their thresholds, and the files written."""

    config: CalibrationConfig
    """What was planted and measured."""
    levels: tuple[LevelResult, ...]
    """One per level, in the config's order."""
    checks: tuple[Check, ...]
    """Every threshold of every level, checked."""
    paths: dict[str, Path] = field(default_factory=dict)
    """Written files by name (json, md, worlds); empty when no output folder was given."""

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        """The checks that failed."""
        return tuple(c for c in self.checks if not c.passed)

    def level(self, name: str) -> LevelResult:
        """The result of the level called ``name``."""
        return next(lv for lv in self.levels if lv.level.name == name)

    def to_json(self) -> dict[str, Any]:
        """calibration.json: schema, verdict, checks, per-level aggregates and per-seed blocks, method, caveats."""
        return {
            "schema_version": SCHEMA_VERSION,
            "synthetic": True,
            "provenance": "synthetic",
            "passed": self.passed,
            "failed": [c.describe() for c in self.failed],
            "checks": [c.to_json() for c in self.checks],
            "levels": {lv.level.name: lv.to_json() for lv in self.levels},
            "config": self.config.to_json(),
            "method": METHOD,
            "caveats": list(CAVEATS),
            "run": run_provenance({}),
        }


def judge(config: CalibrationConfig, levels: tuple[LevelResult, ...]) -> CalibrationResult:
    """Apply every level's thresholds."""
    return CalibrationResult(config, levels, tuple(c for lv in levels for c in level_checks(lv)))
