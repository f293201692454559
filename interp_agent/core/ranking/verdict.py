"""The verdict of an intervention: what its held-out effect says against the controls and the score's scale.

A verdict rests on three checks of the mean signed effect ``e`` over the held-out prompts
(signed so that ``e > 0`` means the feature promotes the criterion, then aligned with the
direction the association expects):

- (a) interval: the Student-t 95% interval of ``e`` excludes 0;
- (b) controls: ``|e|`` exceeds every control's mean effect and ``CONTROL_SPREAD_FACTOR``
  times the controls' root-mean-square effect (their spread around 0, a shared offset
  included): an edit of matched size along a random direction or feature does not do it;
- (c) size: ``|e| >= MIN_CAUSAL_EFFECT`` on the score's 0..1 scale.

``causal``: (a), (b) and (c) in the expected direction. ``contradicts``: the same on the
other side. ``weak``: (a) in the expected direction without (b) or (c), or (b) and (c)
without (a) (large against the controls but uncertain). ``no_effect``: the rest, and
always when the edit changed no prompt's score at all (an interval of exactly [0, 0]).

Pure numpy: the report (``ranking.causal``) applies the same rule to records read from
files, without loading torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from interp_agent.core.ranking.stats import t_interval

MIN_CAUSAL_EFFECT = 0.05
"""The smallest |mean effect| a ``causal`` verdict accepts, in behaviour-score units (scores are in 0..1).

Behaviour scores are probabilities: a classifier's probability on a continuation, or the
next-token mass on target tokens. 0.05 is a twentieth of that range, five percentage
points: about the smallest mean shift that changes what a reader of the scores would
conclude (a thresholded classifier's decision on some prompts, a visible move of the
target tokens' share). Below it, an interval can still exclude 0 when many prompts
agree on a negligible shift (issue 12: a 0.0008 change was called causal); such effects
are reported as ``weak`` with this reason, never as ``causal``.
"""

CONTROL_SPREAD_FACTOR = 3.0
"""How many times the controls' root-mean-square effect a ``causal`` effect must exceed (besides every control).

The controls are a handful (3 random directions, 2 matched features by default), so their
largest effect understates how far a random edit of the same size can move the score;
three times their spread around 0 is the usual three-sigma margin over that null.
"""

INTERVAL_LEVEL = 0.95
"""Level of the Student-t interval of the mean effect."""

VERDICT_RULE: dict[str, Any] = {
    "interval": f"Student-t {INTERVAL_LEVEL:.0%} interval of the mean signed held-out effect excludes 0",
    "controls": f"|effect| > max |control effect| and > {CONTROL_SPREAD_FACTOR:g} x the controls' "
                "root-mean-square effect",
    "min_effect": MIN_CAUSAL_EFFECT,
    "min_effect_scale": "behaviour score in 0..1 (probability); |effect| >= min_effect",
    "control_spread_factor": CONTROL_SPREAD_FACTOR,
    "causal": "all three, in the direction the association expects",
    "contradicts": "all three, against the expected direction",
    "weak": "interval excludes 0 in the expected direction but the effect is within the controls or below "
            "min_effect; or beyond controls and min_effect but the interval includes 0",
    "no_effect": "otherwise, and whenever no held-out prompt's score changed (interval exactly [0, 0])",
}
"""The rule with its numbers, as written into summaries and reports."""

VERDICT_RULE_TEXT = (
    f"verdict causal when the {INTERVAL_LEVEL:.0%} interval of the held-out effect excludes 0, the effect "
    f"exceeds every control and {CONTROL_SPREAD_FACTOR:g}x the controls' RMS effect, and |effect| >= "
    f"{MIN_CAUSAL_EFFECT:g} on the 0..1 score scale (in the expected direction; contradicts on the other side); "
    "weak when the interval excludes 0 but the effect is within the controls or below the minimum (or the "
    "reverse); no_effect otherwise, and when the edit changed no prompt's score (interval [0, 0])"
)
"""One sentence of the rule for method sections and tool descriptions."""

UNCHANGED_NOTE = (
    "the edit never changed the score: every held-out prompt scored exactly the same with and without it "
    "(e.g. the continuations were identical), so the interval [0, 0] is no estimate of a small effect"
)
"""The note of an effect whose interval is exactly [0, 0]."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """A verdict with the numbers and checks behind it."""

    verdict: str
    """causal, weak, no_effect or contradicts."""
    reason: str
    """Why, with the numbers."""
    mean: float
    """Mean signed effect (> 0: the feature promotes the criterion)."""
    ci95: tuple[float, float] | None
    """Its Student-t 95% interval; None with fewer than two prompts."""
    n: int
    """Prompts the effect rests on."""
    control_max_abs: float | None
    """Largest |mean effect| of a control; None without controls."""
    control_rms: float | None
    """Root-mean-square of the controls' mean effects; None without controls."""
    checks: dict[str, bool]
    """interval_excludes_zero, beats_controls, meets_min_effect."""
    note: str | None = None
    """Set when no prompt's score changed."""

    def to_json(self) -> dict[str, Any]:
        """The checks and the numbers they compared."""
        return {"verdict": self.verdict, "reason": self.reason, "checks": dict(self.checks),
                "control_max_abs": self.control_max_abs, "control_rms": self.control_rms,
                "min_effect": MIN_CAUSAL_EFFECT, "control_spread_factor": CONTROL_SPREAD_FACTOR}


def _num(x: float) -> str:
    return f"{x:+.3g}"


def _interval(ci: tuple[float, float] | None) -> str:
    return f"[{_num(ci[0])}, {_num(ci[1])}]" if ci is not None else "(no interval)"


def judge(signed_effects: Sequence[float] | np.ndarray, control_effects: Sequence[float], expected_sign: int = 1
          ) -> Judgement:
    """The verdict of per-prompt signed effects against the controls' mean effects.

    Args:
        signed_effects: per held-out prompt, the score change signed so that > 0 means "promotes".
        control_effects: each control's mean signed effect on the same prompts.
        expected_sign: +1 when the association says the feature promotes the criterion, -1 suppresses.
    """
    e = np.asarray(signed_effects, dtype=np.float64)
    n = len(e)
    mean = float(e.mean()) if n else 0.0
    ci = t_interval(mean, float(e.std(ddof=1)) if n > 1 else 0.0, n, INTERVAL_LEVEL)
    c = np.abs(np.asarray(control_effects, dtype=np.float64))
    cmax = float(c.max()) if len(c) else None
    crms = float(np.sqrt(np.mean(c**2))) if len(c) else None
    if n and not np.any(e):
        return Judgement("no_effect", f"no held-out prompt's score changed (all {n} effects exactly 0)", 0.0, ci, n,
                         cmax, crms, {"interval_excludes_zero": False, "beats_controls": False,
                                      "meets_min_effect": False}, note=UNCHANGED_NOTE)
    size = abs(mean)
    excludes = ci is not None and (ci[0] > 0 or ci[1] < 0)
    bar = max(cmax or 0.0, CONTROL_SPREAD_FACTOR * (crms or 0.0))
    beats = cmax is not None and size > bar
    big = size >= MIN_CAUSAL_EFFECT
    checks = {"interval_excludes_zero": excludes, "beats_controls": beats, "meets_min_effect": big}
    side = "in the expected direction" if expected_sign * mean > 0 else "against the expected direction"
    parts = [
        (f"interval {_interval(ci)} {'excludes' if excludes else 'includes'} 0" if ci is not None
         else f"no interval ({n} prompt{'s' if n != 1 else ''}: an interval needs 2)"),
        (f"|effect| {size:.3g} {'>' if beats else '<='} the controls' bar {bar:.3g} (max |control| {cmax:.3g}, "
         f"{CONTROL_SPREAD_FACTOR:g}x control RMS {CONTROL_SPREAD_FACTOR * (crms or 0.0):.3g})")
        if cmax is not None else "no controls to compare with",
        f"|effect| {size:.3g} {'>=' if big else '<'} the minimum {MIN_CAUSAL_EFFECT:g} on the 0..1 score scale",
    ]
    if expected_sign * mean > 0:
        verdict = "causal" if excludes and beats and big else ("weak" if excludes or (beats and big) else "no_effect")
    else:
        verdict = "contradicts" if excludes and beats and big else "no_effect"
    failed = [p for p, ok in zip(parts, (excludes, beats, big), strict=True) if not ok]
    if verdict in ("causal", "contradicts"):
        reason = f"effect {_num(mean)} {side}: " + "; ".join(parts)
    else:
        held = [p for p, ok in zip(parts, (excludes, beats, big), strict=True) if ok]
        reason = f"effect {_num(mean)} {side}" + (f": {'; '.join(held)}" if held else "") + (
            f"; but {'; '.join(failed)}" if failed else "")
    return Judgement(verdict, reason, mean, ci, n, cmax, crms, checks)


def confidence_line(j: Judgement, stability: dict[str, Any] | None, *, measured_on: str | None = None,
                    expected: str | None = None, what: str = "held-out effect") -> str:
    """One quotable line: level, effect with its interval and n, against controls, stability, verdict.

    Levels: high (causal at every in-budget strength tried, two or more), medium (causal
    otherwise), low (weak), none (no_effect), contradicted (contradicts).

    Args:
        stability: the ``stability`` block (``share``, ``n_strengths``, ``n_same``), or None.
        measured_on: which held-out prompts (e.g. held_out_negatives).
        expected: what the association says (promotes / suppresses), if known.
        what: what the effect is (``held-out effect``; ``effect`` when the rows do not say their split).
    """
    n_strengths = int(stability.get("n_strengths") or 0) if stability else 0
    n_same = int(stability.get("n_same") or 0) if stability else 0
    level = {"causal": "high" if n_strengths >= 2 and n_same == n_strengths else "medium",
             "weak": "low", "no_effect": "none", "contradicts": "contradicted"}[j.verdict]
    where = f" ({measured_on.replace('_', ' ')})" if measured_on else ""
    prompts = f"{j.n} prompt{'s' if j.n != 1 else ''}"
    if j.note is not None:
        return f"{level}: the edit never changed the score on {prompts}{where} (interval [0, 0]); verdict {j.verdict}"
    head = f"{level}: {what} {_num(j.mean)} {_interval(j.ci95)} on {prompts}{where}"
    if j.control_max_abs is None:
        ctl = "no controls"
    elif j.control_max_abs == 0:
        ctl = "controls moved the score by 0"
    else:
        ctl = f"{abs(j.mean) / j.control_max_abs:.1f}x the largest control ({j.control_max_abs:.3g})"
    stab = (f"same verdict at {n_same}/{n_strengths} strengths" if n_strengths
            else "stability across strengths not measured")
    exp = f", expected to {'promote' if expected == 'promotes' else 'suppress'}" if expected else ""
    size = "meets" if j.checks.get("meets_min_effect") else "below"
    return f"{head}, {ctl}, {size} the {MIN_CAUSAL_EFFECT:g} minimum, {stab}; verdict {j.verdict}{exp}"
