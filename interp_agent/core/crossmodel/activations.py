"""Match features on measured activations over a shared probe set, with a null from shuffled probes.

Both sides (two models, two layers, two SAEs of one layer, an SAE latent against a
direction, …; see ``sides``) are run on the same probe prompts, giving activation
matrices over the same rows. Then:

1. **Split.** The probe prompts are split in two by a seeded permutation: the *assignment*
   half picks the pairs, the *held-out* half measures them. Nothing reported as evidence is
   chosen on the rows it is reported on.
2. **Correlation.** Pearson correlation of every left feature with every right feature over
   the assignment rows, streamed over row chunks (``[F, G]`` float64 accumulator; the
   feature matrices themselves are not copied). Features that are constant on either half
   (dead on the probes) are dropped, with a note.
3. **Assignment.** Mutual nearest neighbours (each is the other's highest correlation) and a
   one-to-one Hungarian assignment (``scipy.optimize.linear_sum_assignment``, maximising the
   total correlation). Assigned pairs below ``min_correlation`` are dropped.
4. **Null.** On the held-out rows, the right side's prompts are re-paired with other prompts
   (a random cyclic derangement of whole prompts, so within-prompt structure is kept; token
   rows are aligned by position up to the shorter prompt of each pair; prompt rows pair one
   to one). Each left feature's *best-match* correlation over all right features under this
   pairing is one draw; ``null_permutations`` derangements give the null distribution. A pair
   is ``above_null`` when its **held-out** correlation exceeds the null's ``null_quantile``
   (0.99). The best-match null is conservative for a pair fixed in advance on other rows:
   the pair faces the largest of all chance correlations, not one.

The result has the keys of ``match_reports``' ``interp-agent.matches.v1`` dict (plus
``method: "activations"`` and a ``null`` block), so :func:`write_matches` writes it and
``match`` consumers read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from interp_agent.core.artifacts import run_provenance, schema_version
from interp_agent.core.crossmodel.harvest import Probes, harvest_sides, load_probes
from interp_agent.core.crossmodel.sides import FeatureActivations, RowPooling, Side
from interp_agent.core.errors import ValidationError
from interp_agent.core.matching.fingerprints import COMPONENTS
from interp_agent.core.progress import Progress

MATCHES_SCHEMA = schema_version("matches")
NULL_QUANTILE = 0.99
NULL_SCHEME = ("right side's held-out prompts re-paired by a random cyclic derangement of whole prompts; token "
               "rows aligned by position up to the shorter prompt; statistic: each left feature's best "
               "correlation over all right features")
CHUNK_ROWS = 8192
"""Rows standardised at a time when accumulating a correlation matrix."""


def _moments(X_RF: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (float64), accumulated over row chunks."""
    n = len(X_RF)
    total = np.zeros(X_RF.shape[1])
    for s in range(0, n, chunk):
        total += X_RF[s:s + chunk].sum(0, dtype=np.float64)
    mean = total / max(n, 1)
    sq = np.zeros(X_RF.shape[1])
    for s in range(0, n, chunk):
        sq += ((X_RF[s:s + chunk] - mean) ** 2).sum(0)
    return mean, np.sqrt(sq / max(n, 1))


def _standardised(X_RF: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(X - mean) / std as float32; constant columns become 0."""
    scale = np.divide(1.0, std, out=np.zeros_like(std), where=std > 0)
    return ((X_RF - mean) * scale).astype(np.float32)


def correlation_matrix(X_RF: np.ndarray, Y_RG: np.ndarray, *, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """Pearson correlation [F, G] of every column of X with every column of Y over their shared rows.

    Streams over ``chunk_rows`` rows at a time; a constant column correlates 0 with everything.
    """
    if len(X_RF) != len(Y_RG):
        raise ValidationError(f"correlation needs the same rows on both sides, got {len(X_RF)} and {len(Y_RG)}")
    mx, sx = _moments(X_RF, chunk_rows)
    my, sy = _moments(Y_RG, chunk_rows)
    acc = np.zeros((X_RF.shape[1], Y_RG.shape[1]))
    for s in range(0, len(X_RF), chunk_rows):
        acc += _standardised(X_RF[s:s + chunk_rows], mx, sx).T @ _standardised(Y_RG[s:s + chunk_rows], my, sy)
    return np.clip(acc / max(len(X_RF), 1), -1.0, 1.0)


def paired_correlation(X_RP: np.ndarray, Y_RP: np.ndarray) -> np.ndarray:
    """Pearson correlation [P] of column p of X with column p of Y (0 where either is constant)."""
    mx, sx = _moments(X_RP, CHUNK_ROWS)
    my, sy = _moments(Y_RP, CHUNK_ROWS)
    prod = np.zeros(X_RP.shape[1])
    for s in range(0, len(X_RP), CHUNK_ROWS):
        xs = _standardised(X_RP[s:s + CHUNK_ROWS], mx, sx).astype(np.float64)
        prod += (xs * _standardised(Y_RP[s:s + CHUNK_ROWS], my, sy)).sum(0)
    return np.clip(prod / max(len(X_RP), 1), -1.0, 1.0)


def derangement_rows(row_prompt: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (left, right) pairing each prompt's rows with another prompt's, by position.

    ``row_prompt`` must be sorted (rows of a prompt contiguous, in position order). Prompts are
    put in a random cycle and each is paired with the next, so no prompt meets itself.
    """
    _, starts, counts = np.unique(row_prompt, return_index=True, return_counts=True)
    n = len(starts)
    if n < 2:
        raise ValidationError(f"the null needs at least 2 prompts in the held-out half, got {n}",
                              hint="give more probe prompts")
    order = rng.permutation(n)
    partner = np.empty(n, dtype=np.int64)
    partner[order] = np.roll(order, -1)
    left, right = [], []
    for a in range(n):
        b = partner[a]
        m = min(counts[a], counts[b])
        left.append(starts[a] + np.arange(m))
        right.append(starts[b] + np.arange(m))
    return np.concatenate(left), np.concatenate(right)


def best_match_null(X_RF: np.ndarray, Y_RG: np.ndarray, row_prompt: np.ndarray, *, permutations: int,
                    seed: int) -> np.ndarray:
    """Null draws [permutations * F]: each left feature's best correlation over the right under shuffled prompts."""
    rng = np.random.default_rng([seed, 7])
    draws = []
    for _ in range(permutations):
        li, ri = derangement_rows(row_prompt, rng)
        draws.append(correlation_matrix(X_RF[li], Y_RG[ri]).max(1))
    return np.concatenate(draws)


def _check_aligned(left: FeatureActivations, right: FeatureActivations) -> None:
    """Both sides must describe the same rows (same prompts; same token positions and tokens for token rows)."""
    hint = "harvest both sides on the same probes with the same pooling and max_length (match_sides does)"
    if left.pooling != right.pooling:
        raise ValidationError(f"right side ({right.label}) has pooling {right.pooling!r}, the left {left.pooling!r}",
                              hint=hint)
    if not np.array_equal(left.row_prompt, right.row_prompt):
        raise ValidationError(f"right side ({right.label}) has {len(right.row_prompt)} rows over other prompts "
                              f"than the left's {len(left.row_prompt)}", hint=hint)
    same_positions = left.token_index is None or (right.token_index is not None
                                                  and np.array_equal(left.token_index, right.token_index))
    if left.pooling == "token" and (not same_positions or left.tokens != right.tokens):
        raise ValidationError(f"right side ({right.label}) splits the probes into other tokens than the left "
                              f"({left.label}), so token rows do not line up",
                              hint="use pooling='mean' (one row per prompt, which works across tokenizers)")


def split_rows(row_prompt: np.ndarray, seed: int, held_out_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Boolean row masks (assignment, held_out): whole prompts go to one half by a seeded permutation."""
    prompts = np.unique(row_prompt)
    if len(prompts) < 4:
        raise ValidationError(f"activation matching needs at least 4 probe prompts (2 per half), got {len(prompts)}",
                              hint="give more probe prompts")
    n_held = min(len(prompts) - 2, max(2, int(round(len(prompts) * held_out_fraction))))
    held = np.random.default_rng([seed, 3]).permutation(prompts)[:n_held]
    held_rows = np.isin(row_prompt, held)
    return ~held_rows, held_rows


def _live(fa: FeatureActivations, masks: tuple[np.ndarray, np.ndarray], which: str) -> tuple[np.ndarray, int]:
    """Column mask of features that vary on both halves, and how many were dropped.

    Raises:
        ValidationError: no feature of this side varies (names the side).
    """
    keep = np.ones(len(fa.feature_ids), dtype=bool)
    for m in masks:
        keep &= _moments(fa.acts_RF[m], CHUNK_ROWS)[1] > 1e-12
    if not keep.any():
        raise ValidationError(f"{which} side ({fa.label}): none of its {len(keep)} features varies on the probes "
                              "(all dead or constant)",
                              hint="check the SAE / hookpoint, or give more or other probe prompts")
    return keep, int((~keep).sum())


def _assign(C_LR: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(C_LR, maximize=True)
    return rows, cols


def _entry(lf: FeatureActivations, rf: FeatureActivations, i: int, j: int, sim: float, held: float,
           mutual: bool, threshold: float, provenance: str) -> dict[str, Any]:
    """One assigned pair, in the ``matches.v1`` entry layout (activation is the only component)."""
    return {
        "left_feature_id": lf.feature_ids[i], "right_feature_id": rf.feature_ids[j],
        "left_label": None, "right_label": None,
        "similarity": sim, "held_out_similarity": held,
        "components": {c: sim if c == "activation" else None for c in COMPONENTS},
        "components_used": ["activation"], "components_dropped": [c for c in COMPONENTS if c != "activation"],
        "causal_measures": [], "mutual_nearest": mutual, "above_null": bool(held > threshold),
        "signed_effects_agree": None, "signed_effects_basis": None,
        "provenance": {"activation": provenance},
    }


def _check_settings(null_permutations: int, null_quantile: float, min_correlation: float,
                    held_out_fraction: float) -> None:
    if isinstance(null_permutations, bool) or not isinstance(null_permutations, int) or null_permutations < 1:
        raise ValidationError(f"null_permutations = {null_permutations!r}; use an integer >= 1")
    if not 0.5 <= null_quantile < 1:
        raise ValidationError(f"null_quantile = {null_quantile!r}; use a number in [0.5, 1)")
    if not -1 <= min_correlation <= 1:
        raise ValidationError(f"min_correlation = {min_correlation!r}; use a number in [-1, 1]")
    if not 0.1 <= held_out_fraction <= 0.9:
        raise ValidationError(f"held_out_fraction = {held_out_fraction!r}; use a number in [0.1, 0.9]")


def match_activations(
    left: FeatureActivations,
    right: FeatureActivations,
    *,
    null_permutations: int = 5,
    null_quantile: float = NULL_QUANTILE,
    seed: int = 0,
    min_correlation: float = 0.0,
    held_out_fraction: float = 0.5,
    probes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Match left features to right features one to one on their activations over shared rows.

    Args:
        left, right: activations over the same rows (:func:`harvest_sides` makes them).
        null_permutations: shuffled pairings of the held-out prompts drawn for the null.
        null_quantile: a pair is above the null when its held-out correlation exceeds this quantile.
        seed: seeds the prompt split and the null's derangements.
        min_correlation: assigned pairs whose assignment-half correlation is below it are not kept.
        held_out_fraction: share of the probe prompts held out for measuring (the rest assign).
        probes: the probe set's description, for the provenance (``Probes.describe()``).

    Returns:
        An ``interp-agent.matches.v1`` dict with ``method: "activations"``; write it with ``write_matches``.

    Raises:
        ValidationError: the sides' rows differ (names the right side), a side has no live
            feature (names it), too few prompts, or a bad setting.
    """
    _check_settings(null_permutations, null_quantile, min_correlation, held_out_fraction)
    _check_aligned(left, right)
    assign_rows, held_rows = split_rows(left.row_prompt, seed, held_out_fraction)
    keep_l, dead_l = _live(left, (assign_rows, held_rows), "left")
    keep_r, dead_r = _live(right, (assign_rows, held_rows), "right")
    lf, rf = left.select(keep_l), right.select(keep_r)
    XA, YA = lf.acts_RF[assign_rows], rf.acts_RF[assign_rows]
    C_LR = correlation_matrix(XA, YA)
    rows, cols = _assign(C_LR)
    mutual = (C_LR.argmax(1)[rows] == cols) & (C_LR.argmax(0)[cols] == rows)
    XH, YH = lf.acts_RF[held_rows], rf.acts_RF[held_rows]
    held = paired_correlation(XH[:, rows], YH[:, cols])
    null = best_match_null(XH, YH, lf.row_prompt[held_rows], permutations=null_permutations, seed=seed)
    threshold = float(np.quantile(null, null_quantile))
    synthetic = left.synthetic or right.synthetic
    prov = "synthetic" if synthetic else "correlational"
    matches = [_entry(lf, rf, int(i), int(j), float(C_LR[i, j]), float(h), bool(m), threshold, prov)
               for i, j, h, m in zip(rows, cols, held, mutual, strict=True) if C_LR[i, j] >= min_correlation]
    matches.sort(key=lambda e: -e["similarity"])
    null_block = {"quantile": null_quantile, "threshold": threshold, "n_permutations": null_permutations,
                  "n_draws": len(null), "mean": float(null.mean()), "max": float(null.max()), "scheme": NULL_SCHEME,
                  "rows": "held_out"}
    counts = {"rows": len(left.row_prompt), "assign_rows": int(assign_rows.sum()), "held_rows": int(held_rows.sum()),
              "prompts": len(np.unique(left.row_prompt)), "dead_left": dead_l, "dead_right": dead_r}
    return _result(left, right, lf, rf, matches, null_block, counts, probes, synthetic,
                   {"seed": seed, "min_correlation": min_correlation, "held_out_fraction": held_out_fraction,
                    "pooling": left.pooling})


def _notes(lf: FeatureActivations, rf: FeatureActivations, matches: list[dict[str, Any]], null: dict[str, Any],
           counts: dict[str, int]) -> list[str]:
    n_above = sum(m["above_null"] for m in matches)
    notes = [f"activation: Pearson correlation over {counts['assign_rows']} assignment rows; held-out "
             f"correlation over {counts['held_rows']} rows of the other prompts "
             f"({counts['prompts']} probe prompts, {lf.pooling} rows)",
             f"null: {null['n_draws']} best-match draws from {null['n_permutations']} shuffled pairings of the "
             f"held-out prompts; {null['quantile']:.0%} quantile {null['threshold']:.3f}; {n_above} of "
             f"{len(matches)} matches have a held-out correlation above it"]
    for which, fa in (("left", lf), ("right", rf)):
        if fa.side.get("n_massive_rows_dropped"):
            notes.append(f"{which}: {fa.side['n_massive_rows_dropped']} token row(s) with a massive activation "
                         "(norm > 10x the median) were left out before matching")
    for which, n, fa in (("left", counts["dead_left"], lf), ("right", counts["dead_right"], rf)):
        if n:
            notes.append(f"{which}: {n} feature(s) constant on a probe half (dead on these probes) were dropped; "
                         f"{len(fa.feature_ids)} live")
    return notes


def _result(left: FeatureActivations, right: FeatureActivations, lf: FeatureActivations, rf: FeatureActivations,
            matches: list[dict[str, Any]], null: dict[str, Any], counts: dict[str, int],
            probes: Mapping[str, Any] | None, synthetic: bool, settings: dict[str, Any]) -> dict[str, Any]:
    """The matches.v1 dict."""
    held = [m["held_out_similarity"] for m in matches]
    n_above = sum(m["above_null"] for m in matches)
    matched_l = {m["left_feature_id"] for m in matches}
    matched_r = {m["right_feature_id"] for m in matches}
    return {
        "schema_version": MATCHES_SCHEMA, "method": "activations",
        "provenance": run_provenance({}) | {
            "left_model": left.side.get("model"), "right_model": right.side.get("model"),
            "left_criterion": None, "right_criterion": None, "left": left.side, "right": right.side,
            "probes": dict(probes or {}) | {"n_prompts": counts["prompts"], "n_rows": counts["rows"]},
            "synthetic": synthetic},
        "settings": settings | {"similarity": "pearson correlation of activations over the assignment half",
                                "assignment": "hungarian (scipy.optimize.linear_sum_assignment, maximise)",
                                "null": {k: v for k, v in null.items() if k in ("quantile", "n_permutations",
                                                                                 "scheme", "rows")}},
        "components_used": ["activation"],
        "notes": _notes(lf, rf, matches, null, counts),
        "summary": {
            "n_left": len(lf.feature_ids), "n_right": len(rf.feature_ids), "n_shared_probes": counts["prompts"],
            "n_rows": counts["rows"], "n_dead_left": counts["dead_left"], "n_dead_right": counts["dead_right"],
            "n_matches": len(matches),
            "mean_similarity": float(np.mean([m["similarity"] for m in matches])) if matches else None,
            "mean_held_out_similarity": float(np.mean(held)) if held else None,
            "n_mutual_nearest": sum(m["mutual_nearest"] for m in matches), "n_sign_agree": 0,
            "n_above_null": n_above, "fraction_above_null": n_above / len(lf.feature_ids),
            "null_threshold": null["threshold"]},
        "null": null,
        "matches": matches,
        "unmatched_left": [f for f in left.feature_ids if f not in matched_l],
        "unmatched_right": [f for f in right.feature_ids if f not in matched_r],
    }


def match_sides(
    left: Side,
    right: Side,
    probes: str | Probes = "builtin",
    *,
    pooling: RowPooling = "token",
    max_length: int = 64,
    max_prompts: int | None = 200,
    batch_size: int = 16,
    null_permutations: int = 5,
    seed: int = 0,
    min_correlation: float = 0.0,
    models: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Load both sides' models (once each), harvest them on the probes and :func:`match_activations`.

    Args:
        probes: ``builtin`` (the general English corpus), a criterion pack name, a scored-prompts
            JSONL or corpus file, or a :class:`Probes`.
        pooling: ``token`` (both models must tokenize alike) or ``mean`` / ``max`` per prompt.
        max_length: tokens kept per probe prompt.
        max_prompts: probe prompts kept (a seeded sample; None: all).
        models: already loaded models by name (skips loading).

    Raises:
        ValidationError: a bad side (named), different tokenizers with token rows (names the
            right side; use ``pooling='mean'``), an absent feature id, a side with no live feature.
    """
    probe_set = load_probes(probes, max_prompts=max_prompts, seed=seed)
    fl, fr = harvest_sides([("left", left), ("right", right)], probe_set, pooling=pooling, max_length=max_length,
                           batch_size=batch_size, models=models, progress=progress)
    result = match_activations(fl, fr, null_permutations=null_permutations, seed=seed,
                               min_correlation=min_correlation, probes=probe_set.describe())
    result["settings"]["max_length"] = max_length
    return result
