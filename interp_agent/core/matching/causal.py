"""Causal evidence on one named scale, so measured and imported effects compare.

A report carries a feature's causal evidence in one of two forms:

- measured, ``causal`` (interp-agent's summary of intervention records): ``mean_effect``
  is the signed effect on the criterion (positive: the feature promotes it; the sign
  follows the intervention type, see ``core/ranking/causal``) and ``side_effect`` the
  mean ``side_effect_score``;
- imported, ``imported.causal_effects`` (a feature dump in the seed's form), e.g.
  ``{"criterion": 0.78, "specificity": 0.69, "side_effect": 0.12}``.

Both are read onto named measures (:data:`MEASURE_ALIASES`): ``criterion_effect``
(measured ``mean_effect``; imported ``criterion``, ``criterion_effect`` or
``mean_effect``), ``side_effect``, and any other imported key under its own normalised
name (``specificity``, ``refusal``, …). Measured evidence replaces imported evidence of
the same feature. Two features are compared on the measures *both* have, by the
magnitude-aware agreement

    s(a, b) = 2 a·b / (|a|² + |b|²)

which lies in [-1, 1], is 1 only when a = b and -1 only when a = -b, and, unlike a
cosine (which on one shared measure is only the product of the signs), falls as the
magnitudes part. A pair that shares no measure, or whose shared measures are all zero,
has no causal similarity, and the component is left out of that pair's combination.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from interp_agent.core.matching.fields import bad_field, imported_block, mapping, number

CRITERION_EFFECT = "criterion_effect"
"""The signed effect on the criterion (positive: the feature promotes it)."""
SIDE_EFFECT = "side_effect"
"""The effect on prompts the criterion does not cover."""
MEASURE_ALIASES: dict[str, str] = {
    "criterion": CRITERION_EFFECT,
    "criterion_effect": CRITERION_EFFECT,
    "mean_effect": CRITERION_EFFECT,
    "side_effect": SIDE_EFFECT,
}
"""Normalised imported key → measure name; keys not listed are measures of their own name."""
FORMULA = "2·a·b / (|a|² + |b|²) over the measures both features have"

CausalSource = Literal["interventional", "imported"]


@dataclass(frozen=True, slots=True)
class CausalReading:
    """One feature's causal evidence on the named scale."""

    measures: dict[str, float]
    """Measure name → value; empty when the feature has no causal evidence."""
    fields: dict[str, str]
    """Measure name → the report field it was read from, e.g. ``causal.mean_effect``."""
    source: CausalSource | None
    """``interventional`` (measured ``causal``), ``imported`` (``causal_effects``) or None."""


def measure_name(key: str) -> str:
    """The named measure an imported ``causal_effects`` key stands for (case, spaces and hyphens ignored)."""
    norm = re.sub(r"[\s\-]+", "_", key.strip().lower())
    return MEASURE_ALIASES.get(norm, norm)


def read_causal(feature: dict[str, Any], side: str) -> CausalReading:
    """A feature's causal evidence as named measures; measured ``causal`` wins over imported.

    Raises:
        ValidationError: a value is not a finite number, or two imported keys name the
            same measure (e.g. both ``criterion`` and ``mean_effect``).
    """
    fid = feature["feature_id"]
    causal = mapping(feature.get("causal"), side, fid, "causal")
    if causal is not None and causal.get("mean_effect") is not None:
        measures = {CRITERION_EFFECT: number(causal["mean_effect"], side, fid, "causal.mean_effect")}
        fields = {CRITERION_EFFECT: "causal.mean_effect"}
        if causal.get("side_effect") is not None:
            measures[SIDE_EFFECT] = number(causal["side_effect"], side, fid, "causal.side_effect")
            fields[SIDE_EFFECT] = "causal.side_effect"
        return CausalReading(measures, fields, "interventional")
    effects = mapping(imported_block(feature, side).get("causal_effects"), side, fid, "imported.causal_effects")
    if not effects:
        return CausalReading({}, {}, None)
    measures, fields = {}, {}
    for key, value in effects.items():
        field = f"imported.causal_effects.{key}"
        name = measure_name(str(key))
        if name in fields:
            raise bad_field(side, fid, field, f"names the measure '{name}' that '{fields[name]}' already gives; "
                                              "keep one of the two keys")
        measures[name] = number(value, side, fid, field)
        fields[name] = field
    return CausalReading(measures, fields, "imported")


@dataclass(frozen=True, slots=True, eq=False)
class CausalComponent:
    """The causal evidence of every feature of one report, as named measures."""

    measures: tuple[str, ...]
    """Column names: every measure at least one feature has, sorted."""
    values: np.ndarray
    """[n_features, n_measures] float64; 0 where a feature lacks the measure."""
    has: np.ndarray
    """[n_features, n_measures] bool; True where the feature has the measure."""
    sources: tuple[CausalSource | None, ...]
    """Per feature, where its evidence came from (None: no causal evidence)."""
    fields: tuple[dict[str, str], ...]
    """Per feature, measure name → the report field it was read from."""

    @property
    def present(self) -> np.ndarray:
        """[n_features] bool; True where the feature has any causal measure."""
        return np.asarray(self.has.any(axis=1))

    def criterion_effect(self, i: int) -> tuple[float | None, str | None]:
        """Feature ``i``'s signed effect on the criterion and the field it came from (None, None without one)."""
        if CRITERION_EFFECT not in self.measures:
            return None, None
        k = self.measures.index(CRITERION_EFFECT)
        if not self.has[i, k]:
            return None, None
        return float(self.values[i, k]), self.fields[i][CRITERION_EFFECT]

    def shared_measures(self, other: CausalComponent) -> list[str]:
        """Measures some feature here and some feature of ``other`` both have."""
        return [m for m in self.measures if m in other.measures]

    def _columns(self, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        idx = [self.measures.index(m) for m in names]
        return self.values[:, idx], self.has[:, idx]

    def similarity(self, other: CausalComponent) -> tuple[np.ndarray, np.ndarray]:
        """Agreement (see the module docstring) of every feature here with every feature of ``other``.

        Returns:
            (sim_LR, mask_LR): similarities in [-1, 1] (NaN where not comparable) and the
            boolean mask of comparable pairs.
        """
        shared = self.shared_measures(other)
        shape = (len(self.sources), len(other.sources))
        if not shared:
            return np.full(shape, np.nan), np.zeros(shape, dtype=bool)
        a_LM, ha_LM = self._columns(shared)
        b_RM, hb_RM = other._columns(shared)
        a_LM, b_RM = np.where(ha_LM, a_LM, 0.0), np.where(hb_RM, b_RM, 0.0)
        ha_LM, hb_RM = ha_LM.astype(np.float64), hb_RM.astype(np.float64)
        both_LR = ha_LM @ hb_RM.T
        # Sums of squares over the measures the pair shares only: a measure one side lacks
        # adds nothing to the numerator and must add nothing to the denominator.
        den_LR = (a_LM**2) @ hb_RM.T + ha_LM @ (b_RM**2).T
        mask_LR = (both_LR > 0) & (den_LR > 0)
        sim_LR = np.full(shape, np.nan)
        np.divide(2.0 * (a_LM @ b_RM.T), den_LR, out=sim_LR, where=mask_LR)
        return np.clip(sim_LR, -1.0, 1.0), mask_LR

    def pair_measures(self, i: int, other: CausalComponent, j: int) -> list[str]:
        """The measures feature ``i`` here and feature ``j`` of ``other`` were compared on."""
        return [m for m in self.shared_measures(other)
                if self.has[i, self.measures.index(m)] and other.has[j, other.measures.index(m)]]


def causal_component(features: list[dict[str, Any]], side: str) -> CausalComponent:
    """Read every feature's causal evidence onto the named scale.

    Raises:
        ValidationError: as :func:`read_causal`.
    """
    readings = [read_causal(f, side) for f in features]
    measures = tuple(sorted({m for r in readings for m in r.measures}))
    values = np.zeros((len(readings), len(measures)))
    has = np.zeros((len(readings), len(measures)), dtype=bool)
    for i, reading in enumerate(readings):
        for k, m in enumerate(measures):
            if m in reading.measures:
                values[i, k], has[i, k] = reading.measures[m], True
    return CausalComponent(measures, values, has, tuple(r.source for r in readings),
                           tuple(r.fields for r in readings))


def _forms(component: CausalComponent) -> set[str]:
    return {s for s in component.sources if s is not None}


def causal_notes(left: CausalComponent, right: CausalComponent, mask_LR: np.ndarray) -> list[str]:
    """What the notes of a match say about the causal component: compared on what, or why left out."""
    have = {"left": bool(left.present.any()), "right": bool(right.present.any())}
    what = "a measured 'causal' block or imported 'causal_effects'"
    if not any(have.values()):
        return [f"causal: dropped, neither report has causal evidence ({what})"]
    lacking = [side for side, ok in have.items() if not ok]
    if lacking:
        return [(f"causal: dropped, the {lacking[0]} report has no causal evidence ({what}); run interp-agent "
                 "intervene on its model (or import causal_effects) to compare causal effects")]
    shared = left.shared_measures(right)
    if not shared:
        return [(f"causal: dropped, the reports share no causal measure (left: {', '.join(left.measures)}; "
                 f"right: {', '.join(right.measures)}); name the same measures on both sides (imported "
                 f"'criterion' and measured 'mean_effect' are both read as '{CRITERION_EFFECT}')")]
    if not mask_LR.any():
        return [(f"causal: dropped, no pair of features has a nonzero value of a shared causal measure "
                 f"({', '.join(shared)})")]
    notes = [f"causal: compared on the named measures {', '.join(shared)} by {FORMULA}"]
    if _forms(left) != _forms(right) or len(_forms(left)) > 1:
        notes.append(f"causal: measured causal.mean_effect and imported causal_effects.criterion are both read as "
                     f"'{CRITERION_EFFECT}' (signed effect on the criterion, positive = promotes); "
                     f"side_effect as '{SIDE_EFFECT}'")
    one_sided = [f"{m} (left only)" for m in left.measures if m not in shared]
    one_sided += [f"{m} (right only)" for m in right.measures if m not in shared]
    if one_sided:
        notes.append("causal: not compared, measured on one side only: " + ", ".join(one_sided))
    return notes
