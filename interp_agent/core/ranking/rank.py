"""Rank the features of a records source against a criterion (train split), with held-out evidence."""

from __future__ import annotations

from typing import Any

import numpy as np

from interp_agent.core.errors import EvidenceError
from interp_agent.core.formats.features import FeatureRecord
from interp_agent.core.progress import Progress
from interp_agent.core.ranking.association import FirstPass, SecondPass
from interp_agent.core.ranking.causal import CausalEvidence
from interp_agent.core.ranking.config import RankingConfig
from interp_agent.core.ranking.heldout import METHOD_TEXT as HELD_OUT_INTERVALS
from interp_agent.core.ranking.heldout import (
    HeldOutSplit,
    feature_note,
    held_out_warning,
    interval_fields,
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
    "ranking_stability is the mean Spearman correlation between resample rankings",
    "causal": "intervention effects signed by intervention type, Student-t 95% intervals, controls "
    "(metadata.control_type) summarised apart; strong_causal_score = sign(e) * max(0, |e| - side effect - "
    "|control effect|)",
    "held_out_intervals": HELD_OUT_INTERVALS,
    "importance": IMPORTANCE_FORMULA,
}


def _progress_noop(phase: str, done: int, total: int | None) -> None:
    return None


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
    first = FirstPass(config)
    done = 0
    for chunk in source.chunks():
        first.update(chunk, source.n_features)
        done += len(chunk.prompt_ids)
        progress("association pass", done, None)
    n_rows = done
    n_features = source.n_features
    warnings: list[str] = []
    if n_features == 0:
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
    split = HeldOutSplit(int(first.n[HELD_OUT]), first.n_split_prompts(HELD_OUT), config.held_out_fraction)
    split_prompts = (first.n_split_prompts(TRAIN), split.n_prompts)  # indexed by TRAIN / HELD_OUT

    corr = first.correlations(n_features)
    r_train = corr["r_train"]
    position = {fid: i for i, fid in enumerate(source.feature_ids)}
    causal_ids = [position[f] for f in (evidence.features if evidence else {}) if f in position]
    order = np.argsort(-np.abs(r_train), kind="stable")
    cand = list(order[: config.candidates])
    cand_set = set(cand)
    cand += [j for j in causal_ids if j not in cand_set]
    candidates = np.asarray(cand, dtype=np.int64)

    second = SecondPass(config, first, candidates)
    done = 0
    for chunk in source.chunks(with_text=True, features=candidates):
        second.update(chunk)
        done += len(chunk.prompt_ids)
        progress("candidate pass", done, n_rows)

    sign = np.where(r_train[candidates] >= 0, 1.0, -1.0)
    boot = second.bootstrap(config.top_k, sign)
    auroc = second.auroc() if first.binary else np.full((2, len(candidates)), np.nan)
    mean_pos, mean_neg = second.class_means()
    spec_tr, base_tr = first.specificity(candidates, TRAIN, sign)
    spec_ho, _ = first.specificity(candidates, HELD_OUT, sign)
    if not split.has_statistics:  # like association.held_out: a share of 1 or 2 rows is no evidence
        spec_ho = np.full(len(candidates), np.nan)
    auroc_ci_ho = (second.auroc_intervals(HELD_OUT, split.design_effect) if first.binary and split.has_statistics
                   else [None] * len(candidates))
    p_ho = pearson_p_value(corr["r_held_out"][candidates], first.n[HELD_OUT])
    q_ho = benjamini_hochberg(p_ho)
    hists = second.histograms()
    examples = second.examples()
    probes = second.probe_activations()

    features: list[dict[str, Any]] = []
    held_notes: dict[str, str] = {}
    for j, fi in enumerate(candidates):
        fid = source.feature_ids[fi]
        meta = source.feature_metadata.get(fid)
        info = (feature_info or {}).get(fid)
        split_stats = {}
        for gi, name in ((TRAIN, "train"), (HELD_OUT, "held_out")):
            if first.n[gi] < 3:  # r is undefined (n < 2) or trivially ±1 (n = 2): report nothing
                split_stats[name] = None
                continue
            split_stats[name] = {
                "n": int(first.n[gi]),
                "n_prompts": split_prompts[gi],
                "nnz": int(first.sums["nnz"][gi, fi]),
                "pearson_r": float(corr[f"r_{name}"][fi]),
                "p_value": float(corr[f"p_{name}"][fi]) if name == "train" else float(p_ho[j]),
                "q_value": float(corr["q_train"][fi]) if name == "train" else float(q_ho[j]),
                "auroc": float(auroc[gi, j]) if np.isfinite(auroc[gi, j]) else None,
                "mean_positive": float(mean_pos[gi, j]) if np.isfinite(mean_pos[gi, j]) else None,
                "mean_negative": float(mean_neg[gi, j]) if np.isfinite(mean_neg[gi, j]) else None,
            }
        ho = split_stats["held_out"]
        if ho is not None:
            ho |= interval_fields(ho["pearson_r"], auroc_ci_ho[j], split)
        power = power_block(float(r_train[fi]), None if ho is None else ho["pearson_r"], split)
        note = feature_note(float(r_train[fi]), ho, power, split)
        if note:
            held_notes[fid] = note
        supported = bool(ho is not None and np.sign(ho["pearson_r"]) == sign[j] and ho["q_value"] < config.alpha)
        fc = evidence.features.get(fid) if evidence else None
        strong = fc.strong_causal_score if fc else None
        spec_value = float(spec_tr[j]) if np.isfinite(spec_tr[j]) else None
        a = abs(float(r_train[fi]))
        s = specificity_lift(spec_value, base_tr if sign[j] > 0 else 1 - base_tr)
        t = float(boot["top_k_frequency"][j])
        c = causal_component(strong, sign[j], first.score_range)
        features.append(
            {
                "feature_id": fid,
                "rank": 0,
                "importance": importance(a, s, t, c),
                "direction": "promotes" if sign[j] > 0 else "suppresses",
                "label": (meta.label if meta else None) or (info.label if info else None),
                "explanation": (meta.explanation if meta else None) or (info.explanation if info else None),
                "layer": meta.layer if meta and meta.layer is not None else (info.layer if info else None),
                "source": (info.source if info and info.source else "records"),
                "association": {
                    "provenance": "correlational",
                    "train": split_stats["train"],
                    "held_out": ho,
                    "held_out_supported": supported,
                    "held_out_power": power,
                },
                "specificity": {
                    "provenance": "correlational",
                    "train": spec_value,
                    "held_out": float(spec_ho[j]) if np.isfinite(spec_ho[j]) else None,
                    "base_rate": base_tr if sign[j] > 0 else 1 - base_tr,
                },
                "stability": {
                    "provenance": "correlational",
                    "bootstrap_top_k_frequency": t,
                    "bootstrap_r_interval": [float(boot["r_low"][j]), float(boot["r_high"][j])],
                    "resamples": config.bootstrap,
                },
                "causal": fc.to_json(sign[j]) if fc else None,
                "importance_components": {
                    "association": {"value": a, "provenance": "correlational"},
                    "specificity": {"value": s, "provenance": "correlational"},
                    "stability": {"value": t, "provenance": "correlational"},
                    "causal": {"value": c, "provenance": "interventional"} if fc else None,
                },
                "provenance": {
                    "association": "correlational",
                    "specificity": "correlational",
                    "stability": "correlational",
                    "causal": "interventional" if fc else None,
                    "examples": "correlational",
                    "imported": "imported" if info is not None else None,
                },
                "examples": examples[j],
                "histogram": hists[j],
                "probe_activations": probes[j],
                "decoder_signature": list(meta.decoder_signature)
                if meta and meta.decoder_signature
                else (list(info.decoder_signature) if info and info.decoder_signature else None),
                "imported": imported_block(info),
                "notes": [note] if note else [],
            }
        )
    features.sort(key=lambda f: (-f["importance"], f["feature_id"]))
    features = features[: config.top_k]
    for rank, f in enumerate(features, start=1):
        f["rank"] = rank
    weak = [(f, held_notes[f["feature_id"]]) for f in features if f["feature_id"] in held_notes]
    thin = held_out_warning(weak, len(features), split)
    if thin:
        warnings.insert(0, thin)
    if evidence:
        missing = sorted(set(evidence.features) - set(source.feature_ids))
        if missing:
            warnings.append(
                f"{len(missing)} features with intervention evidence never appear in the records "
                f"(e.g. {missing[0]!r}); their causal evidence is not in this report"
            )
    summary = {
        "n_rows": n_rows,
        "n_prompts": first.n_prompts,
        "n_train_rows": int(first.n[TRAIN]),
        "n_held_out_rows": int(first.n[HELD_OUT]),
        "n_train_prompts": split_prompts[TRAIN],
        "n_held_out_prompts": split.n_prompts,
        "n_features_tested": n_features,
        "n_candidates": len(candidates),
        "score_kind": "binary" if first.binary else "continuous",
        "positive_rate": float(
            (first.sy.sum() - first.ymin * first.n.sum()) / first.score_range / max(first.n.sum(), 1)
        ),
        "n_significant_train": int((corr["q_train"] < config.alpha).sum()),
        "n_held_out_supported": sum(f["association"]["held_out_supported"] for f in features),
        "n_held_out_excludes_chance": sum(
            bool((f["association"]["held_out"] or {}).get("ci_excludes_chance")) for f in features
        ),
        "ranking_stability": boot["ranking_stability"],
        "n_intervention_rows": evidence.n_rows if evidence else 0,
        "n_control_rows": evidence.n_control_rows if evidence else 0,
    }
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
