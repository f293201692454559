"""The one importance score that orders a report, and its documented components.

    importance = A * (0.5 + 0.25 * S + 0.25 * T) * (1 + C)

- A, association: |Pearson r| on the training split (records backends), or the
  label/explanation similarity to the criterion clipped to [0, 1] (features backend).
- S, specificity: (share of |activation| mass on the criterion side - base rate) /
  (1 - base rate), clipped to [0, 1], training split.
- T, stability: share of bootstrap resamples of the training split in which the
  feature stays in the top k with the same sign.
- C, causal: the strong causal score (effect beyond side effect and controls), signed
  to agree (+) or disagree (-) with the association, divided by the score range and
  clipped to [-1, 1]; 0 without intervention evidence.

Association alone can at most double through causal evidence, and evidence against
it can drive the score to 0. Held-out statistics never enter: they are the evidence.
"""

from __future__ import annotations

import math

IMPORTANCE_FORMULA = (
    "importance = A * (0.5 + 0.25*S + 0.25*T) * (1 + C); A = |r| on the training split "
    "(or label similarity to the criterion for the features backend), S = specificity lift over the "
    "base rate in [0, 1], T = bootstrap top-k frequency, C = strong causal score aligned with the "
    "association's sign, divided by the score range, clipped to [-1, 1] (0 without interventions). "
    "Without activation records (features backend) S and T are not measured and the middle factor is 1. "
    "Held-out statistics are reported, never used to rank."
)


def specificity_lift(specificity: float | None, base_rate: float) -> float:
    """(specificity - base) / (1 - base), clipped to [0, 1]; 0 when unknown."""
    if specificity is None or not math.isfinite(specificity) or base_rate >= 1.0:
        return 0.0
    return min(1.0, max(0.0, (specificity - base_rate) / (1.0 - base_rate)))


def causal_component(strong_causal_score: float | None, association_sign: float, score_range: float) -> float:
    """Strong causal score aligned with the association's sign, scaled and clipped to [-1, 1]."""
    if strong_causal_score is None:
        return 0.0
    sign = 1.0 if association_sign >= 0 else -1.0
    return max(-1.0, min(1.0, sign * strong_causal_score / (score_range or 1.0)))


def importance(association: float, specificity: float | None, stability: float | None, causal: float) -> float:
    """Combine the components; missing specificity or stability leave the factor at 1."""
    gate = 1.0
    if specificity is not None and stability is not None:
        gate = 0.5 + 0.25 * specificity + 0.25 * stability
    return max(0.0, association * gate * (1.0 + causal))
