"""How sure a held-out number is: 95% intervals, whether they exclude chance, and the prompts a test needs.

Every ranked feature's held-out block carries a 95% interval of Pearson r (Fisher z, with
the held-out prompts as the sample size) and, for binary scores, of AUROC (DeLong on the
logit scale; a Hanley-McNeil score interval at perfect separation; see
:mod:`interp_agent.core.ranking.stats`). Beside it, the association block says how many
held-out prompts a two-sided test of r = 0 (alpha 0.05, power 0.8, Fisher z) would need to
detect the training effect, and the held-out one. When the intervals include chance (r
interval includes 0, AUROC interval includes 0.5) or cannot be computed, the feature's
``notes`` say so with those numbers, and :func:`held_out_warning` sums them up for the
report's warnings. When no reported feature is held-out supported,
:func:`no_support_warning` says what the held-out set could have detected
(:func:`detectable_effect`) and how many prompts the top feature's training r would need.

The one piece of advice on how many prompts to write, :data:`RECOMMENDED_PROMPTS_PER_CLASS`,
comes from the same power estimate (:func:`recommended_prompts_per_class`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from interp_agent.core.ranking.config import HELD_OUT_FRACTION
from interp_agent.core.ranking.stats import (
    fisher_z_interval,
    prompts_needed_for_r,
    prompts_per_class_needed_for_auroc,
    smallest_detectable_auroc,
    smallest_detectable_r,
)

LEVEL = 0.95
"""Confidence level of the held-out intervals (the ``_ci95`` fields)."""
POWER_ALPHA = 0.05
"""Two-sided significance level of the power estimate."""
POWER = 0.8
"""Power of the power estimate."""
MIN_ROWS = 3
"""Fewest held-out rows for which held-out statistics are reported (r is ±1 or undefined below)."""
TARGET_AUROC = 0.7
"""The held-out effect the advice on prompt counts is sized for: AUROC 0.7 (|r| about 0.35 on balanced classes)."""


def recommended_prompts_per_class(
    target_auroc: float = TARGET_AUROC, held_out_fraction: float = HELD_OUT_FRACTION, alpha: float = POWER_ALPHA,
    power: float = POWER,
) -> int:
    """Prompts to write of each class (criterion holds / does not) so the held-out split can detect ``target_auroc``.

    The held-out prompts of each class a two-sided test of AUROC = 0.5 needs to detect
    ``target_auroc`` (:func:`~interp_agent.core.ranking.stats.prompts_per_class_needed_for_auroc`,
    Hanley-McNeil: 32 at AUROC 0.7, alpha 0.05, power 0.8), divided by the share of prompts
    held out and rounded up: 107 of each class at the default 0.3. Those 2 x 107 prompts hold
    out 64 on average, where a test of r = 0 detects |r| >= 0.34 (Fisher z), and AUROC 0.7 on
    balanced binary scores is r = 0.35 (binormal, equal variances): the two power estimates
    agree. The hash split holds out a binomially varying count around that mean, and the
    held-out test of the ranking (q-values over the candidates) asks for more than a single
    test, so this is the least to write, not a guarantee.
    """
    if not 0.0 < held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction must be in (0, 1), got {held_out_fraction!r}")
    return math.ceil(prompts_per_class_needed_for_auroc(target_auroc, alpha, power) / held_out_fraction)


RECOMMENDED_PROMPTS_PER_CLASS = recommended_prompts_per_class()
"""Prompts to write of each class: 107, so a 30% held-out split can detect AUROC 0.7 (alpha 0.05, power 0.8)."""

PROMPT_COUNT_ADVICE = (
    f"about {RECOMMENDED_PROMPTS_PER_CLASS} of each class (where the criterion holds and where it does not), so that "
    f"the {HELD_OUT_FRACTION:.0%} held-out split can detect a held-out AUROC of {TARGET_AUROC} (two-sided alpha "
    f"{POWER_ALPHA}, power {POWER:.0%})"
)
"""The one sentence of advice on how many prompts to write, for messages, prompts and tool descriptions."""

METHOD_TEXT = (
    "held-out 95% intervals: Pearson r by the Fisher z transform, tanh(atanh(r) +- 1.96/sqrt(n - 3)) with n the "
    "number of held-out prompts (for token records, fewer than rows: a conservative effective sample size); AUROC "
    "by DeLong's variance on the logit scale, multiplied by rows per prompt for token records, and at perfect "
    "separation (AUROC 0 or 1, where DeLong's variance is 0) the score interval of the Hanley-McNeil variance with "
    "both class sizes set to their mean (Newcombe 2006). An interval excludes chance when the r interval excludes 0 "
    "and the AUROC interval (binary scores) excludes 0.5; this is not held_out_supported, which is a "
    "Benjamini-Hochberg q-value over the candidates. prompts needed: n = ((z_0.975 + z_0.8) / atanh(|r|))^2 + 3, "
    "the held-out prompts a two-sided test of r = 0 at alpha 0.05 needs for 80% power at the training r (and at "
    "the held-out r). smallest detectable effect (summary.held_out_detectable_effect, and the warning when no "
    "reported feature is held-out supported): |r| = tanh((z_0.975 + z_0.8) / sqrt(n - 3)) over the n held-out "
    "prompts, and for binary scores the AUROC theta with theta - 0.5 = z_0.975 SE(0.5) + z_0.8 SE(theta), SE from "
    "the Hanley-McNeil variance on the held-out class sizes; a single test, before the Benjamini-Hochberg correction "
    "over the candidates, which asks for more"
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
    positive_share: float | None = None
    """Share of held-out rows where the criterion holds (binary scores); None for continuous scores."""

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


def _class_sizes(split: HeldOutSplit) -> tuple[float, float] | None:
    """Held-out prompts where the criterion holds and where it does not (binary scores), else None."""
    if split.positive_share is None:
        return None
    return split.n_prompts * split.positive_share, split.n_prompts * (1.0 - split.positive_share)


def detectable_effect(split: HeldOutSplit) -> dict[str, Any]:
    """The summary's ``held_out_detectable_effect``: the smallest |r| and AUROC the held-out prompts can detect.

    Both from a two-sided test at ``POWER_ALPHA`` with power ``POWER`` (see ``METHOD_TEXT``);
    None where the held-out set is too small for any test, the AUROC also for continuous scores.
    """
    sizes = _class_sizes(split)
    auroc = None if sizes is None else smallest_detectable_auroc(sizes[0], sizes[1], POWER_ALPHA, POWER)
    return {
        "provenance": "correlational",
        "method": f"two-sided alpha {POWER_ALPHA}, power {POWER}; |r| by Fisher z, AUROC by the Hanley-McNeil variance",
        "n_held_out_prompts": split.n_prompts,
        "n_positive_prompts": None if sizes is None else round(sizes[0]),
        "n_negative_prompts": None if sizes is None else round(sizes[1]),
        "smallest_abs_r": smallest_detectable_r(split.n_prompts, POWER_ALPHA, POWER),
        "smallest_auroc": auroc,
    }


def _detectable_sentence(effect: dict[str, Any], split: HeldOutSplit) -> str:
    """``N held-out prompts (P positive, Q negative) detect only |r| >= x and AUROC >= y (or <= 1 - y) …``."""
    n, r_min, auc_min = split.n_prompts, effect["smallest_abs_r"], effect["smallest_auroc"]
    classes = ("" if effect["n_positive_prompts"] is None
               else f" ({effect['n_positive_prompts']} positive, {effect['n_negative_prompts']} negative)")
    if r_min is None:
        verb = "is" if n == 1 else "are"
        return (f"{_plural(n, 'held-out prompt')}{classes} {verb} too few for any test (a Fisher z test needs "
                "at least 4)")
    auc_text = ""
    if auc_min is not None:
        auc_text = f" and AUROC >= {auc_min:.2f} (or <= {1 - auc_min:.2f})"
    elif effect["n_positive_prompts"] is not None:
        auc_text = " and no AUROC (too few held-out prompts of a class for any AUROC test)"
    detect = "detects" if n == 1 else "detect"
    return (f"{_plural(n, 'held-out prompt')}{classes} {detect} only |r| >= {r_min:.2f}{auc_text} at two-sided alpha "
            f"{POWER_ALPHA} with {POWER:.0%} power (Fisher z; Hanley-McNeil), as a single test, before the "
            "correction over candidates, which asks for more")


def _top_need_sentence(top: dict[str, Any], n_features: int, split: HeldOutSplit) -> str:
    """How many held-out prompts (and in all) the top feature's training r would need, or why it did not hold up."""
    power = top["association"]["held_out_power"]
    r_train = top["association"]["train"]["pearson_r"]
    need = power["prompts_needed_at_train_r"]
    who = f"the top feature, {top['feature_id']}, has training r"
    if need is None:
        return f"{who} 0, which no sample size detects"
    if split.n_prompts < need:
        return f"{who} {r_train:+.2f}, which would need about {need} held-out prompts, {_in_all(need, split)}"
    return (f"{who} {r_train:+.2f}, which about {need} held-out prompts would detect, so on these "
            f"{split.n_prompts} the effect did not hold up: a training r picked among the largest of "
            f"{n_features} features likely overstates the effect")


def no_support_warning(
    reported: list[dict[str, Any]], outside: list[dict[str, Any]], n_features: int, split: HeldOutSplit,
    alpha: float,
) -> str | None:
    """The warning when none of the reported features is held-out supported; None when one is.

    Args:
        reported: the reported feature rows, in rank order.
        outside: the other candidates' rows (outside ``top_k``), in rank order.
        n_features: features tested on the training split.
        split: the held-out split.
        alpha: the false discovery rate of the held-out q-values.
    """
    if not reported or any(f["association"]["held_out_supported"] for f in reported):
        return None
    n_candidates = len(reported) + len(outside)
    text = (f"none of the {_plural(len(reported), 'reported feature')} is held-out supported (the sign of the "
            f"training split and Benjamini-Hochberg q < {alpha} over the {n_candidates} candidates on the held-out "
            "split); "
            f"{_detectable_sentence(detectable_effect(split), split)}; "
            f"{_top_need_sentence(reported[0], n_features, split)}")
    supported_outside = [f for f in outside if f["association"]["held_out_supported"]]
    if supported_outside:
        first = supported_outside[0]
        verb = "is" if len(supported_outside) == 1 else "are"
        text += (f"; {_plural(len(supported_outside), 'candidate')} outside the report {verb} held-out supported "
                 f"(the first, {first['feature_id']}, at rank {first['rank']})")
    return text + (f"; for a new prompt set write {PROMPT_COUNT_ADVICE}")
