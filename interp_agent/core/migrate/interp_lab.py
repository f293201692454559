"""Reading interp-lab's files: inspection reports, match reports and run configs.

interp-lab (PyPI ``interp-lab``) is the reference package; its users bring their results
here. This module reads its files (it never imports interp-lab) and writes them in our
forms:

    read_interp_lab_report(path)       its report.json → our report dict (interp-agent.inspection_report.v1)
    read_interp_lab_matches(path)      its matches.json → a plain dict of its candidate pairs, labelled imported
    read_interp_lab_run_config(path)   its run config → our RunConfig (steps whose verb maps onto ours)
    import_interp_lab(path, out)       any of the three, written into ``out``

Versions read (each from real files its releases wrote: ``tests/fixtures/interp_lab``):
interp-lab 0.1–0.2 wrote reports and match reports without a ``schema_version``
(:data:`UNVERSIONED`); 1.0–3.1 write ``interp-lab.inspection_report.v1`` and
``interp-lab.match_report.v1``. Run configs carry no version in any release.

What each number becomes. interp-lab's card scores (importance, association, specificity,
causal_effect, stability) are its own heuristic blends in [0, 1], not our statistics: they
are kept under ``imported.scores``, each with its provenance, and our ``association`` and
``causal`` blocks stay empty (interp-agent measured nothing). A card's ``causal_effects``
are interventional only when interp-lab attached intervention evidence (3.x:
``fingerprint.causal_provenance == "intervention"``; older: ``metadata.interventions`` with
a record count); otherwise they are correlational (before 2.3 interp-lab could present a
correlation as ``causal_effects["criterion"]``), and only the interventional ones reach
``imported.causal_effects``, the field matching compares as causal evidence.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from interp_agent.core.artifacts import run_provenance, write_json
from interp_agent.core.errors import InputFileError
from interp_agent.core.formats.interp_lab import MATCH_SCHEMA_V1, REPORT_SCHEMA_V1, interp_lab_kind
from interp_agent.core.inspect.report import FeatureEvidence, InspectionReport

UNVERSIONED = "unversioned (interp-lab 0.1-0.2)"
"""How the schema of a file written before interp-lab 1.0 (no ``schema_version`` key) is named."""
SUPPORTED_REPORT_SCHEMAS: tuple[str, ...] = (REPORT_SCHEMA_V1, UNVERSIONED)
"""Inspection-report schemas read here."""
SUPPORTED_MATCH_SCHEMAS: tuple[str, ...] = (MATCH_SCHEMA_V1, UNVERSIONED)
"""Match-report schemas read here."""
IMPORTED_NOTE = (
    "imported from interp-lab: importance is interp-lab's heuristic blend (kept, not recomputed); interp-agent "
    "measured nothing, so the association and causal blocks are empty; interp-lab's own scores are under "
    "imported.scores with their provenance"
)
"""The first warning of every imported report."""
_SCORES = ("importance", "association", "specificity", "causal_effect", "stability")
_SIGNED_EFFECT = ("signed_causal_effect", "criterion")


def _obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (interp-lab leaves optional blocks out or null)."""
    return value if isinstance(value, dict) else {}


def load_json_file(path: str | Path) -> tuple[Any, Path]:
    """A JSON file's value and its path.

    Raises:
        InputFileError: missing, unreadable or not JSON (with the line).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputFileError(p, "no such file",
                             hint="pass the report.json, matches.json or run config interp-lab wrote")
    try:
        return json.loads(p.read_text(encoding="utf-8-sig")), p
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(p, f"cannot be read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InputFileError(p, f"is not valid JSON: {exc.msg}", line=exc.lineno) from exc


def _check_schema(p: Path, obj: Any, supported: tuple[str, ...], what: str) -> str:
    """The schema of an interp-lab file, checked against the ones read here.

    Raises:
        InputFileError: not an object, or a schema this version of interp-agent does not read.
    """
    if not isinstance(obj, dict):
        raise InputFileError(p, f"expected an interp-lab {what} (a JSON object), found {type(obj).__name__}")
    found = obj.get("schema_version")
    schema = UNVERSIONED if found is None else found
    if schema not in supported:
        raise InputFileError(
            p, f"interp-lab {what} of schema_version {found!r}, which this interp-agent does not read; "
               f"it reads {', '.join(repr(s) for s in supported)}", field="schema_version",
            hint="re-export it with interp-lab 1.0-3.1, or open an issue with the file attached",
        )
    return schema


def read_interp_lab_report(path: str | Path) -> dict[str, Any]:
    """Read an interp-lab inspection report (report.json or its folder) as our report dict.

    Raises:
        InputFileError: missing, not JSON, not an inspection report, of an unknown schema, or a malformed card.
    """
    p = Path(path).expanduser()
    obj, p = load_json_file(p / "report.json" if p.is_dir() else p)
    return convert_interp_lab_report(obj, p)


def convert_interp_lab_report(obj: Any, path: Path) -> dict[str, Any]:
    """Our report dict (``interp-agent.inspection_report.v1``) of an interp-lab report read from ``path``.

    Raises:
        InputFileError: an unknown schema or a malformed field (named).
    """
    schema = _check_schema(path, obj, SUPPORTED_REPORT_SCHEMAS, "inspection report")
    cards = obj.get("cards")
    criterion = obj.get("criterion")
    if not isinstance(cards, list) or not isinstance(criterion, dict) or not isinstance(criterion.get("text"), str):
        raise InputFileError(path, "an interp-lab inspection report needs 'cards' (a list) and 'criterion.text'",
                             field="cards" if not isinstance(cards, list) else "criterion")
    features = tuple(_feature(path, i, card) for i, card in enumerate(cards))
    meta = _obj(obj.get("metadata"))
    tool = _obj(meta.get("tool"))
    synthetic = any(f.source == "toy" for f in features)
    warnings = [IMPORTED_NOTE]
    if synthetic:
        warnings.insert(0, "SYNTHETIC: interp-lab's toy backend generated this evidence; no model was measured")
    n_interventional = sum(f.imported["causal_effects"] is not None for f in features if f.imported)
    report = InspectionReport(
        model=str(obj.get("model", "")), criterion=criterion["text"], backend="interp-lab", synthetic=False,
        provenance=run_provenance({"interp_lab_report": path}) | {"imported_from": {
            "kind": "interp-lab", "schema_version": schema, "file": str(path),
            "interp_lab_version": tool.get("version"), "created_at": obj.get("created_at")}},
        settings={"imported": True}, method={"imported": METHOD_TEXT},
        summary={"n_rows": 0, "n_prompts": 0, "n_features_tested": meta.get("feature_count", len(features)),
                 "n_intervention_rows": 0, "n_control_rows": 0, "n_imported": len(features),
                 "n_imported_interventional": n_interventional},
        warnings=tuple(warnings), controls=None, live=None, probe_prompts=(), features=features,
    )
    return (report.marked_synthetic() if synthetic else report).to_json()


METHOD_TEXT = (
    "read from an interp-lab report: label, explanation, examples, layer, decoder and activation signatures "
    "copied; interp-lab's scores kept under imported.scores with their provenance (association: correlational; "
    "causal_effect and causal_effects: interventional only when interp-lab attached intervention evidence); its "
    "hash text vectors and derived causal vectors dropped (matching embeds label and explanation itself)"
)


def _number(path: Path, where: str, value: Any, *, required: bool = False) -> float | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputFileError(path, f"{where} must be a finite number, got {value!r}", field=where)
    return float(value)


def _vector(path: Path, where: str, value: Any) -> list[float] | None:
    if value is None or value == []:
        return None
    if not isinstance(value, list):
        raise InputFileError(path, f"{where} must be a list of numbers, got {type(value).__name__}", field=where)
    return [float(_number(path, f"{where}[{k}]", v, required=True) or 0.0) for k, v in enumerate(value)]


def _interventional(card: Mapping[str, Any]) -> bool:
    """Did interp-lab attach intervention evidence to this card (so its causal numbers are interventional)?"""
    fingerprint = _obj(card.get("fingerprint"))
    stated = fingerprint.get("causal_provenance")
    if stated is not None:  # 2.3+: interp-lab says which
        return stated == "intervention"
    meta = _obj(card.get("metadata"))
    summary = meta.get("interventions")
    count = summary.get("count") if isinstance(summary, dict) else None
    return isinstance(count, (int, float)) and count > 0


def _feature(path: Path, i: int, card: Any) -> FeatureEvidence:
    """One interp-lab card as our feature row (rank = its position, best first)."""
    where = f"cards[{i}]"
    if not isinstance(card, dict) or not isinstance(card.get("feature_id"), str) or not card["feature_id"]:
        raise InputFileError(path, f"{where} has no string 'feature_id'", field=f"{where}.feature_id")
    fingerprint = _obj(card.get("fingerprint"))
    effects_raw = card.get("causal_effects") or {}
    if not isinstance(effects_raw, dict):
        raise InputFileError(path, f"{where}.causal_effects must be an object", field=f"{where}.causal_effects")
    effects = {k: v for k, v in effects_raw.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    interventional = _interventional(card)
    scores = {name: {"value": _number(path, f"{where}.{name}", card.get(name)),
                     "provenance": _score_provenance(name, interventional)} for name in _SCORES}
    signed = next((effects[k] for k in _SIGNED_EFFECT if k in effects), None)
    measures = None
    if interventional and signed is not None:
        measures = {"criterion": float(signed)} | (
            {"side_effect": float(effects["side_effect"])} if "side_effect" in effects else {})
    direction_from = signed if interventional else effects.get("signed_association")
    meta = _obj(card.get("metadata"))
    decoder = _vector(path, f"{where}.fingerprint.decoder_signature", fingerprint.get("decoder_signature")) or \
        _vector(path, f"{where}.metadata.decoder_signature", meta.get("decoder_signature"))
    examples = [e for e in card.get("examples") or [] if isinstance(e, str)]
    layer = card.get("layer")
    imported = {
        "provenance": "imported", "source": "interp-lab",
        "activation_signature": _vector(path, f"{where}.fingerprint.activation_signature",
                                        fingerprint.get("activation_signature")),
        "causal_effects": measures, "examples": examples or None, "scores": scores,
        "interp_lab_causal_effects": {"values": effects,
                                      "provenance": "interventional" if interventional else "correlational"},
        "interventions": meta.get("interventions"), "causal_provenance": fingerprint.get("causal_provenance"),
    }
    return FeatureEvidence(
        feature_id=card["feature_id"], rank=i + 1, importance=scores["importance"]["value"] or 0.0,
        direction=None if not direction_from else ("promotes" if direction_from > 0 else "suppresses"),
        label=card.get("label") or None, explanation=card.get("explanation") or None,
        layer=layer if isinstance(layer, int) and not isinstance(layer, bool) else None,
        source=str(card.get("source") or "interp-lab"), association=None, specificity=None, stability=None,
        causal=None, importance_components={"interp_lab_importance": scores["importance"]},
        provenance={"association": None, "causal": None, "examples": "imported", "imported": "imported"},
        examples=tuple({"prompt_id": None, "text": t, "token_index": None, "token": None, "activation": None,
                        "criterion_score": None} for t in examples),
        histogram=None, probe_activations=None, decoder_signature=decoder, imported=imported,
        notes=(_card_note(interventional, fingerprint.get("causal_provenance")),),
    )


def _score_provenance(name: str, interventional: bool) -> str:
    if name == "association":
        return "correlational"
    if name in ("causal_effect", "specificity"):
        return "interventional" if interventional else "correlational"
    return "imported"  # importance and stability: interp-lab's heuristic blends of the others


def _card_note(interventional: bool, stated: Any) -> str:
    if interventional:
        return "interp-lab attached intervention evidence: its causal numbers are imported interventional evidence"
    why = f"interp-lab says causal_provenance={stated!r}" if stated is not None else \
        "this interp-lab version did not say, and no intervention records were attached"
    return f"no intervention evidence ({why}): interp-lab's causal_effect/causal_effects are correlational here"


def read_interp_lab_matches(path: str | Path) -> dict[str, Any]:
    """Read an interp-lab match report (matches.json) as a plain dict of its pairs, labelled imported.

    Raises:
        InputFileError: missing, not JSON, an unknown schema or a malformed pair.
    """
    obj, p = load_json_file(path)
    schema = _check_schema(p, obj, SUPPORTED_MATCH_SCHEMAS, "match report")
    pairs = obj.get("matches")
    if not isinstance(pairs, list):
        raise InputFileError(p, "an interp-lab match report needs 'matches' (a list)", field="matches")
    out = []
    for k, m in enumerate(pairs):
        if not isinstance(m, dict) or not all(isinstance(m.get(s), str) for s in ("left_feature_id",
                                                                                   "right_feature_id")):
            raise InputFileError(p, f"matches[{k}] needs left_feature_id and right_feature_id", field=f"matches[{k}]")
        out.append({"left": m["left_feature_id"], "right": m["right_feature_id"],
                    "score": _number(p, f"matches[{k}].score", m.get("score"), required=True),
                    "components": m.get("components") or {}, "left_label": m.get("left_label"),
                    "right_label": m.get("right_label"), "left_signed_effect": m.get("left_signed_effect"),
                    "right_signed_effect": m.get("right_signed_effect")})
    return {"schema_version": "interp-agent.imported_matches.v1", "left_model": obj.get("left_model"),
            "right_model": obj.get("right_model"), "pairs": out,
            "provenance": run_provenance({"interp_lab_matches": p}) | {"imported_from": {
                "kind": "interp-lab", "schema_version": schema, "file": str(p)}},
            "note": "interp-lab's similarity scores (its hash text embedder and its component blend), imported; "
                    "recompute with interp-agent match on the imported reports for our measured similarity"}


def import_interp_lab(path: str | Path, out: str | Path) -> dict[str, Any]:
    """Convert an interp-lab report, match report or run config into our form, written into folder ``out``.

    Returns:
        ``{"kind", "schema_version", "paths": {name: path}, ...}`` with counts.

    Raises:
        InputFileError: not an interp-lab file, an unknown schema, or a step that does not map.
    """
    from interp_agent.core.migrate.interp_lab_runs import convert_run_config

    p = Path(path).expanduser()
    obj, p = load_json_file(p / "report.json" if p.is_dir() else p) if p.suffix.lower() not in (
        ".toml", ".yaml", ".yml") else (None, p)
    kind = "run_config" if obj is None else interp_lab_kind(obj)
    out_dir = Path(out).expanduser()
    if kind == "report":
        from interp_agent.core.reports import write_report

        report = convert_interp_lab_report(obj, p)
        paths = {k: str(v) for k, v in write_report(report, out_dir).items()}
        return {"kind": "report", "schema_version": report["provenance"]["imported_from"]["schema_version"],
                "n_features": len(report["features"]), "synthetic": report["synthetic"], "paths": paths}
    if kind == "matches":
        doc = read_interp_lab_matches(p)
        return {"kind": "matches", "schema_version": doc["provenance"]["imported_from"]["schema_version"],
                "n_pairs": len(doc["pairs"]), "paths": {"matches": str(write_json(out_dir / "matches.json", doc))}}
    if kind == "run_config":
        return convert_run_config(p, out_dir)
    raise InputFileError(p, "is not an interp-lab report, match report or run config",
                         hint="pass the report.json, matches.json or run config (JSON/TOML/YAML) interp-lab wrote")
