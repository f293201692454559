"""How sure a held-out number is: 95% intervals, whether they exclude chance, and the prompts a test needs.

Every ranked feature's held-out block carries a 95% interval of Pearson r (Fisher z, with
the held-out prompts as the sample size) and, for binary scores, of AUROC (DeLong on the
logit scale; a Hanley-McNeil score interval at perfect separation; see
:mod:`interp_agent.core.ranking.stats`). Beside it, the association block says how many
held-out prompts a two-sided test of r = 0 (alpha 0.05, power 0.8, Fisher z) would need to
detect the training effect, and the held-out one. When the intervals include chance (r
interval includes 0, AUROC interval includes 0.5) or cannot be computed, the feature's
``notes`` say so with those numbers, and :func:`held_out_warning` sums them up for the
report's warnings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from interp_agent.core.ranking.stats import fisher_z_interval, prompts_needed_for_r

LEVEL = 0.95
"""Confidence level of the held-out intervals (the ``_ci95`` fields)."""
POWER_ALPHA = 0.05
"""Two-sided significance level of the power estimate."""
POWER = 0.8
"""Power of the power estimate."""
MIN_ROWS = 3
"""Fewest held-out rows for which held-out statistics are reported (r is ±1 or undefined below)."""

METHOD_TEXT = (
    "held-out 95% intervals: Pearson r by the Fisher z transform, tanh(atanh(r) +- 1.96/sqrt(n - 3)) with n the "
    "number of held-out prompts (for token records, fewer than rows: a conservative effective sample size); AUROC "
    "by DeLong's variance on the logit scale, multiplied by rows per prompt for token records, and at perfect "
    "separation (AUROC 0 or 1, where DeLong's variance is 0) the score interval of the Hanley-McNeil variance with "
    "both class sizes set to their mean (Newcombe 2006). An interval excludes chance when the r interval excludes 0 "
    "and the AUROC interval (binary scores) excludes 0.5; this is not held_out_supported, which is a "
    "Benjamini-Hochberg q-value over the candidates. prompts needed: n = ((z_0.975 + z_0.8) / atanh(|r|))^2 + 3, "
    "the held-out prompts a two-sided test of r = 0 at alpha 0.05 needs for 80% power at the training r (and at "
    "the held-out r)"
)


@dataclass(frozen=True, slots=True)
class HeldOutSplit:
    """The size of the held-out split of one ranking run."""

    n_rows: int
    """Held-out rows (one per prompt, or one per token for token records)."""
    n_prompts: int
    """Distinct prompts with a held-out row."""
    held_out_fraction: float
    """Share of prompts the split holds out (to turn held-out prompts into prompts in all)."""

    @property
    def design_effect(self) -> float:
        """Rows per held-out prompt (1 for one row per prompt); inflates the AUROC variance of token records."""
        return self.n_rows / self.n_prompts if self.n_prompts else 1.0

    @property
    def has_statistics(self) -> bool:
        """Whether held-out statistics are reported at all (at least ``MIN_ROWS`` rows)."""
        return self.n_rows >= MIN_ROWS


def interval_fields(r: float, auroc_ci: tuple[float, float] | None, split: HeldOutSplit) -> dict[str, Any]:
    """Fields added to a feature's held-out block: prompts, r and AUROC intervals, whether they exclude chance."""
    r_ci = fisher_z_interval(r, split.n_prompts, LEVEL)
    return {
        "n_prompts": split.n_prompts,
        "pearson_r_ci95": None if r_ci is None else [float(r_ci[0]), float(r_ci[1])],
        "auroc_ci95": None if auroc_ci is None else [float(auroc_ci[0]), float(auroc_ci[1])],
        "ci_excludes_chance": excludes_chance(r_ci, auroc_ci),
    }


def excludes_chance(r_ci: tuple[float, float] | None, auroc_ci: tuple[float, float] | None) -> bool | None:
    """True when the r interval excludes 0 and the AUROC interval (if any) excludes 0.5; None without an r interval."""
    if r_ci is None:
        return None
    r_ok = r_ci[0] > 0.0 or r_ci[1] < 0.0
    auc_ok = auroc_ci is None or auroc_ci[0] > 0.5 or auroc_ci[1] < 0.5
    return bool(r_ok and auc_ok)


def power_block(r_train: float, r_held_out: float | None, split: HeldOutSplit) -> dict[str, Any]:
    """The association's ``held_out_power`` block: held-out prompts a test of r = 0 needs, at each split's r."""
    return {
        "provenance": "correlational",
        "method": f"Fisher z, two-sided alpha {POWER_ALPHA}, power {POWER}",
        "n_held_out_prompts": split.n_prompts,
        "prompts_needed_at_train_r": prompts_needed_for_r(r_train, POWER_ALPHA, POWER),
        "prompts_needed_at_held_out_r": (
            None if r_held_out is None else prompts_needed_for_r(r_held_out, POWER_ALPHA, POWER)
        ),
    }


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _in_all(needed: int, split: HeldOutSplit) -> str:
    """``about N prompts in all at held_out_fraction F``."""
    fraction = split.held_out_fraction
    return f"about {math.ceil(needed / fraction)} prompts in all at held_out_fraction {fraction:g}"


def _fmt_ci(ci: list[float] | None, signed: bool) -> str:
    if ci is None:
        return "no interval"
    f = "{:+.2f}" if signed else "{:.2f}"
    return f"95% CI [{f.format(ci[0])}, {f.format(ci[1])}]"


def _power_sentence(r_train: float, held: dict[str, Any] | None, power: dict[str, Any], split: HeldOutSplit) -> str:
    """What sample size would settle the question, given the training (and held-out) effect."""
    need = power["prompts_needed_at_train_r"]
    if need is None:
        return "the training r is 0, so no sample size would detect it"
    basis = f"two-sided alpha {POWER_ALPHA}, power {POWER:.0%}, Fisher z"
    if split.n_prompts < need:
        return (f"detecting the training effect (r {r_train:+.2f}) would need about {need} held-out prompts "
                f"({basis}), {_in_all(need, split)}")
    text = (f"{split.n_prompts} held-out prompts are enough to detect the training effect (r {r_train:+.2f} needs "
            f"about {need}, {basis}), so the effect is likely weaker than on training, where the ranking chose "
            "this feature")
    r_ho = None if held is None else held["pearson_r"]
    if r_ho is None or r_ho * r_train <= 0:
        return text + "; the held-out r does not even have the training sign"
    need_ho = power["prompts_needed_at_held_out_r"]
    return text + (f"; detecting the held-out r ({r_ho:+.2f}) would need about {need_ho} held-out prompts, "
                   f"{_in_all(need_ho, split)}")


def _which_include_chance(held: dict[str, Any]) -> str:
    """``the r interval includes 0``, ``the AUROC interval includes 0.5``, or both."""
    r_ci, auc_ci = held["pearson_r_ci95"], held["auroc_ci95"]
    parts = []
    if r_ci is not None and r_ci[0] <= 0.0 <= r_ci[1]:
        parts.append("the r interval includes 0")
    if auc_ci is not None and auc_ci[0] <= 0.5 <= auc_ci[1]:
        parts.append("the AUROC interval includes 0.5")
    return " and ".join(parts)


def feature_note(r_train: float, held: dict[str, Any] | None, power: dict[str, Any], split: HeldOutSplit) -> str | None:
    """The note a feature gets when its held-out evidence cannot exclude chance; None when it can."""
    if held is None:
        return (f"no held-out statistics: the held-out split has {_plural(split.n_rows, 'row')} "
                f"({_plural(split.n_prompts, 'prompt')}) and they need at least {MIN_ROWS} rows; "
                + _power_sentence(r_train, held, power, split))
    if held["ci_excludes_chance"]:
        return None
    auc = held.get("auroc")
    auc_text = "" if auc is None else f", AUROC {auc:.2f} ({_fmt_ci(held['auroc_ci95'], signed=False)})"
    if held["pearson_r_ci95"] is None:
        head = (f"no held-out interval: too few held-out prompts ({split.n_prompts}) for a Fisher z interval of r, "
                "which needs at least 4")
    else:
        head = (f"held-out evidence does not exclude chance on {_plural(split.n_prompts, 'held-out prompt')}: "
                f"r {held['pearson_r']:+.2f} ({_fmt_ci(held['pearson_r_ci95'], signed=True)}){auc_text}; "
                f"{_which_include_chance(held)}")
    return f"{head}; {_power_sentence(r_train, held, power, split)}"


def held_out_warning(weak: list[tuple[dict[str, Any], str]], n_reported: int, split: HeldOutSplit) -> str | None:
    """One report warning for the reported features whose held-out evidence cannot exclude chance.

    Args:
        weak: (feature row, its :func:`feature_note`) of each such feature, in rank order.
        n_reported: the number of reported features.
        split: the held-out split.
    """
    if not weak:
        return None
    feature, note = weak[0]
    who = "the top feature" if feature["rank"] == 1 else f"the first at rank {feature['rank']}"
    if not split.has_statistics:
        return f"no reported feature has held-out statistics; {who}, {feature['feature_id']}: {note}"
    return (f"held-out evidence does not exclude chance for {len(weak)} of the {n_reported} reported features "
            f"(the 95% interval of r includes 0 or that of AUROC includes 0.5, or there are too few prompts for one); "
            f"{who}, {feature['feature_id']}: {note}")
