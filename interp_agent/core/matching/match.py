"""Cross-model feature matching: pair the features of two inspection reports one to one.

Each component (activation, decoder, text, causal) gives a full similarity matrix; the
combined similarity of a pair is the weighted mean over the components *both* features
have, so a missing component renormalises the weights instead of counting as zero:

    S(i, j) = sum_c w_c m_c(i, j) S_c(i, j) / sum_c w_c m_c(i, j)

Pairs that share no component are never matched. The Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``) picks the one-to-one assignment of largest
total similarity; assigned pairs below ``min_similarity`` are dropped. The result's
``notes`` say what each component compared and which were left out, and why.

:func:`write_matches` writes the JSON to ``out`` and the markdown beside it under the
same name (``x/left_vs_right.json`` → ``x/left_vs_right.md``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from interp_agent.core.artifacts import (
    run_provenance,
    schema_version,
    write_json,
    write_text,
)
from interp_agent.core.errors import (
    InputFileError,
    MissingDependencyError,
    ValidationError,
)
from interp_agent.core.matching import text as _text
from interp_agent.core.matching.causal import FORMULA as CAUSAL_FORMULA
from interp_agent.core.matching.causal import causal_notes
from interp_agent.core.matching.fingerprints import (
    COMPONENTS,
    Fingerprints,
    fingerprint_pair,
)
from interp_agent.core.matching.text import Encoder

REPORT_SCHEMA = schema_version("inspection_report")
MATCHES_SCHEMA = schema_version("matches")
DEFAULT_WEIGHTS: dict[str, float] = {"activation": 0.4, "decoder": 0.2, "text": 0.2, "causal": 0.2}
"""Weight of each component in the combined similarity."""
_PROVENANCE = {"activation": "correlational", "decoder": "correlational", "text": "semantic",
               "causal": "interventional"}
_UNMATCHABLE = -1e6  # stands in for -inf in the assignment (scipy rejects infeasible matrices)


def load_report(path: str | Path) -> dict[str, Any]:
    """Read an inspection report (``report.json``).

    Raises:
        InputFileError: the file is missing, is not JSON, or is not an inspection report.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(p, "no such file", hint="pass the report.json that interp-agent inspect wrote")
    try:
        report = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(p, f"cannot be read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InputFileError(p, f"is not valid JSON: {exc.msg}", line=exc.lineno) from exc
    from interp_agent.core.formats.interp_lab import interp_lab_kind

    if interp_lab_kind(report) == "report":
        raise InputFileError(p, "is an interp-lab inspection report, not ours",
                             hint=f"convert it first: interp-agent import-interp-lab {p} --out DIR (its scores stay "
                                  "labelled imported), then pass DIR/report.json")
    if not isinstance(report, dict) or report.get("schema_version") != REPORT_SCHEMA:
        found = report.get("schema_version") if isinstance(report, dict) else type(report).__name__
        raise InputFileError(p, f"expected schema_version '{REPORT_SCHEMA}', found {found!r}",
                             field="schema_version", hint="pass the report.json that interp-agent inspect wrote")
    return report


def validate_report(report: Any, side: str) -> None:
    """Check the shape matching relies on: schema version, a features list, unique feature ids.

    Raises:
        ValidationError: naming ``side`` (``left`` / ``right``), the problem and the fix.
    """
    hint = "pass the report.json that interp-agent inspect wrote (load it with load_report)"
    if not isinstance(report, dict):
        raise ValidationError(f"{side} report must be a dict, got {type(report).__name__}", hint=hint)
    if report.get("schema_version") != REPORT_SCHEMA:
        raise ValidationError(
            f"{side} report has schema_version {report.get('schema_version')!r}, expected '{REPORT_SCHEMA}'",
            hint=hint,
        )
    features = report.get("features")
    if not isinstance(features, list):
        raise ValidationError(f"{side} report has no 'features' list (got {type(features).__name__})", hint=hint)
    seen: set[str] = set()
    for k, feature in enumerate(features):
        fid = feature.get("feature_id") if isinstance(feature, dict) else None
        if not isinstance(fid, str) or not fid:
            raise ValidationError(f"{side} report: features[{k}] has no string 'feature_id'", hint=hint)
        if fid in seen:
            raise ValidationError(f"{side} report: feature_id '{fid}' appears twice",
                                  hint="give every feature a unique feature_id")
        seen.add(fid)


def _check_weights(weights: dict[str, float] | None) -> dict[str, float]:
    if weights is None:
        return dict(DEFAULT_WEIGHTS)
    unknown = sorted(set(weights) - set(COMPONENTS))
    if unknown:
        raise ValidationError(f"weights has unknown component(s) {unknown}; known: {list(COMPONENTS)}")
    out = {c: 0.0 for c in COMPONENTS}
    for c, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValidationError(f"weights['{c}'] = {w!r}; use a finite number >= 0")
        out[c] = float(w)
    if not any(out.values()):
        raise ValidationError(f"weights {weights!r} are all zero; give at least one component a positive weight")
    return out


def combined_similarity(
    left: Fingerprints, right: Fingerprints, weights: dict[str, float]
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-component and combined similarity of every left feature with every right feature.

    Args:
        weights: component → weight; components with weight 0 do not count.

    Returns:
        (combined_LR, sims, masks): combined similarity (-inf where the pair shares no
        component), per-component similarity matrices (NaN where not comparable) and
        per-component masks of comparable pairs.
    """
    shape = (len(left), len(right))
    num_LR, den_LR = np.zeros(shape), np.zeros(shape)
    sims: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    for c in COMPONENTS:
        if c == "causal":
            sims[c], masks[c] = left.causal.similarity(right.causal)
        else:
            sims[c], masks[c] = left.components[c].similarity(right.components[c])
        w = weights.get(c, 0.0)
        if w > 0:
            num_LR += w * np.where(masks[c], sims[c], 0.0)
            den_LR += w * masks[c]
    combined_LR = np.full(shape, -np.inf)
    np.divide(num_LR, den_LR, out=combined_LR, where=den_LR > 0)
    return combined_LR, sims, masks


def _signs(left: Fingerprints, i: int, right: Fingerprints, j: int) -> tuple[bool | None, str | None]:
    """Whether the two features push the criterion the same way, and which evidence said so.

    The signed effect on the criterion (measured ``causal.mean_effect`` or imported
    ``causal_effects.criterion``) decides when both features have a nonzero one; else the
    reports' ``direction`` fields.
    """
    (a, field_a), (b, field_b) = left.causal.criterion_effect(i), right.causal.criterion_effect(j)
    if a is not None and b is not None and a != 0 and b != 0:
        basis = field_a if field_a == field_b else f"left {field_a}, right {field_b}"
        return bool(np.sign(a) == np.sign(b)), basis
    if left.directions[i] is not None and right.directions[j] is not None:
        return left.directions[i] == right.directions[j], "direction"
    return None, None


def _pair_provenance(c: str, left: Fingerprints, i: int, right: Fingerprints, j: int, synthetic: bool) -> str:
    if synthetic:
        return "synthetic"
    sources = (left.component(c).sources[i], right.component(c).sources[j])
    return "imported" if "imported" in sources else _PROVENANCE[c]


def _check_min_similarity(min_similarity: float) -> None:
    if isinstance(min_similarity, bool) or not isinstance(min_similarity, (int, float)) \
            or not -1.0 <= min_similarity <= 1.0:
        raise ValidationError(f"min_similarity = {min_similarity!r}; use a number in [-1, 1]")


def _fingerprints(
    left: dict[str, Any], right: dict[str, Any], w: dict[str, float], encoder: Encoder | None, use_text: bool
) -> tuple[Fingerprints, Fingerprints, list[str], list[str], Encoder | None]:
    """Fingerprint both reports; sets ``w['text']`` to 0 when text cannot be used.

    The default encoder (all-MiniLM-L6-v2 behind the embedding cache) loads only if both
    reports have text and some text is not cached yet.

    Returns:
        (left_fingerprints, right_fingerprints, shared_probes, notes, encoder_used)
    """
    notes: list[str] = []
    if not use_text:
        if w["text"] > 0:
            notes.append("text: not used (use_text=False)")
        w["text"] = 0.0
    if w["text"] > 0 and encoder is None:
        encoder = _text.default_text_encoder()
    try:
        lf, rf, shared, pair_notes = fingerprint_pair(left, right, encoder=encoder if w["text"] > 0 else None)
    except MissingDependencyError as exc:
        notes.append(f"text: dropped, the sentence encoder could not load: {exc}")
        w["text"] = 0.0
        lf, rf, shared, pair_notes = fingerprint_pair(left, right, encoder=None)
    return lf, rf, shared, notes + pair_notes, encoder if w["text"] > 0 else None


def _component_notes(
    w: dict[str, float], used: list[str], masks: dict[str, np.ndarray], notes: list[str],
    lf: Fingerprints, rf: Fingerprints,
) -> list[str]:
    """Notes on what each component compared, which were left out and why, and the weights."""
    out: list[str] = []
    if w["causal"] > 0:
        out += causal_notes(lf.causal, rf.causal, masks["causal"])
    said = notes + out
    for c in COMPONENTS:
        if w[c] > 0 and c not in used and not any(n.startswith(f"{c}:") for n in said):
            out.append(f"{c}: dropped, no pair of features has comparable {c} evidence "
                       "(absent on one side, constant, or of different lengths)")
    if used and len(used) < sum(v > 0 for v in w.values()):
        total = sum(w[c] for c in used)
        out.append("weights renormalised over the components used: "
                   + ", ".join(f"{c} {w[c] / total:.3g}" for c in used))
    if used and any(not masks[c].all() for c in used):
        out.append("per pair, weights are renormalised over the components both features have")
    if not used:
        out.append("no component could be compared between the reports; nothing was matched")
    return out


def _assign(combined_LR: np.ndarray) -> tuple[list[int], list[int]]:
    """The one-to-one assignment of largest total similarity (pairs sharing no component excluded)."""
    finite_LR = np.isfinite(combined_LR)
    if not (combined_LR.size and finite_LR.any()):
        return [], []
    # imported here: scipy.optimize takes ~0.3 s, paid by every importer of matching (inspect's features backend)
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(np.where(finite_LR, combined_LR, _UNMATCHABLE), maximize=True)
    return rows.tolist(), cols.tolist()


def _match_entry(
    i: int, j: int, lf: Fingerprints, rf: Fingerprints, combined_LR: np.ndarray,
    sims: dict[str, np.ndarray], masks: dict[str, np.ndarray], used: list[str], synthetic: bool,
) -> dict[str, Any]:
    """One assigned pair as it appears in ``matches``."""
    pair_used = [c for c in used if masks[c][i, j]]
    agree, basis = _signs(lf, i, rf, j)
    mutual = combined_LR[i].argmax() == j and combined_LR[:, j].argmax() == i
    return {
        "left_feature_id": lf.feature_ids[i],
        "right_feature_id": rf.feature_ids[j],
        "left_label": lf.labels[i],
        "right_label": rf.labels[j],
        "similarity": float(combined_LR[i, j]),
        "components": {c: float(sims[c][i, j]) if c in pair_used else None for c in COMPONENTS},
        "components_used": pair_used,
        "components_dropped": [c for c in COMPONENTS if c not in pair_used],
        "causal_measures": lf.causal.pair_measures(i, rf.causal, j) if "causal" in pair_used else [],
        "mutual_nearest": bool(mutual),
        "signed_effects_agree": agree,
        "signed_effects_basis": basis,
        "provenance": {c: _pair_provenance(c, lf, i, rf, j, synthetic) for c in pair_used},
    }


def _text_settings(encoder: Encoder | None) -> dict[str, Any] | None:
    """Which encoder embedded the texts and how many embeddings came from its cache."""
    if encoder is None:
        return None
    if isinstance(encoder, _text.CachedEncoder):
        return {"encoder": encoder.name, "cache_dir": str(encoder.cache_dir),
                "from_cache": encoder.hits, "encoded": encoder.misses}
    return {"encoder": getattr(encoder, "name", None), "cache_dir": None, "from_cache": 0, "encoded": None}


def match_reports(
    left: dict[str, Any],
    right: dict[str, Any],
    *,
    min_similarity: float = 0.3,
    weights: dict[str, float] | None = None,
    encoder: Encoder | None = None,
    use_text: bool = True,
) -> dict[str, Any]:
    """Match the features of two inspection reports one to one.

    Args:
        left, right: inspection reports (``interp-agent.inspection_report.v1`` dicts).
        min_similarity: assigned pairs below this combined similarity (in [-1, 1]) are dropped.
        weights: component → weight; None means ``DEFAULT_WEIGHTS``. A dict given replaces
            the defaults: components it leaves out get weight 0.
        encoder: sentence encoder for the text component, used as given (no disk cache).
            None means all-MiniLM-L6-v2 behind the on-disk embedding cache, loaded (about
            7 s, once per process) only when both reports have text and some of it is not
            cached. If it cannot load, text is dropped with a note.
        use_text: False skips the text component (and the encoder) altogether.

    Returns:
        The ``interp-agent.matches.v1`` result dict; write it with :func:`write_matches`.

    Raises:
        ValidationError: a report is malformed (the message names the side), or a setting is invalid.
    """
    validate_report(left, "left")
    validate_report(right, "right")
    _check_min_similarity(min_similarity)
    w = _check_weights(weights)
    lf, rf, shared, notes, text_encoder = _fingerprints(left, right, w, encoder, use_text)
    combined_LR, sims, masks = combined_similarity(lf, rf, w)
    used = [c for c in COMPONENTS if w[c] > 0 and masks[c].any()]
    notes += _component_notes(w, used, masks, notes, lf, rf)

    synthetic = bool(left.get("synthetic") or right.get("synthetic"))
    matches = [
        _match_entry(i, j, lf, rf, combined_LR, sims, masks, used, synthetic)
        for i, j in zip(*_assign(combined_LR), strict=True)
        if np.isfinite(combined_LR[i, j]) and combined_LR[i, j] >= min_similarity
    ]
    order = {fid: k for k, fid in enumerate(lf.feature_ids)}
    matches.sort(key=lambda m: (-m["similarity"], order[m["left_feature_id"]]))
    notes += _criterion_notes(left, right)
    text_settings = _text_settings(text_encoder if "text" in used else None)
    return {
        "schema_version": MATCHES_SCHEMA,
        "provenance": _match_provenance(left, right, synthetic),
        "settings": _settings(w, min_similarity, use_text, text_settings),
        "components_used": used,
        "notes": notes,
        "summary": _match_summary(lf, rf, shared, matches),
        "matches": matches,
        **_unmatched(lf, rf, matches),
    }


def _match_provenance(left: dict[str, Any], right: dict[str, Any], synthetic: bool) -> dict[str, Any]:
    """The result's ``provenance``: this run's, plus both reports' models and criteria and whether any is synthetic."""
    return run_provenance({}) | {
        "left_model": left.get("model"), "right_model": right.get("model"),
        "left_criterion": left.get("criterion"), "right_criterion": right.get("criterion"),
        "synthetic": synthetic,
    }


def _criterion_notes(left: dict[str, Any], right: dict[str, Any]) -> list[str]:
    """A note when the two reports were made for different criteria, else none."""
    if isinstance(left.get("criterion"), str) and isinstance(right.get("criterion"), str) \
            and left["criterion"] != right["criterion"]:
        return ["the reports were made for different criteria; causal effects and directions may not be comparable"]
    return []


def _settings(
    w: dict[str, float], min_similarity: float, use_text: bool, text_settings: dict[str, Any] | None
) -> dict[str, Any]:
    """The result's ``settings``: weights, threshold, text encoder and how similarity and assignment work."""
    return {
        "weights": w, "min_similarity": float(min_similarity), "use_text": use_text,
        "text_encoder": text_settings["encoder"] if text_settings else None,
        "text_embeddings": text_settings,
        "causal_similarity": CAUSAL_FORMULA,
        "assignment": "hungarian (scipy.optimize.linear_sum_assignment, maximise)",
    }


def _match_summary(
    lf: Fingerprints, rf: Fingerprints, shared: list[str], matches: list[dict[str, Any]]
) -> dict[str, Any]:
    """The result's ``summary``: feature, probe and match counts, mean similarity, mutual and sign agreement."""
    sims_kept = [m["similarity"] for m in matches]
    return {
        "n_left": len(lf), "n_right": len(rf), "n_shared_probes": len(shared),
        "n_matches": len(matches),
        "mean_similarity": float(np.mean(sims_kept)) if sims_kept else None,
        "n_mutual_nearest": sum(m["mutual_nearest"] for m in matches),
        "n_sign_agree": sum(m["signed_effects_agree"] is True for m in matches),
    }


def _unmatched(lf: Fingerprints, rf: Fingerprints, matches: list[dict[str, Any]]) -> dict[str, list[str]]:
    """``unmatched_left`` and ``unmatched_right``: each side's feature ids no match uses, in report order."""
    matched_left = {m["left_feature_id"] for m in matches}
    matched_right = {m["right_feature_id"] for m in matches}
    return {
        "unmatched_left": [f for f in lf.feature_ids if f not in matched_left],
        "unmatched_right": [f for f in rf.feature_ids if f not in matched_right],
    }


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(result: dict[str, Any]) -> str:
    """The markdown written beside the matches JSON: summary, one table row per match, unmatched features, notes."""
    prov, summary = result["provenance"], result["summary"]
    lines = ["# Feature matches", "",
             f"Left model: {_cell(prov.get('left_model'))} · right model: {_cell(prov.get('right_model'))}",
             f"Criterion: {_cell(prov.get('left_criterion'))}"
             + ("" if prov.get("left_criterion") == prov.get("right_criterion")
                else f" (left) · {_cell(prov.get('right_criterion'))} (right)"), ""]
    if prov.get("synthetic"):
        lines += ["**Synthetic:** at least one report was built from generated data, not a model.", ""]
    lines += [(f"{summary['n_matches']} matches between {summary['n_left']} left and {summary['n_right']} "
               f"right features; mean similarity {_cell(summary['mean_similarity'])}; "
               f"{summary['n_mutual_nearest']} mutual nearest; {summary['n_sign_agree']} with agreeing signs."),
              "", "Components used: " + (", ".join(result["components_used"]) or "none"), ""]
    lines += _match_table(result)
    lines.append("")
    for side in ("left", "right"):
        unmatched = result[f"unmatched_{side}"]
        lines.append(f"Unmatched {side} ({len(unmatched)}): " + (", ".join(_cell(f) for f in unmatched) or "none"))
    if result["notes"]:
        lines += ["", "## Notes", "", *(f"- {n}" for n in result["notes"])]
    return "\n".join(lines) + "\n"


def _match_table(result: dict[str, Any]) -> list[str]:
    """The table of matches: per component for fingerprint matches; correlations and the null for activation ones."""
    if result.get("method") == "activations":
        null = result.get("null") or {}
        head = ["Left feature", "Right feature", "Correlation (assignment half)", "Held-out correlation",
                f"Above null ({_cell(null.get('threshold', result['summary'].get('null_threshold')))})",
                "Mutual nearest"]
        rows = [[m["left_feature_id"], m["right_feature_id"], m["similarity"], m.get("held_out_similarity"),
                 m.get("above_null"), m["mutual_nearest"]] for m in result["matches"]]
    else:
        head = ["Left feature", "Left label", "Right feature", "Right label", "Similarity",
                *COMPONENTS, "Mutual nearest", "Signed effects agree"]
        rows = [[m["left_feature_id"], m["left_label"], m["right_feature_id"], m["right_label"],
                 m["similarity"], *(m["components"].get(c) for c in COMPONENTS), m["mutual_nearest"],
                 m["signed_effects_agree"]] for m in result["matches"]]
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows)]


def matches_paths(out: str | Path) -> tuple[Path, Path]:
    """Where :func:`write_matches` writes for ``out``: the JSON file and the markdown named after it.

    ``x/left_vs_right.json`` gives ``x/left_vs_right.md``; an existing folder ``x`` gives
    ``x/matches.json`` and ``x/matches.md``. So two matches into one folder under
    different names keep both markdown files.

    Raises:
        ValidationError: ``out`` ends in ``.md`` (the JSON would overwrite the markdown).
    """
    json_path = Path(out)
    if json_path.is_dir():
        json_path = json_path / "matches.json"
    if json_path.suffix.lower() == ".md":
        raise ValidationError(f"out = {str(out)!r} ends in .md, the name of the markdown written beside it",
                              hint="name the JSON file, e.g. left_vs_right.json")
    return json_path, json_path.with_suffix(".md")


def write_matches(result: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Write ``out`` (the matches JSON) and the markdown named after it (``.md``), each atomically.

    Args:
        result: what :func:`match_reports` returned.
        out: path of the JSON file, e.g. ``x/left_vs_right.json`` (markdown:
            ``x/left_vs_right.md``); an existing folder means ``out/matches.json``.

    Returns:
        (json_path, markdown_path), as :func:`matches_paths` names them.

    Raises:
        ValidationError: ``result`` is not a matches result, or ``out`` ends in ``.md``.
    """
    if not isinstance(result, dict) or result.get("schema_version") != MATCHES_SCHEMA:
        raise ValidationError(f"result is not a '{MATCHES_SCHEMA}' dict", hint="pass what match_reports returned")
    json_path, md_path = matches_paths(out)
    write_json(json_path, result)
    write_text(md_path, render_markdown(result))
    return json_path, md_path
