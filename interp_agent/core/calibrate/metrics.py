"""What a report got right about its planted world: precision/recall@k, decoy shares, effects, verdicts, held-out use.

Every function reads the report as ``inspect`` writes it (report.json v1) and the
world's truth; nothing here ranks. Like the ranking, this needs numpy only (no scipy):
Spearman's rho and the Wilson interval are a few lines each, checked against scipy in
``tests/core/test_calibrate.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from interp_agent.core.calibrate.worlds import DECOY_FAMILIES, PlantedWorld
from interp_agent.core.ranking.distributions import normal_ppf
from interp_agent.core.ranking.verdict import MIN_CAUSAL_EFFECT

CLAIMS_EFFECT = ("causal", "contradicts")
"""Verdicts that claim an effect beyond the controls (either direction): a false claim on a zero-effect decoy."""


@dataclass(frozen=True, slots=True)
class TopK:
    """The top ``k`` of one ranking against the truth."""

    k: int
    """The cut-off."""
    precision: float
    """Share of the top k that are true features."""
    recall: float
    """Share of the true features in the top k."""
    decoy_rates: dict[str, float]
    """Share of the top k taken by each decoy family."""

    def to_json(self) -> dict[str, Any]:
        """The block of this cut-off."""
        return {"k": self.k, "precision": self.precision, "recall": self.recall,
                "decoy_rate": self.decoy_rates | {"provenance": "synthetic"}, "provenance": "synthetic"}


def top_k(ranking: Sequence[str], world: PlantedWorld, k: int) -> TopK:
    """Precision, recall and decoy shares of the first ``k`` ids of ``ranking`` (fewer if the report is shorter)."""
    family = world.family_of
    top = [family.get(fid, "unknown") for fid in ranking[:k]]
    hits = top.count("true")
    return TopK(k=k, precision=hits / k, recall=hits / len(world.true_ids),
                decoy_rates={fam: top.count(fam) / k for fam in DECOY_FAMILIES})


@dataclass(frozen=True, slots=True)
class EffectRow:
    """One intervened feature: what was planted, what the report estimated and concluded."""

    feature_id: str
    """The feature."""
    family: str
    """Its family (true, or confounded for a zero-effect decoy)."""
    planted: float
    """Planted signed effect (positive: promotes the criterion)."""
    estimated: float | None
    """The report's mean signed effect (causal.mean_effect); None when the report lacks it."""
    verdict: str | None
    """The report's verdict (causal, weak, no_effect, contradicts)."""
    rank: int | None
    """Its rank in the report (None when neither listed nor counted)."""

    def to_json(self) -> dict[str, Any]:
        """The row as JSON."""
        return {"feature_id": self.feature_id, "family": self.family, "planted_effect": self.planted,
                "estimated_effect": self.estimated, "verdict": self.verdict, "rank": self.rank,
                "provenance": "synthetic"}


def effect_rows(report: dict[str, Any], world: PlantedWorld) -> list[EffectRow]:
    """Each intervened feature's planted and estimated effect, from the ranked features and from
    ``summary.intervened_outside_top`` (features with intervention evidence below top_k)."""
    seen: dict[str, tuple[float | None, str | None, int | None]] = {}
    for f in report["features"]:
        causal = f.get("causal") or {}
        seen[f["feature_id"]] = (causal.get("mean_effect"), causal.get("verdict"), f["rank"])
    for f in report["summary"].get("intervened_outside_top", []):
        seen.setdefault(f["feature_id"], (f["mean_effect"], f["verdict"], f["rank"]))
    family = world.family_of
    return [EffectRow(fid, family[fid], planted, *seen.get(fid, (None, None, None)))
            for fid, planted in world.effects.items()]


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank (``scipy.stats.rankdata``'s default)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    for start, n in zip(first, counts, strict=True):
        if n > 1:
            ranks[order[start:start + n]] = start + (n + 1) / 2
    return ranks


def wilson_interval(hits: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``hits / n`` (n >= 1)."""
    z = normal_ppf(0.5 + level / 2)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def spearman(planted: Sequence[float], estimated: Sequence[float | None]) -> float | None:
    """Spearman's rho over the pairs with an estimate; None with fewer than 3 or a constant side."""
    pairs = [(p, e) for p, e in zip(planted, estimated, strict=True) if e is not None]
    if len(pairs) < 3:
        return None
    x, y = np.array(pairs, dtype=np.float64).T
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(np.corrcoef(average_ranks(x), average_ranks(y))[0, 1])  # Pearson r of average ranks


def effect_block(rows: Sequence[EffectRow]) -> dict[str, Any]:
    """Rank correlations of planted and estimated effects, and the verdicts' hit and false-claim rates.

    ``spearman``: sizes (|effect|) of the true features, whose planted sizes all differ, so
    only the estimated sizes' order can make it high; ``spearman_all``: signed effects of
    every intervened feature, zero-effect decoys included (their ties at 0 and the
    suppressor's sign make it easier).
    """
    true = [r for r in rows if r.family == "true"]
    null = [r for r in rows if r.family != "true"]
    return {
        "spearman": spearman([abs(r.planted) for r in true],
                             [None if r.estimated is None else abs(r.estimated) for r in true]),
        "spearman_all": spearman([r.planted for r in rows], [r.estimated for r in rows]),
        "n_intervened": len(rows),
        "n_estimated": sum(r.estimated is not None for r in rows),
        "causal_recovery": sum(r.verdict == "causal" for r in true) / len(true) if true else None,
        "false_causal": sum(r.verdict in CLAIMS_EFFECT for r in null) / len(null) if null else None,
        "mean_abs_error": float(np.mean([abs(r.estimated - r.planted) for r in rows if r.estimated is not None]))
        if any(r.estimated is not None for r in rows) else None,
        "provenance": "synthetic",
    }


def controls_block(report: dict[str, Any]) -> dict[str, Any]:
    """The report's control summary, and whether it stays quiet by the verdict rule's own terms.

    Controls look causal when their pooled mean effect passes the rule's interval and size
    checks together: its 95% interval excludes 0 and |mean| >= ``MIN_CAUSAL_EFFECT``.
    Planted controls have no effect, so this fails by chance on about 1% of hard worlds
    (noise 0.15 over 64 rows), and whenever the report mis-summarises them.
    """
    controls = report.get("controls")
    if not controls:
        return {"present": False, "n": 0, "mean_effect": None, "ci95": None, "quiet": False,
                "provenance": "synthetic"}
    mean, ci = controls["mean_effect"], controls.get("ci95")
    excludes_zero = ci is not None and (ci[0] > 0 or ci[1] < 0)
    return {"present": True, "n": controls["n"], "mean_effect": mean, "ci95": ci,
            "quiet": not (excludes_zero and abs(mean) >= MIN_CAUSAL_EFFECT), "provenance": "synthetic"}


def held_out_block(report: dict[str, Any], world: PlantedWorld, k: int, unchanged: bool | None) -> dict[str, Any]:
    """Whether the ranking held prompts out and reported held-out evidence, and how the top ``k`` fared on it.

    ``supported_precision``: of the top ``k`` features whose held-out association is
    significant (``held_out_supported``), the share that are true: what a reader who
    trusts only held-out-supported features gets.

    ``unchanged``: whether the ranking stayed the same with the held-out scores flipped (None: not checked).
    """
    summary, family = report["summary"], world.family_of
    top = report["features"][:k]
    supported = {fam: sum(1 for f in top if family.get(f["feature_id"]) == fam
                          and f["association"]["held_out_supported"]) for fam in ("true", *DECOY_FAMILIES)}
    n_held = summary["n_held_out_prompts"]
    reported = all(f["association"]["held_out"] is not None for f in top)
    n_supported = sum(supported.values())
    return {
        "n_train_prompts": summary["n_train_prompts"], "n_held_out_prompts": n_held,
        "split_matches_world": n_held == len(world.held_out_prompts),
        "held_out_reported": reported,
        "true_supported": supported["true"] / len(world.true_ids),
        "supported_in_top_k": supported | {"provenance": "synthetic"},
        "supported_precision": supported["true"] / n_supported if n_supported else None,
        "ranking_unchanged_by_held_out_scores": unchanged,
        "used": bool(n_held > 0 and reported and unchanged is not False),
        "provenance": "synthetic",
    }


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean, sample standard deviation, min and max over seeds (values that are None are counted apart)."""
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not xs:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0, "n_missing": len(values),
                "provenance": "synthetic"}
    return {"mean": float(np.mean(xs)), "sd": float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0,
            "min": min(xs), "max": max(xs), "n": len(xs), "n_missing": len(values) - len(xs),
            "provenance": "synthetic"}


def verdict_table(rows: Sequence[EffectRow]) -> dict[str, Any]:
    """Per verdict, over every intervened feature of a level: how many, how many truly causal, and P(true | verdict)
    with a Wilson 95% interval."""
    table: dict[str, Any] = {}
    for verdict in sorted({r.verdict or "none" for r in rows}):
        group = [r for r in rows if (r.verdict or "none") == verdict]
        hits = sum(r.family == "true" for r in group)
        table[verdict] = {"n": len(group), "n_true": hits, "p_true": hits / len(group),
                          "ci95": list(wilson_interval(hits, len(group))), "provenance": "synthetic"}
    return table
