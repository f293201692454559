"""Causal evidence from intervention records.

Each row's effect is signed by its intervention type (a drop after ablate means the
feature promotes the criterion; a rise after steer means the same). Control rows
(``metadata.control_type``) are summarised apart and subtracted: the strong causal
score shrinks an effect toward zero by the mean side effect and the size of the mean
control effect, so only what exceeds both counts.

Each feature also gets a verdict with its reason and a quotable confidence line. Rows
written by ``intervene`` carry them in ``metadata`` (``verdict``, ``verdict_reason``,
``stability``, ``confidence``): they are carried over as the run stated them. Rows
without them (the seed format, other tools), or whose run disagrees with itself or with
this report's association, are judged here by the same rule
(``interventions.verdict``: interval excludes 0, effect beyond every control and 3x the
controls' RMS, |effect| >= 0.05 on the 0..1 score scale); stability across strengths is
then unknown.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from interp_agent.core.formats.interventions import InterventionRecord, normalise_criterion
from interp_agent.core.ranking.stats import t_interval
from interp_agent.core.ranking.verdict import confidence_line, judge

CARRIED_KEYS = ("verdict", "verdict_reason", "confidence", "stability", "note", "expected_direction")
"""What an intervene run writes into its rows' metadata about the feature's verdict (optional v1 fields)."""


@dataclass(frozen=True, slots=True)
class EffectSummary:
    """Mean signed effect of a set of intervention rows."""

    n: int
    """Number of rows."""
    mean_effect: float
    """Mean signed effect (positive: the feature promotes the criterion)."""
    ci95: tuple[float, float] | None
    """Student-t 95% interval of the mean; None with fewer than two rows."""
    side_effect: float | None
    """Mean side_effect_score of the rows that report one."""

    @classmethod
    def of(cls, rows: Sequence[InterventionRecord]) -> EffectSummary:
        """Summarise rows."""
        effects = np.array([r.signed_effect for r in rows], dtype=np.float64)
        sides = [r.side_effect_score for r in rows if r.side_effect_score is not None]
        mean = float(effects.mean())
        sd = float(effects.std(ddof=1)) if len(effects) > 1 else 0.0
        return cls(
            n=len(rows),
            mean_effect=mean,
            ci95=t_interval(mean, sd, len(rows)),
            side_effect=float(np.mean(sides)) if sides else None,
        )


@dataclass(frozen=True, slots=True)
class FeatureCausal:
    """Causal evidence about one feature."""

    effect: EffectSummary
    """Summary of the feature's own rows."""
    control_effect: float | None
    """Mean signed effect of the matching controls (its own, else all controls); None without controls."""
    n_controls: int
    """Number of control rows behind control_effect."""
    interventions: dict[str, int]
    """Row count per intervention type."""
    row_effects: tuple[float, ...] = ()
    """Signed effect of each of the feature's rows (for the verdict)."""
    control_means: tuple[float, ...] = ()
    """Mean signed effect of each control (by control feature id) behind control_effect."""
    carried: dict[str, Any] | None = None
    """The verdict fields every row of the feature carries alike (CARRIED_KEYS), or None."""
    carried_conflict: str | None = None
    """Why the rows' verdict fields are not carried (rows disagree, some lack them), or None."""
    held_out: bool = False
    """Whether every row says it was measured on held-out prompts (``metadata.split``)."""

    @property
    def strong_causal_score(self) -> float:
        """Effect shrunk toward 0 by side effect and |control effect|; 0 when they explain it all."""
        e = self.effect.mean_effect
        penalty = (self.effect.side_effect or 0.0) + abs(self.control_effect or 0.0)
        return float(np.sign(e) * max(0.0, abs(e) - penalty))

    def to_json(self, association_sign: float | None) -> dict[str, Any]:
        """The report's ``causal`` block."""
        agrees = None
        if association_sign is not None and self.effect.mean_effect != 0:
            agrees = bool(np.sign(self.effect.mean_effect) == np.sign(association_sign))
        return {
            "provenance": "interventional",
            "n": self.effect.n,
            "mean_effect": self.effect.mean_effect,
            "ci95": list(self.effect.ci95) if self.effect.ci95 else None,
            "side_effect": self.effect.side_effect,
            "control_effect": self.control_effect,
            "n_controls": self.n_controls,
            "strong_causal_score": self.strong_causal_score,
            "interventions": self.interventions,
            "agrees_with_association": agrees,
        } | self.verdict_json(association_sign)

    def verdict_json(self, association_sign: float | None) -> dict[str, Any]:
        """Verdict, reason, where it comes from, note, stability and confidence line of the ``causal`` block."""
        expected = int(np.sign(association_sign)) if association_sign else 0
        carried = self.carried
        why = self.carried_conflict
        if carried is not None and carried.get("verdict") is not None:
            run_expects = {"promotes": 1, "suppresses": -1}.get(str(carried.get("expected_direction")), 0)
            if not (expected and run_expects and run_expects != expected):
                return {"verdict": carried["verdict"], "verdict_reason": carried.get("verdict_reason"),
                        "verdict_source": "intervene run (the records' metadata)", "note": carried.get("note"),
                        "stability": carried.get("stability"), "confidence": carried.get("confidence")}
            why = (f"the run expected the feature to {carried.get('expected_direction')}, this report's "
                   "association says the opposite")
        if not self.row_effects:
            return {"verdict": None, "verdict_reason": None, "verdict_source": None, "note": None,
                    "stability": None, "confidence": None}
        direction = expected or int(np.sign(self.effect.mean_effect)) or 1
        j = judge(self.row_effects, self.control_means, direction)
        source = "recomputed from the records" + (f" ({why})" if why else "")
        if not expected:
            source += "; no association sign: judged in the effect's own direction"
        exp = None if not expected else ("promotes" if expected > 0 else "suppresses")
        what = "held-out effect" if self.held_out else "effect (split not stated)"
        return {"verdict": j.verdict, "verdict_reason": j.reason, "verdict_source": source, "note": j.note,
                "stability": None, "confidence": confidence_line(j, None, expected=exp, what=what)}


@dataclass(slots=True)
class CausalEvidence:
    """All causal evidence of an intervention file, against one criterion."""

    features: dict[str, FeatureCausal] = field(default_factory=dict)
    """Per feature id."""
    controls: dict[str, Any] | None = None
    """Summary of all control rows, or None."""
    warnings: list[str] = field(default_factory=list)
    """What was excluded and why."""
    n_rows: int = 0
    """Rows used (features and controls)."""
    n_control_rows: int = 0
    """Control rows used."""
    synthetic: bool = False
    """Whether any row says it is synthetic (``metadata.synthetic``)."""


def _matching_criterion(
    rows: Sequence[InterventionRecord], criterion: str, allow_mismatch: bool
) -> tuple[Sequence[InterventionRecord], str | None]:
    """The rows to use against ``criterion``, and a warning about rows naming another criterion (None if none do).

    Criteria are compared after :func:`normalise_criterion`; a row without one matches any. Rows
    naming another criterion are kept when ``allow_mismatch`` is set, else dropped.
    """
    wanted = normalise_criterion(criterion)
    mismatched = [r for r in rows if r.criterion is not None and normalise_criterion(r.criterion) != wanted]
    if not mismatched:
        return rows, None
    example = mismatched[0].criterion
    if allow_mismatch:
        return rows, (
            f"{len(mismatched)} intervention rows name another criterion (e.g. {example!r}); "
            "used anyway because criterion mismatch is allowed"
        )
    dropped = {id(r) for r in mismatched}
    return [r for r in rows if id(r) not in dropped], (
        f"{len(mismatched)} intervention rows name another criterion (e.g. {example!r}) and were excluded; "
        "pass --allow-intervention-criterion-mismatch to use them"
    )


def _model_warning(rows: Sequence[InterventionRecord], model: str | None) -> str | None:
    """A warning naming the models other than ``model`` that rows come from; None when there are none or no model."""
    if model is None:
        return None
    other = {r.model for r in rows if r.model is not None and r.model != model}
    return f"intervention rows come from other models {sorted(other)} than {model!r}" if other else None


def _controls_block(controls: Sequence[InterventionRecord], pooled: EffectSummary) -> dict[str, Any]:
    """The summary of all control rows: their pooled effect and the mean effect per control type."""
    by_type: dict[str, list[InterventionRecord]] = defaultdict(list)
    for r in controls:
        by_type[r.control_type or "control"].append(r)
    return {
        "provenance": "interventional",
        "n": pooled.n,
        "mean_effect": pooled.mean_effect,
        "ci95": list(pooled.ci95) if pooled.ci95 else None,
        "by_type": {
            k: {"n": len(v), "mean_effect": EffectSummary.of(v).mean_effect} for k, v in sorted(by_type.items())
        },
    }


def _feature_evidence(
    real: Sequence[InterventionRecord], controls: Sequence[InterventionRecord], pooled: EffectSummary | None
) -> dict[str, FeatureCausal]:
    """Per feature, in order of first row: its rows' effect against its own controls, else the pooled controls.

    A control row is a feature's own when its ``metadata.control_for`` names the feature.
    """
    own_controls: dict[str, list[InterventionRecord]] = defaultdict(list)
    for r in controls:
        target = r.metadata.get("control_for")
        if target is not None:
            own_controls[str(target)].append(r)
    per_feature: dict[str, list[InterventionRecord]] = defaultdict(list)
    for r in real:
        per_feature[r.feature_id].append(r)
    features: dict[str, FeatureCausal] = {}
    for fid, frows in per_feature.items():
        ctl = own_controls.get(fid)
        ctl_summary = EffectSummary.of(ctl) if ctl else pooled
        carried, conflict = _carried(frows)
        features[fid] = FeatureCausal(
            effect=EffectSummary.of(frows),
            control_effect=ctl_summary.mean_effect if ctl_summary else None,
            n_controls=ctl_summary.n if ctl_summary else 0,
            interventions=dict(Counter(r.intervention for r in frows)),
            row_effects=tuple(r.signed_effect for r in frows),
            control_means=_per_control_means(ctl or controls),
            carried=carried,
            carried_conflict=conflict,
            held_out=all(r.metadata.get("split") == "held_out" for r in frows),
        )
    return features


def _per_control_means(controls: Sequence[InterventionRecord]) -> tuple[float, ...]:
    """The mean signed effect of each control (rows grouped by the control's feature id)."""
    by_id: dict[str, list[float]] = defaultdict(list)
    for r in controls:
        by_id[r.feature_id].append(r.signed_effect)
    return tuple(float(np.mean(v)) for v in by_id.values())


def _carried(rows: Sequence[InterventionRecord]) -> tuple[dict[str, Any] | None, str | None]:
    """The verdict fields all rows carry alike, else None with why (None: no row carries any)."""
    seen = {json.dumps({k: r.metadata.get(k) for k in CARRIED_KEYS}, sort_keys=True, default=str) for r in rows}
    if len(seen) == 1:
        only = json.loads(next(iter(seen)))
        return (only, None) if only.get("verdict") is not None else (None, None)
    verdicts = {r.metadata.get("verdict") for r in rows}
    return None, (f"its rows carry {len(seen)} different verdict records ({', '.join(sorted(map(str, verdicts)))}), "
                  "e.g. from several runs")


def summarise_interventions(
    rows: Sequence[InterventionRecord], criterion: str, *, allow_criterion_mismatch: bool = False,
    model: str | None = None
) -> CausalEvidence:
    """Aggregate intervention rows per feature, with controls summarised apart."""
    evidence = CausalEvidence()
    rows, mismatch_warning = _matching_criterion(rows, criterion, allow_criterion_mismatch)
    model_warning = _model_warning(rows, model)
    evidence.warnings.extend(w for w in (mismatch_warning, model_warning) if w is not None)

    controls = [r for r in rows if r.control_type is not None]
    real = [r for r in rows if r.control_type is None]
    evidence.n_rows = len(rows)
    evidence.synthetic = any(r.metadata.get("synthetic") is True for r in rows)
    evidence.n_control_rows = len(controls)
    pooled = EffectSummary.of(controls) if controls else None
    if pooled is not None:
        evidence.controls = _controls_block(controls, pooled)
    evidence.features = _feature_evidence(real, controls, pooled)
    if real and not controls:
        evidence.warnings.append(
            "intervention evidence has no control rows (metadata.control_type); "
            "effects are not compared with random or matched controls"
        )
    return evidence
