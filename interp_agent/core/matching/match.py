"""Cross-model feature matching: pair the features of two inspection reports one to one.

Each component (activation, decoder, text, causal) gives a full similarity matrix; the
combined similarity of a pair is the weighted mean over the components *both* features
have, so a missing component renormalises the weights instead of counting as zero:

    S(i, j) = sum_c w_c m_c(i, j) S_c(i, j) / sum_c w_c m_c(i, j)

Pairs that share no component are never matched. The Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``) picks the one-to-one assignment of largest
total similarity; assigned pairs below ``min_similarity`` are dropped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from interp_agent.core.artifacts import run_provenance, schema_version, write_json, write_text
from interp_agent.core.errors import InputFileError, MissingDependencyError, ValidationError
from interp_agent.core.matching import text as _text
from interp_agent.core.matching.fingerprints import (
    COMPONENTS,
    Fingerprints,
    fingerprint_pair,
)

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
        sims[c], masks[c] = left.components[c].similarity(right.components[c])
        w = weights.get(c, 0.0)
        if w > 0:
            num_LR += w * np.where(masks[c], sims[c], 0.0)
            den_LR += w * masks[c]
    combined_LR = np.full(shape, -np.inf)
    np.divide(num_LR, den_LR, out=combined_LR, where=den_LR > 0)
    return combined_LR, sims, masks


def _signs(left: Fingerprints, i: int, right: Fingerprints, j: int) -> tuple[bool | None, str | None]:
    """Whether the two features push the criterion the same way, and which evidence said so."""
    a, b = left.mean_effects[i], right.mean_effects[j]
    if np.isfinite(a) and np.isfinite(b) and a != 0 and b != 0:
        return bool(np.sign(a) == np.sign(b)), "causal.mean_effect"
    if left.directions[i] is not None and right.directions[j] is not None:
        return left.directions[i] == right.directions[j], "direction"
    return None, None


def _pair_provenance(c: str, left: Fingerprints, i: int, right: Fingerprints, j: int, synthetic: bool) -> str:
    if synthetic:
        return "synthetic"
    sources = (left.components[c].sources[i], right.components[c].sources[j])
    return "imported" if "imported" in sources else _PROVENANCE[c]


def match_reports(
    left: dict[str, Any],
    right: dict[str, Any],
    *,
    min_similarity: float = 0.3,
    weights: dict[str, float] | None = None,
    encoder: _text.TextEncoder | None = None,
    use_text: bool = True,
) -> dict[str, Any]:
    """Match the features of two inspection reports one to one.

    Args:
        left, right: inspection reports (``interp-agent.inspection_report.v1`` dicts).
        min_similarity: assigned pairs below this combined similarity (in [-1, 1]) are dropped.
        weights: component → weight; None means ``DEFAULT_WEIGHTS``. A dict given replaces
            the defaults: components it leaves out get weight 0.
        encoder: sentence encoder for the text component; None loads all-MiniLM-L6-v2
            (about 7 s, once per process). If it cannot load, text is dropped with a note.
        use_text: False skips the text component (and the encoder) altogether.

    Returns:
        The ``interp-agent.matches.v1`` result dict; write it with :func:`write_matches`.

    Raises:
        ValidationError: a report is malformed (the message names the side), or a setting is invalid.
    """
    validate_report(left, "left")
    validate_report(right, "right")
    if isinstance(min_similarity, bool) or not isinstance(min_similarity, (int, float)) \
            or not -1.0 <= min_similarity <= 1.0:
        raise ValidationError(f"min_similarity = {min_similarity!r}; use a number in [-1, 1]")
    w = _check_weights(weights)
    notes: list[str] = []
    if not use_text:
        if w["text"] > 0:
            notes.append("text: not used (use_text=False)")
        w["text"] = 0.0
    if w["text"] > 0 and encoder is None:
        try:
            encoder = _text.load_text_encoder()
        except MissingDependencyError as exc:
            notes.append(f"text: dropped, the sentence encoder could not load: {exc}")
            w["text"] = 0.0
    lf, rf, shared, align_notes = fingerprint_pair(left, right, encoder=encoder if w["text"] > 0 else None)
    notes += align_notes
    combined_LR, sims, masks = combined_similarity(lf, rf, w)

    used = [c for c in COMPONENTS if w[c] > 0 and masks[c].any()]
    for c in COMPONENTS:
        if w[c] > 0 and c not in used and not any(n.startswith(f"{c}:") for n in notes):
            notes.append(f"{c}: dropped, no pair of features has comparable {c} evidence "
                         "(absent on one side, constant, or of different lengths)")
    if used and len(used) < sum(v > 0 for v in w.values()):
        total = sum(w[c] for c in used)
        notes.append("weights renormalised over the components used: "
                     + ", ".join(f"{c} {w[c] / total:.3g}" for c in used))
    if used and any(not masks[c].all() for c in used):
        notes.append("per pair, weights are renormalised over the components both features have")
    if not used:
        notes.append("no component could be compared between the reports; nothing was matched")

    synthetic = bool(left.get("synthetic") or right.get("synthetic"))
    finite_LR = np.isfinite(combined_LR)
    rows, cols = np.array([], dtype=int), np.array([], dtype=int)
    if combined_LR.size and finite_LR.any():
        rows, cols = linear_sum_assignment(np.where(finite_LR, combined_LR, _UNMATCHABLE), maximize=True)
    row_best = combined_LR.argmax(axis=1) if combined_LR.size else np.array([], dtype=int)
    col_best = combined_LR.argmax(axis=0) if combined_LR.size else np.array([], dtype=int)

    matches: list[dict[str, Any]] = []
    for i, j in zip(rows.tolist(), cols.tolist()):
        if not finite_LR[i, j] or combined_LR[i, j] < min_similarity:
            continue
        pair_used = [c for c in used if masks[c][i, j]]
        agree, basis = _signs(lf, i, rf, j)
        matches.append({
            "left_feature_id": lf.feature_ids[i],
            "right_feature_id": rf.feature_ids[j],
            "left_label": lf.labels[i],
            "right_label": rf.labels[j],
            "similarity": float(combined_LR[i, j]),
            "components": {c: float(sims[c][i, j]) if c in pair_used else None for c in COMPONENTS},
            "components_used": pair_used,
            "components_dropped": [c for c in COMPONENTS if c not in pair_used],
            "mutual_nearest": bool(row_best[i] == j and col_best[j] == i),
            "signed_effects_agree": agree,
            "signed_effects_basis": basis,
            "provenance": {c: _pair_provenance(c, lf, i, rf, j, synthetic) for c in pair_used},
        })
    order = {fid: k for k, fid in enumerate(lf.feature_ids)}
    matches.sort(key=lambda m: (-m["similarity"], order[m["left_feature_id"]]))
    matched_left = {m["left_feature_id"] for m in matches}
    matched_right = {m["right_feature_id"] for m in matches}

    if isinstance(left.get("criterion"), str) and isinstance(right.get("criterion"), str) \
            and left["criterion"] != right["criterion"]:
        notes.append("the reports were made for different criteria; causal effects and directions "
                     "may not be comparable")
    sims_kept = [m["similarity"] for m in matches]
    return {
        "schema_version": MATCHES_SCHEMA,
        "provenance": run_provenance({}) | {
            "left_model": left.get("model"), "right_model": right.get("model"),
            "left_criterion": left.get("criterion"), "right_criterion": right.get("criterion"),
            "synthetic": synthetic,
        },
        "settings": {
            "weights": w, "min_similarity": float(min_similarity), "use_text": use_text,
            "text_encoder": getattr(encoder, "name", None) if w["text"] > 0 and encoder is not None else None,
            "assignment": "hungarian (scipy.optimize.linear_sum_assignment, maximise)",
        },
        "components_used": used,
        "notes": notes,
        "summary": {
            "n_left": len(lf), "n_right": len(rf), "n_shared_probes": len(shared),
            "n_matches": len(matches),
            "mean_similarity": float(np.mean(sims_kept)) if sims_kept else None,
            "n_mutual_nearest": sum(m["mutual_nearest"] for m in matches),
            "n_sign_agree": sum(m["signed_effects_agree"] is True for m in matches),
        },
        "matches": matches,
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
    """A readable matches.md: summary, one table row per match, unmatched features and notes."""
    prov, summary = result["provenance"], result["summary"]
    lines = ["# Feature matches", "",
             f"Left model: {_cell(prov.get('left_model'))} · right model: {_cell(prov.get('right_model'))}",
             f"Criterion: {_cell(prov.get('left_criterion'))}"
             + ("" if prov.get("left_criterion") == prov.get("right_criterion")
                else f" (left) · {_cell(prov.get('right_criterion'))} (right)"), ""]
    if prov.get("synthetic"):
        lines += ["**Synthetic:** at least one report was built from generated data, not a model.", ""]
    lines += [f"{summary['n_matches']} matches between {summary['n_left']} left and {summary['n_right']} "
              f"right features; mean similarity {_cell(summary['mean_similarity'])}; "
              f"{summary['n_mutual_nearest']} mutual nearest; {summary['n_sign_agree']} with agreeing signs.",
              "", "Components used: " + (", ".join(result["components_used"]) or "none"), ""]
    head = ["Left feature", "Left label", "Right feature", "Right label", "Similarity",
            *COMPONENTS, "Mutual nearest", "Signed effects agree"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in result["matches"]:
        row = [m["left_feature_id"], m["left_label"], m["right_feature_id"], m["right_label"],
               m["similarity"], *(m["components"].get(c) for c in COMPONENTS), m["mutual_nearest"],
               m["signed_effects_agree"]]
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    lines.append("")
    for side in ("left", "right"):
        unmatched = result[f"unmatched_{side}"]
        lines.append(f"Unmatched {side} ({len(unmatched)}): " + (", ".join(_cell(f) for f in unmatched) or "none"))
    if result["notes"]:
        lines += ["", "## Notes", "", *(f"- {n}" for n in result["notes"])]
    return "\n".join(lines) + "\n"


def write_matches(result: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Write ``out`` (matches.json) and ``matches.md`` in the same folder, each atomically.

    Args:
        result: what :func:`match_reports` returned.
        out: path of the JSON file; an existing folder means ``out/matches.json``.

    Returns:
        (json_path, markdown_path)

    Raises:
        ValidationError: ``result`` is not a matches result.
    """
    if not isinstance(result, dict) or result.get("schema_version") != MATCHES_SCHEMA:
        raise ValidationError(f"result is not a '{MATCHES_SCHEMA}' dict", hint="pass what match_reports returned")
    json_path = Path(out)
    if json_path.is_dir():
        json_path = json_path / "matches.json"
    write_json(json_path, result)
    md_path = write_text(json_path.parent / "matches.md", render_markdown(result))
    return json_path, md_path
