"""Rank the features of a records source against a criterion (train split), with held-out evidence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from interp_agent.core.errors import EvidenceError
from interp_agent.core.formats.features import FeatureRecord
from interp_agent.core.formats.records import FeatureMeta
from interp_agent.core.progress import Progress
from interp_agent.core.ranking.association import FirstPass, SecondPass
from interp_agent.core.ranking.causal import CausalEvidence, FeatureCausal
from interp_agent.core.ranking.config import RankingConfig
from interp_agent.core.ranking.heldout import METHOD_TEXT as HELD_OUT_INTERVALS
from interp_agent.core.ranking.heldout import (
    HeldOutSplit,
    detectable_effect,
    feature_note,
    held_out_warning,
    interval_fields,
    no_support_warning,
    power_block,
)
from interp_agent.core.ranking.importance import (
    IMPORTANCE_FORMULA,
    causal_component,
    importance,
    specificity_lift,
)
from interp_agent.core.ranking.sources import RecordsSource
from interp_agent.core.ranking.splits import HELD_OUT, TRAIN
from interp_agent.core.ranking.stats import benjamini_hochberg, pearson_p_value

MIN_TOP_STABILITY = 0.9
"""The report warns when its top feature stays in the top k (with its sign) in fewer bootstrap resamples than this.

A feature the training data clearly pick out stays in the report in (nearly) every resample
(planted features: 0.98 or more); below 0.9 the reported top is one draw among near-equals.
"""
MAX_OUTSIDE_LISTED = 50
"""Features with intervention evidence outside ``top_k`` listed in ``summary.intervened_outside_top`` (all counted)."""

METHOD = {
    "split": "prompts go to the training or held-out split by a salted BLAKE2b hash of prompt_id "
    "(tokens of a prompt stay together; an explicit 'split' field wins); features are ranked on the "
    "training split only and the held-out split is reported beside it as evidence",
    "association": "Pearson r between activation (absent = 0) and criterion score per row, from streaming "
    "sufficient statistics; two-sided t-test p-values; Benjamini-Hochberg q-values over all features tested "
    "on the training split and over the reported candidates on the held-out split; AUROC (binary scores) "
    "from per-feature histograms with rows where the feature is absent as their own bin at 0. Token-level "
    "rows are treated as independent by the p-values, which makes them optimistic for token records",
    "specificity": "share of a feature's |activation| mass on criterion-positive rows (scores scaled to "
    "[0, 1]); for suppressing features, the share on negative rows; compare with base_rate",
    "stability": "Poisson bootstrap of the training split (cluster by prompt): share of resamples in which "
    "the feature stays in the top k with the same sign, and the 2.5-97.5 percentile interval of r; "
    "ranking_stability is the mean Spearman correlation between resample rankings. The resamples reuse the "
    "training prompts that chose the candidates, which overstates stability; stability across held-out splits is "
    "not measured (rerun with another split_salt for that). The report warns when the top feature's top-k "
    f"frequency is below {MIN_TOP_STABILITY}; ranking_stability, dominated by the many candidates near the "
    "cut, is reported but does not trigger a warning",
    "causal": "intervention effects signed by intervention type, Student-t 95% intervals, controls "
    "(metadata.control_type) summarised apart; strong_causal_score = sign(e) * max(0, |e| - side effect - "
    "|control effect|)",
    "held_out_intervals": HELD_OUT_INTERVALS,
    "importance": IMPORTANCE_FORMULA,
    "intervened_outside_top": "every feature with intervention evidence in the records is a candidate and ranked; "
    "those ranked below top_k are counted in summary.n_intervened_outside_top and listed (first "
    f"{MAX_OUTSIDE_LISTED} by rank) in summary.intervened_outside_top with their rank, their causal block's "
    "verdict (causal, weak, no_effect or contradicts, by the rule of interp_agent.core.ranking.verdict) "
    "and the effect behind it, and a warning says so",
}


def _progress_noop(phase: str, done: int, total: int | None) -> None:
    """The progress callback when none is given: reports nothing."""
    return None


@dataclass(frozen=True, slots=True)
class CandidateStats:
    """Statistics of the candidate features from both passes, each indexed by candidate position ``j``."""

    ids: np.ndarray
    """Feature index of each candidate (into the source's feature_ids)."""
    sign: np.ndarray
    """+1 where the training r is >= 0 (the feature promotes the criterion), else -1."""
    bootstrap: dict[str, Any]
    """Top-k frequency and r interval per candidate, and the ranking stability (``SecondPass.bootstrap``)."""
    auroc: np.ndarray
    """AUROC per split and candidate, shape [2, C]; NaN for continuous scores or an empty class."""
    mean_positive: np.ndarray
    """Mean activation on criterion-positive rows per split and candidate, shape [2, C]."""
    mean_negative: np.ndarray
    """Mean activation on criterion-negative rows per split and candidate, shape [2, C]."""
    specificity_train: np.ndarray
    """Share of |activation| mass on the rows the feature's sign points to, on the training split."""
    base_rate_train: float
    """Share of the criterion-positive score mass on the training split."""
    specificity_held_out: np.ndarray
    """As specificity_train, on the held-out split; NaN without held-out statistics."""
    auroc_ci_held_out: list[tuple[float, float] | None]
    """Held-out AUROC 95% intervals; None for continuous scores or without held-out statistics."""
    p_held_out: np.ndarray
    """Held-out p-values of r."""
    q_held_out: np.ndarray
    """Benjamini-Hochberg q-values of p_held_out over the candidates."""
    histograms: list[dict[str, Any]]
    """Class histograms for the report's plots."""
    examples: list[list[dict[str, Any]]]
    """Top-activating examples."""
    probes: list[dict[str, float]]
    """Activations on the probe prompts (fingerprints for matching)."""

    @classmethod
    def measure(
        cls, config: RankingConfig, first: FirstPass, second: SecondPass, corr: dict[str, np.ndarray],
        split: HeldOutSplit,
    ) -> CandidateStats:
        """Read the statistics of ``second``'s candidates off both passes."""
        candidates = second.candidates
        sign = np.where(corr["r_train"][candidates] >= 0, 1.0, -1.0)
        boot = second.bootstrap(config.top_k, sign)
        auroc = second.auroc() if first.binary else np.full((2, len(candidates)), np.nan)
        mean_pos, mean_neg = second.class_means()
        spec_tr, base_tr = first.specificity(candidates, TRAIN, sign)
        spec_ho, _ = first.specificity(candidates, HELD_OUT, sign)
        if not split.has_statistics:  # like association.held_out: a share of 1 or 2 rows is no evidence
            spec_ho = np.full(len(candidates), np.nan)
        auroc_ci_ho: list[tuple[float, float] | None] = (
            second.auroc_intervals(HELD_OUT, split.design_effect) if first.binary and split.has_statistics
            else [None] * len(candidates))
        p_ho = pearson_p_value(corr["r_held_out"][candidates], first.n[HELD_OUT])
        q_ho = benjamini_hochberg(p_ho)
        hists = second.histograms()
        examples = second.examples()
        probes = second.probe_activations()
        return cls(candidates, sign, boot, auroc, mean_pos, mean_neg, spec_tr, base_tr, spec_ho, auroc_ci_ho,
                   p_ho, q_ho, hists, examples, probes)


@dataclass(frozen=True, slots=True)
class RankingRun:
    """What both passes found, read by every feature's entry and by the summary."""

    config: RankingConfig
    """The ranking's settings."""
    first: FirstPass
    """Sufficient statistics of every feature."""
    corr: dict[str, np.ndarray]
    """Per-feature r, p- and q-values per split (``FirstPass.correlations``)."""
    split: HeldOutSplit
    """Size of the held-out split."""
    split_prompts: tuple[int, int]
    """Prompts in the training and the held-out split, indexed by TRAIN / HELD_OUT."""
    candidates: CandidateStats
    """Second-pass statistics of the candidates."""

    def association_on_splits(self, j: int) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Candidate ``j``'s association on the training and the held-out split (None below 3 rows).

        The held-out block carries its intervals and whether they exclude chance too.
        """
        train, held_out = (None if self.first.n[gi] < 3 else self._split_block(j, gi, name)
                           for gi, name in ((TRAIN, "train"), (HELD_OUT, "held_out")))
        if held_out is not None:
            held_out |= interval_fields(held_out["pearson_r"], self.candidates.auroc_ci_held_out[j], self.split)
        return train, held_out

    def _split_block(self, j: int, gi: int, name: str) -> dict[str, Any]:
        """Candidate ``j``'s rows, r, p, q, AUROC and class means on split ``gi`` (named ``name``)."""
        fi, c, corr = self.candidates.ids[j], self.candidates, self.corr
        return {
            "n": int(self.first.n[gi]),
            "n_prompts": self.split_prompts[gi],
            "nnz": int(self.first.sums["nnz"][gi, fi]),
            "pearson_r": float(corr[f"r_{name}"][fi]),
            "p_value": float(corr[f"p_{name}"][fi]) if name == "train" else float(c.p_held_out[j]),
            "q_value": float(corr["q_train"][fi]) if name == "train" else float(c.q_held_out[j]),
            "auroc": float(c.auroc[gi, j]) if np.isfinite(c.auroc[gi, j]) else None,
            "mean_positive": float(c.mean_positive[gi, j]) if np.isfinite(c.mean_positive[gi, j]) else None,
            "mean_negative": float(c.mean_negative[gi, j]) if np.isfinite(c.mean_negative[gi, j]) else None,
        }


@dataclass(frozen=True, slots=True)
class FeatureFacts:
    """What is known about one feature besides the passes' statistics."""

    feature_id: str
    """The feature."""
    meta: FeatureMeta | None
    """What the records file says about it."""
    info: FeatureRecord | None
    """Its entry in an imported feature dump."""
    causal: FeatureCausal | None
    """Its intervention evidence."""

    @classmethod
    def lookup(
        cls, feature_id: str, source: RecordsSource, evidence: CausalEvidence | None,
        feature_info: dict[str, FeatureRecord] | None,
    ) -> FeatureFacts:
        """Gather what the records file, the feature dump and the intervention evidence know about a feature."""
        return cls(
            feature_id,
            source.feature_metadata.get(feature_id),
            (feature_info or {}).get(feature_id),
            evidence.features.get(feature_id) if evidence else None,
        )

    def identity(self) -> dict[str, Any]:
        """Label, explanation, layer and source of the entry: the records file's first, then the dump's."""
        meta, info = self.meta, self.info
        return {
            "label": (meta.label if meta else None) or (info.label if info else None),
            "explanation": (meta.explanation if meta else None) or (info.explanation if info else None),
            "layer": meta.layer if meta and meta.layer is not None else (info.layer if info else None),
            "source": (info.source if info and info.source else "records"),
        }

    def decoder_signature(self) -> list[float] | None:
        """The decoder signature: the records file's, else the dump's; None without one."""
        meta, info = self.meta, self.info
        if meta and meta.decoder_signature:
            return list(meta.decoder_signature)
        return list(info.decoder_signature) if info and info.decoder_signature else None

    def provenance(self) -> dict[str, str | None]:
        """The entry's ``provenance`` block: what kind of evidence each part is (None where absent)."""
        return {
            "association": "correlational",
            "specificity": "correlational",
            "stability": "correlational",
            "causal": "interventional" if self.causal else None,
            "examples": "correlational",
            "imported": "imported" if self.info is not None else None,
        }


@dataclass(frozen=True, slots=True)
class ImportanceParts:
    """The four factors of a feature's importance (``IMPORTANCE_FORMULA``)."""

    association: float
    """A: |r| on the training split."""
    specificity: float
    """S: specificity lift over the base rate."""
    stability: float
    """T: bootstrap top-k frequency."""
    causal: float
    """C: strong causal score aligned with the association, over the score range (0 without interventions)."""

    @property
    def value(self) -> float:
        """The importance these factors give."""
        return importance(self.association, self.specificity, self.stability, self.causal)

    def to_json(self, causal_measured: bool) -> dict[str, Any]:
        """The entry's ``importance_components`` block; the causal part is None unless it was measured."""
        return {
            "association": {"value": self.association, "provenance": "correlational"},
            "specificity": {"value": self.specificity, "provenance": "correlational"},
            "stability": {"value": self.stability, "provenance": "correlational"},
            "causal": {"value": self.causal, "provenance": "interventional"} if causal_measured else None,
        }


def _association_pass(source: RecordsSource, config: RankingConfig, progress: Progress) -> tuple[FirstPass, int]:
    """The first pass: sufficient statistics of every feature. Returns them and the number of rows read."""
    first = FirstPass(config)
    done = 0
    for chunk in source.chunks():
        first.update(chunk, source.n_features)
        done += len(chunk.prompt_ids)
        progress("association pass", done, None)
    return first, done


def _check_rankable(source: RecordsSource, first: FirstPass) -> None:
    """Stop unless the first pass leaves something to rank.

    Raises:
        EvidenceError: no feature is ever active, fewer than 3 rows fall in the training
            split, or every criterion score is the same.
    """
    if source.n_features == 0:
        raise EvidenceError(f"{source.path}: no feature has a non-zero activation", hint="check the records file")
    if first.n[TRAIN] < 3:
        raise EvidenceError(
            f"only {int(first.n[TRAIN])} rows fall in the training split; ranking needs at least 3",
            hint="add prompts or lower --held-out-fraction",
        )
    if first.ymax == first.ymin:
        raise EvidenceError(
            f"every criterion_score is {first.ymin}; association needs prompts where the criterion holds and where "
            "it does not",
            hint="add negative (or positive) prompts",
        )


def _select_candidates(
    r_train: np.ndarray, source: RecordsSource, config: RankingConfig, evidence: CausalEvidence | None
) -> np.ndarray:
    """Feature indices that get the second pass: the ``config.candidates`` highest |r| on the training split,
    then every other feature of the records that has intervention evidence."""
    position = {fid: i for i, fid in enumerate(source.feature_ids)}
    causal_ids = [position[f] for f in (evidence.features if evidence else {}) if f in position]
    order = np.argsort(-np.abs(r_train), kind="stable")
    cand = list(order[: config.candidates])
    cand_set = set(cand)
    cand += [j for j in causal_ids if j not in cand_set]
    return np.asarray(cand, dtype=np.int64)


def _candidate_pass(
    source: RecordsSource, config: RankingConfig, first: FirstPass, candidates: np.ndarray, n_rows: int,
    progress: Progress,
) -> SecondPass:
    """The second pass, over the candidates only: histograms, bootstrap sums, examples, probe activations."""
    second = SecondPass(config, first, candidates)
    done = 0
    for chunk in source.chunks(with_text=True, features=candidates):
        second.update(chunk)
        done += len(chunk.prompt_ids)
        progress("candidate pass", done, n_rows)
    return second


def _feature_entry(run: RankingRun, j: int, facts: FeatureFacts) -> tuple[dict[str, Any], str | None]:
    """Candidate ``j``'s report entry (rank 0 until ranked), and its note on weak held-out evidence (None if fine)."""
    c, config, fc = run.candidates, run.config, facts.causal
    sign = c.sign[j]
    r_train = float(run.corr["r_train"][c.ids[j]])
    train, ho = run.association_on_splits(j)
    power = power_block(r_train, None if ho is None else ho["pearson_r"], run.split)
    note = feature_note(r_train, ho, power, run.split)
    supported = bool(ho is not None and np.sign(ho["pearson_r"]) == sign and ho["q_value"] < config.alpha)
    spec_value = float(c.specificity_train[j]) if np.isfinite(c.specificity_train[j]) else None
    base_rate = c.base_rate_train if sign > 0 else 1 - c.base_rate_train
    parts = ImportanceParts(
        association=abs(r_train),
        specificity=specificity_lift(spec_value, base_rate),
        stability=float(c.bootstrap["top_k_frequency"][j]),
        causal=causal_component(fc.strong_causal_score if fc else None, sign, run.first.score_range),
    )
    entry = {
        "feature_id": facts.feature_id,
        "rank": 0,
        "importance": parts.value,
        "direction": "promotes" if sign > 0 else "suppresses",
        **facts.identity(),
        "association": {"provenance": "correlational", "train": train, "held_out": ho,
                        "held_out_supported": supported, "held_out_power": power},
        "specificity": {
            "provenance": "correlational",
            "train": spec_value,
            "held_out": float(c.specificity_held_out[j]) if np.isfinite(c.specificity_held_out[j]) else None,
            "base_rate": base_rate,
        },
        "stability": {
            "provenance": "correlational",
            "bootstrap_top_k_frequency": parts.stability,
            "bootstrap_r_interval": [float(c.bootstrap["r_low"][j]), float(c.bootstrap["r_high"][j])],
            "resamples": config.bootstrap,
        },
        "causal": fc.to_json(sign) if fc else None,
        "importance_components": parts.to_json(bool(fc)),
        "provenance": facts.provenance(),
        "examples": c.examples[j],
        "histogram": c.histograms[j],
        "probe_activations": c.probes[j],
        "decoder_signature": facts.decoder_signature(),
        "imported": imported_block(facts.info),
        "notes": [note] if note else [],
    }
    return entry, note


def _feature_entries(
    run: RankingRun, source: RecordsSource, evidence: CausalEvidence | None,
    feature_info: dict[str, FeatureRecord] | None,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every candidate's entry in candidate order, and the notes on weak held-out evidence by feature id."""
    features: list[dict[str, Any]] = []
    held_notes: dict[str, str] = {}
    for j, fi in enumerate(run.candidates.ids):
        facts = FeatureFacts.lookup(source.feature_ids[fi], source, evidence, feature_info)
        entry, note = _feature_entry(run, j, facts)
        features.append(entry)
        if note:
            held_notes[facts.feature_id] = note
    return features, held_notes


def _held_out_positive_share(first: FirstPass) -> float | None:
    """Share of held-out rows where the criterion holds (binary scores), else None."""
    n = first.n[HELD_OUT]
    if not first.binary or n == 0:
        return None
    return float((first.sy[HELD_OUT] - first.ymin * n) / first.score_range / n)


def _ranked(features: list[dict[str, Any]], top_k: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every entry by importance (ties by feature id), numbered from rank 1: the first ``top_k``, and the rest."""
    features = sorted(features, key=lambda f: (-f["importance"], f["feature_id"]))
    for rank, f in enumerate(features, start=1):
        f["rank"] = rank
    return features[:top_k], features[top_k:]


def _outside_entry(f: dict[str, Any]) -> dict[str, Any]:
    """A compact ``intervened_outside_top`` entry: rank, verdict and the effect behind it."""
    causal = f["causal"]
    return {
        "feature_id": f["feature_id"],
        "rank": f["rank"],
        "importance": f["importance"],
        "direction": f["direction"],
        "verdict": causal.get("verdict"),
        "provenance": "interventional",
        "n": causal["n"],
        "mean_effect": causal["mean_effect"],
        "ci95": causal["ci95"],
        "strong_causal_score": causal["strong_causal_score"],
        "agrees_with_association": causal["agrees_with_association"],
        "held_out_supported": (f.get("association") or {}).get("held_out_supported"),
    }


def intervened_outside_top(outside: list[dict[str, Any]], top_k: int) -> tuple[dict[str, Any], str | None]:
    """The summary fields and the warning for features with intervention evidence ranked below ``top_k``.

    Args:
        outside: the ranked feature rows below ``top_k`` (v1 ``features[]`` rows with their ranks), in rank order.
        top_k: the number of reported features.

    Returns:
        ``{"n_intervened_outside_top", "intervened_outside_top"}`` (the first ``MAX_OUTSIDE_LISTED``
        entries) and the warning, None when no such feature exists.
    """
    intervened = [f for f in outside if f.get("causal") is not None]
    entries = [_outside_entry(f) for f in intervened]
    fields = {"n_intervened_outside_top": len(entries), "intervened_outside_top": entries[:MAX_OUTSIDE_LISTED]}
    return fields, _outside_warning(entries, top_k)


def _outside_warning(entries: list[dict[str, Any]], top_k: int) -> str | None:
    """The warning that features with intervention evidence rank below ``top_k`` (None when none do)."""
    if not entries:
        return None
    counts: dict[str, int] = {}
    for e in entries:
        verdict = e["verdict"] or "without a verdict"
        counts[verdict] = counts.get(verdict, 0) + 1
    tally = ", ".join(f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    first = entries[0]
    listed = "lists them" if len(entries) <= MAX_OUTSIDE_LISTED else f"lists the first {MAX_OUTSIDE_LISTED} by rank"
    return (f"{len(entries)} features with intervention evidence rank below the top {top_k} and are not among the "
            f"reported features ({tally}; the best ranked, {first['feature_id']}, is at rank {first['rank']} with "
            f"verdict {first['verdict']}); summary.intervened_outside_top {listed} with their effects; raise top_k to "
            "report them in full")


def _stability_warning(top: list[dict[str, Any]], run: RankingRun) -> str | None:
    """The warning when the top feature's bootstrap top-k frequency is below ``MIN_TOP_STABILITY`` (None if not)."""
    if not top:
        return None
    freq = top[0]["stability"]["bootstrap_top_k_frequency"]
    if freq >= MIN_TOP_STABILITY:
        return None
    n_candidates = len(run.candidates.ids)
    k = min(run.config.top_k, n_candidates)
    rs = run.candidates.bootstrap["ranking_stability"]
    rs_text = "" if not np.isfinite(rs) else (
        f"; ranking_stability is {rs:.2f} (mean Spearman correlation of the {n_candidates} candidates' orders "
        "between resamples)")
    return (f"the top feature, {top[0]['feature_id']}, stays in the top {k} with its sign in only {freq:.0%} of "
            f"{run.config.bootstrap} bootstrap resamples of the training split (below {MIN_TOP_STABILITY:.0%} "
            f"warns), so the training prompts do not clearly single it out{rs_text}. These resamples reuse the "
            "training prompts that chose the candidates, which overstates stability, and stability across held-out "
            "splits is not measured: rerun with another split_salt to see whether the top feature changes")


def _ranking_warnings(
    run: RankingRun, ranked: tuple[list[dict[str, Any]], list[dict[str, Any]]], held_notes: dict[str, str],
    source: RecordsSource, evidence: CausalEvidence | None,
) -> list[str]:
    """Warnings on weak held-out evidence, an unstable top feature, and intervention evidence left out of the report."""
    features, outside = ranked
    weak = [(f, held_notes[f["feature_id"]]) for f in features if f["feature_id"] in held_notes]
    warnings = [
        held_out_warning(weak, len(features), run.split),
        no_support_warning(features, outside, source.n_features, run.split, run.config.alpha),
        _stability_warning(features, run),
        intervened_outside_top(outside, run.config.top_k)[1],
    ]
    if evidence:
        missing = sorted(set(evidence.features) - set(source.feature_ids))
        if missing:
            warnings.append(
                f"{len(missing)} features with intervention evidence never appear in the records "
                f"(e.g. {missing[0]!r}); their causal evidence is not in this report"
            )
    return [w for w in warnings if w]


def _summary(
    run: RankingRun, n_rows: int, n_features: int, ranked: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    evidence: CausalEvidence | None,
) -> dict[str, Any]:
    """The report's ``summary``: rows, prompts and splits, features tested, score kind, and headline counts."""
    first = run.first
    features, outside = ranked
    return {
        "n_rows": n_rows,
        "n_prompts": first.n_prompts,
        "n_train_rows": int(first.n[TRAIN]),
        "n_held_out_rows": int(first.n[HELD_OUT]),
        "n_train_prompts": run.split_prompts[TRAIN],
        "n_held_out_prompts": run.split.n_prompts,
        "n_features_tested": n_features,
        "n_candidates": len(run.candidates.ids),
        "score_kind": "binary" if first.binary else "continuous",
        "positive_rate": float(
            (first.sy.sum() - first.ymin * first.n.sum()) / first.score_range / max(first.n.sum(), 1)
        ),
        "n_significant_train": int((run.corr["q_train"] < run.config.alpha).sum()),
        "n_held_out_supported": sum(f["association"]["held_out_supported"] for f in features),
        "n_held_out_excludes_chance": sum(
            bool((f["association"]["held_out"] or {}).get("ci_excludes_chance")) for f in features
        ),
        "ranking_stability": run.candidates.bootstrap["ranking_stability"],
        "held_out_detectable_effect": detectable_effect(run.split),
        "n_intervention_rows": evidence.n_rows if evidence else 0,
        "n_control_rows": evidence.n_control_rows if evidence else 0,
        **intervened_outside_top(outside, run.config.top_k)[0],
    }


def rank_records(
    source: RecordsSource,
    config: RankingConfig,
    *,
    evidence: CausalEvidence | None = None,
    feature_info: dict[str, FeatureRecord] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Two streaming passes over ``source``; returns the report's summary, warnings, probes and features."""
    progress = progress or _progress_noop
    first, n_rows = _association_pass(source, config, progress)
    n_features = source.n_features
    _check_rankable(source, first)
    split = HeldOutSplit(int(first.n[HELD_OUT]), first.n_split_prompts(HELD_OUT), config.held_out_fraction,
                         _held_out_positive_share(first))
    split_prompts = (first.n_split_prompts(TRAIN), split.n_prompts)  # indexed by TRAIN / HELD_OUT
    corr = first.correlations(n_features)
    candidates = _select_candidates(corr["r_train"], source, config, evidence)
    second = _candidate_pass(source, config, first, candidates, n_rows, progress)
    run = RankingRun(config, first, corr, split, split_prompts,
                     CandidateStats.measure(config, first, second, corr, split))
    entries, held_notes = _feature_entries(run, source, evidence, feature_info)
    ranked = _ranked(entries, config.top_k)
    features = ranked[0]
    warnings = _ranking_warnings(run, ranked, held_notes, source, evidence)
    summary = _summary(run, n_rows, n_features, ranked, evidence)
    if summary["n_significant_train"] == 0:
        warnings.append(f"no feature is significant on the training split at q < {config.alpha}")
    return {
        "summary": summary,
        "warnings": warnings,
        "method": METHOD,
        "probe_prompts": list(first.probe_ids),
        "features": features,
        "models_seen": sorted(first.models),
        "synthetic_input": first.synthetic,
    }


def imported_block(info: FeatureRecord | None) -> dict[str, Any] | None:
    """The report's ``imported`` block: what a feature dump says, labelled imported."""
    if info is None or not (info.activation_signature or info.causal_effects or info.examples):
        return None
    return {
        "provenance": "imported",
        "activation_signature": list(info.activation_signature) if info.activation_signature else None,
        "causal_effects": dict(info.causal_effects) or None,
        "examples": list(info.examples) or None,
    }
