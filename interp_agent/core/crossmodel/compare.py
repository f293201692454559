"""Compare the intervention effects of two matched features, and grade the match.

Both sides of a pair are edited the same way (same mode, strengths in the same units) and
measured on the *same* held-out prompts with one behaviour scorer that means the same on both
models, so their per-prompt signed effects pair up by prompt id. A side **has a causal effect**
when its intervention passes the three verdict checks (``ranking.verdict``: the 95% interval
excludes 0, it beats every control and 3x their RMS, |effect| >= 0.05) in either direction.

The grade ladder, lowest first (``opposite`` stands beside it)::

    similar → same_direction → equivalent        (opposite)

- ``similar``: matched only; at least one side shows no causal effect;
- ``opposite``: both sides causal, with effects of opposite sign;
- ``same_direction``: both causal, same sign, but the effect ratio's interval excludes 1;
- ``equivalent``: both causal, same sign, and the 95% bootstrap interval of the ratio
  (right / left, over the shared held-out prompts) includes 1. "Equivalent within intervals"
  means *not distinguishable at this sample size*, not proven equal.

The ratio and the difference (right - left) are bootstrapped by resampling the shared prompts
(the same resample for both sides, so the pairing is kept). Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Grade = Literal["similar", "opposite", "same_direction", "equivalent"]
GRADES: tuple[Grade, ...] = ("similar", "opposite", "same_direction", "equivalent")
"""Every grade, the ladder's order (``opposite`` is off the ladder, listed after ``similar``)."""

GRADE_RULE: dict[str, str] = {
    "causal_side": "a side has a causal effect when its intervention passes all three verdict checks "
                   "(interval excludes 0, beats the controls, |effect| >= min_effect), in either direction",
    "similar": "matched only: at least one side has no causal effect",
    "opposite": "both sides causal, effects of opposite sign",
    "same_direction": "both sides causal, same sign, the 95% bootstrap interval of the ratio right/left excludes 1",
    "equivalent": "both sides causal, same sign, the 95% bootstrap interval of the ratio right/left includes 1 "
                  "(not distinguishable at this sample size; not proven equal)",
}
"""The grading rule, as written into validation.json."""

N_BOOTSTRAP = 2000
"""Bootstrap resamples of the shared held-out prompts."""


@dataclass(frozen=True, slots=True)
class SideEffect:
    """One side's held-out effect, as its intervention summary states it."""

    feature_id: str
    mean: float
    """Mean signed effect (> 0: editing the feature promotes the criterion)."""
    ci95: tuple[float, float] | None
    verdict: str
    """The intervention's verdict (causal, weak, no_effect, contradicts)."""
    checks: dict[str, bool]
    """interval_excludes_zero, beats_controls, meets_min_effect."""
    control_max_abs: float
    measured_on: str

    @property
    def causal(self) -> bool:
        """All three verdict checks pass (in either direction)."""
        return bool(self.checks) and all(self.checks.values())

    @classmethod
    def of(cls, summary: dict[str, Any]) -> SideEffect:
        """From one feature's entry of ``run_interventions(...).features``."""
        ci = summary["effect"].get("ci95")
        return cls(summary["feature_id"], float(summary["effect"]["mean"]), tuple(ci) if ci else None,
                   summary["verdict"], dict(summary.get("verdict_checks") or {}),
                   float(summary["control_effect"]["max_abs"]), summary["effect"]["measured_on"])

    def to_json(self) -> dict[str, Any]:
        """The side's numbers for a validation row."""
        return {"feature_id": self.feature_id, "effect": self.mean, "ci95": list(self.ci95) if self.ci95 else None,
                "verdict": self.verdict, "causal": self.causal, "beats_controls": bool(self.checks.get(
                    "beats_controls")), "control_max_abs": self.control_max_abs, "measured_on": self.measured_on}


def _percentile_ci(values: np.ndarray) -> list[float] | None:
    finite = values[np.isfinite(values)]
    if len(finite) < 0.95 * len(values) or not len(finite):
        return None  # the denominator's resamples cross 0 too often: the ratio has no bounded interval
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return [float(lo), float(hi)]


def paired_bootstrap(
    left_P: np.ndarray, right_P: np.ndarray, *, n_boot: int = N_BOOTSTRAP, seed: int = 0
) -> dict[str, Any]:
    """Ratio (right/left) and difference (right - left) of mean effects, with 95% percentile bootstrap intervals.

    Args:
        left_P, right_P: per shared prompt, each side's signed effect (same order).

    Returns:
        ``{ratio, ratio_ci95, difference, difference_ci95, n_prompts, n_bootstrap}``; a ratio (and its
        interval) is None when the left mean is 0, the interval None when over 5% of resamples have a
        left mean of exactly 0.
    """
    n = len(left_P)
    if n != len(right_P) or n < 2:
        return {"ratio": None, "ratio_ci95": None, "difference": None, "difference_ci95": None, "n_prompts": n,
                "n_bootstrap": 0}
    rng = np.random.default_rng(seed)
    idx_BP = rng.integers(0, n, size=(n_boot, n))
    lm_B, rm_B = left_P[idx_BP].mean(1), right_P[idx_BP].mean(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_B = np.where(lm_B != 0, rm_B / lm_B, np.nan)
    lm, rm = float(left_P.mean()), float(right_P.mean())
    return {"ratio": rm / lm if lm != 0 else None, "ratio_ci95": _percentile_ci(ratio_B) if lm != 0 else None,
            "difference": rm - lm, "difference_ci95": _percentile_ci(rm_B - lm_B), "n_prompts": n,
            "n_bootstrap": n_boot}


def _contains(ci: Sequence[float] | None, value: float) -> bool | None:
    return None if ci is None else bool(ci[0] <= value <= ci[1])


def _overlap(a: Sequence[float] | None, b: Sequence[float] | None) -> bool | None:
    return None if a is None or b is None else bool(a[0] <= b[1] and b[0] <= a[1])


def grade(left: SideEffect, right: SideEffect, stats: dict[str, Any]) -> tuple[Grade, str]:
    """The pair's grade and the reason, with the numbers (rule in the module docstring)."""
    def side(s: SideEffect, name: str) -> str:
        ci = f"[{s.ci95[0]:+.3g}, {s.ci95[1]:+.3g}]" if s.ci95 else "(no interval)"
        return f"{name} {s.mean:+.3g} {ci} ({s.verdict})"

    said = f"{side(left, 'left')}, {side(right, 'right')}"
    if not (left.causal and right.causal):
        missing = [n for n, s in (("left", left), ("right", right)) if not s.causal]
        return "similar", f"{' and '.join(missing)} without a causal effect: {said}"
    if np.sign(left.mean) != np.sign(right.mean):
        return "opposite", f"both causal with opposite signs: {said}"
    ci = stats.get("ratio_ci95")
    ratio = f"ratio {stats['ratio']:.3g} [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "ratio interval unbounded"
    if ci is None or _contains(ci, 1.0):
        return "equivalent", f"both causal, same sign, {ratio} includes 1: {said}"
    return "same_direction", f"both causal, same sign, {ratio} excludes 1: {said}"


def compare(left: SideEffect, right: SideEffect, left_P: np.ndarray, right_P: np.ndarray, *,
            n_boot: int = N_BOOTSTRAP, seed: int = 0) -> dict[str, Any]:
    """One pair's comparison: both sides' numbers, sign agreement, ratio and difference intervals, grade.

    Args:
        left_P, right_P: per shared held-out prompt (same order), each side's signed effect.
    """
    stats = paired_bootstrap(left_P, right_P, n_boot=n_boot, seed=seed)
    g, reason = grade(left, right, stats)
    return {
        "left": left.to_json(), "right": right.to_json(),
        "sign_agree": bool(np.sign(left.mean) == np.sign(right.mean)) if left.mean and right.mean else None,
        "both_beat_controls": bool(left.checks.get("beats_controls") and right.checks.get("beats_controls")),
        "intervals_overlap": _overlap(left.ci95, right.ci95),
        **stats,
        "ratio_ci_includes_1": _contains(stats["ratio_ci95"], 1.0),
        "difference_ci_includes_0": _contains(stats["difference_ci95"], 0.0),
        "grade": g, "grade_reason": reason, "provenance": "interventional",
    }


def grade_counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many pairs earned each grade, plus ``survive`` (same_direction or equivalent)."""
    counts = {g: sum(r["grade"] == g for r in rows) for g in GRADES}
    return counts | {"survive": counts["same_direction"] + counts["equivalent"], "n_pairs": len(rows)}
