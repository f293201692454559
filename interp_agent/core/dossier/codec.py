"""A dossier as a JSON object and back, strictly: unknown or missing keys are errors naming the field path.

The file is meant to be read and edited by hand, so every error says where
(``claims[2].evidence[0].rung``), what was found and what to write instead. Grades are not
stored: they are computed from the evidence each time (:mod:`.grading`), so an edit can never
leave a stale grade behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from interp_agent.core.dossier.model import (
    SCHEMA_VERSION,
    Claim,
    Dossier,
    DossierFieldError,
    Evidence,
    RunRecord,
    RunRef,
)
from interp_agent.core.errors import InputFileError

T = TypeVar("T")

EDIT_HINT = ("fix the field the message names (docs/dossier.md describes every field), or restore the file from "
             "a copy; the dossier tools refuse to overwrite a file they cannot read")


def run_ref_to_dict(ref: RunRef) -> dict[str, Any]:
    """``{run_id, folder, file}``."""
    return {"run_id": ref.run_id, "folder": ref.folder, "file": ref.file}


def evidence_to_dict(ev: Evidence) -> dict[str, Any]:
    """One evidence item as stored."""
    return {"id": ev.id, "rung": ev.rung, "stance": ev.stance, "weak": ev.weak, "summary": ev.summary,
            "numbers": dict(ev.numbers), "provenance": ev.provenance, "tool": ev.tool,
            "run": run_ref_to_dict(ev.run), "filed_at": ev.filed_at, "note": ev.note}


def claim_to_dict(claim: Claim) -> dict[str, Any]:
    """One claim as stored (no grade: see :func:`interp_agent.core.dossier.grading.grade_claim`)."""
    return {"id": claim.id, "kind": claim.kind, "model": claim.model, "feature_id": claim.feature_id,
            "criterion": claim.criterion, "other_model": claim.other_model,
            "other_feature_id": claim.other_feature_id, "explanation": claim.explanation, "text": claim.text,
            "evidence": [evidence_to_dict(ev) for ev in claim.evidence]}


def run_record_to_dict(record: RunRecord) -> dict[str, Any]:
    """One filed run as stored."""
    return {"kind": record.kind, "run": run_ref_to_dict(record.run), "models": list(record.models),
            "backend": record.backend, "filed_at": record.filed_at, "seconds": record.seconds,
            "forward_passes": record.forward_passes, "numbers": dict(record.numbers)}


def dossier_to_dict(dossier: Dossier) -> dict[str, Any]:
    """The dossier as the JSON object of its file."""
    return {"schema_version": dossier.schema_version, "name": dossier.name, "criterion": dossier.criterion,
            "models": list(dossier.models), "created": dossier.created,
            "claims": [claim_to_dict(c) for c in dossier.claims],
            "runs": [run_record_to_dict(r) for r in dossier.runs]}


def graded_dict(dossier: Dossier) -> dict[str, Any]:
    """:func:`dossier_to_dict` with each claim's computed ``grade`` (``{rung, reason, rungs, lowered_from}``)
    beside its evidence; :func:`dossier_from_dict` reads it back, ignoring the grades (they are recomputed)."""
    from interp_agent.core.dossier.grading import grade_claim

    out = dossier_to_dict(dossier)
    for raw, claim in zip(out["claims"], dossier.claims, strict=True):
        raw["grade"] = grade_claim(claim).to_dict()
    return out


INLINE_WIDTH = 100
"""Lists of scalars up to this many characters go on one line (an interval, a list of hookpoints)."""


def dumps(dossier: Dossier) -> str:
    """The dossier file's text: JSON indented by 2, with short lists of scalars on one line, so it reads by hand."""
    return _dump(dossier_to_dict(dossier), "") + "\n"


def _dump(value: Any, pad: str) -> str:
    inner = pad + "  "
    if isinstance(value, dict):
        if not value:
            return "{}"
        rows = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {_dump(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(rows) + f"\n{pad}}}"
    if isinstance(value, list):
        flat = json.dumps(value, ensure_ascii=False, allow_nan=False)
        if not any(isinstance(v, (dict, list)) for v in value) and len(flat) <= INLINE_WIDTH:
            return flat
        return "[\n" + ",\n".join(f"{inner}{_dump(v, inner)}" for v in value) + f"\n{pad}]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


class _Obj:
    """One JSON object being read, at a field path; every error names the path."""

    def __init__(self, raw: Any, path: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
        self.path = path
        if not isinstance(raw, dict):
            raise DossierFieldError(path or "(top level)", f"expected an object, found {type(raw).__name__}")
        unknown = sorted(set(raw) - set(keys) - set(optional))
        if unknown:
            raise DossierFieldError(self.at(unknown[0]), f"unknown field; the fields are {list(keys + optional)}")
        missing = [k for k in keys if k not in raw]
        if missing:
            raise DossierFieldError(self.at(missing[0]), "required field is missing")
        self.raw = raw

    def at(self, key: str) -> str:
        """The path of ``key`` inside this object."""
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, default: Any = None) -> Any:
        """The raw value of ``key``."""
        return self.raw.get(key, default)

    def items(self, key: str) -> list[tuple[str, Any]]:
        """``(path, value)`` of each item of the list at ``key``."""
        value = self.raw.get(key)
        if not isinstance(value, list):
            raise DossierFieldError(self.at(key), f"expected a list, found {type(value).__name__}")
        return [(f"{self.at(key)}[{i}]", v) for i, v in enumerate(value)]

    def build(self, make: Callable[[], T]) -> T:
        """``make()``, with a ValidationError from a constructor turned into one naming this object's path."""
        try:
            return make()
        except DossierFieldError as exc:
            raise exc.under(self.path, hint=EDIT_HINT) from None


def _run_ref(raw: Any, path: str) -> RunRef:
    obj = _Obj(raw, path, ("folder", "file"), ("run_id",))
    return obj.build(lambda: RunRef(obj.get("folder"), obj.get("file"), obj.get("run_id")))


_EVIDENCE_KEYS = ("id", "rung", "stance", "summary", "numbers", "provenance", "tool", "run", "filed_at")


def _evidence(raw: Any, path: str) -> Evidence:
    obj = _Obj(raw, path, _EVIDENCE_KEYS, ("weak", "note"))
    run = _run_ref(obj.get("run"), obj.at("run"))
    return obj.build(lambda: Evidence(
        obj.get("id"), obj.get("rung"), obj.get("stance"), obj.get("summary"), obj.get("numbers"), run,
        obj.get("provenance"), obj.get("tool"), obj.get("filed_at"), obj.get("weak", False), obj.get("note", "")))


def _claim(raw: Any, path: str) -> Claim:
    obj = _Obj(raw, path, ("id", "kind", "model", "feature_id", "text", "evidence"),
               ("criterion", "other_model", "other_feature_id", "explanation", "grade"))  # grade: derived, ignored
    evidence = tuple(_evidence(v, p) for p, v in obj.items("evidence"))
    return obj.build(lambda: Claim(
        obj.get("id"), obj.get("kind"), obj.get("model"), obj.get("feature_id"), obj.get("text"),
        obj.get("criterion"), obj.get("other_model"), obj.get("other_feature_id"), obj.get("explanation"),
        evidence))


def _run_record(raw: Any, path: str) -> RunRecord:
    obj = _Obj(raw, path, ("kind", "run", "models", "filed_at"), ("backend", "seconds", "forward_passes", "numbers"))
    run = _run_ref(obj.get("run"), obj.at("run"))
    models = obj.get("models")
    if not isinstance(models, list):
        raise DossierFieldError(obj.at("models"), f"expected a list of model names, found {models!r}")
    return obj.build(lambda: RunRecord(run, obj.get("kind"), tuple(models), obj.get("filed_at"),
                                       obj.get("backend"), obj.get("seconds"), obj.get("forward_passes"),
                                       obj.get("numbers") or {}))


def _dossier(raw: Any) -> Dossier:
    obj = _Obj(raw, "", ("schema_version", "name", "created", "claims"), ("criterion", "models", "runs"))
    if obj.get("schema_version") != SCHEMA_VERSION:
        raise DossierFieldError("schema_version", f"found {obj.get('schema_version')!r}; this version reads "
                                f"'{SCHEMA_VERSION}'")
    models = obj.get("models") or []
    if not isinstance(models, list):
        raise DossierFieldError("models", f"expected a list of model names, found {models!r}")
    claims = tuple(_claim(v, p) for p, v in obj.items("claims"))
    runs = tuple(_run_record(v, p) for p, v in (obj.items("runs") if "runs" in obj.raw else []))
    return obj.build(lambda: Dossier(obj.get("name"), obj.get("created"), obj.get("criterion"), tuple(models),
                                     claims, runs))


def dossier_from_dict(raw: Any, *, source: str | Path | None = None) -> Dossier:
    """Parse a dossier's JSON object strictly.

    Raises:
        InputFileError: (``source`` given) naming the file and the field path, with what to do.
        ValidationError: (no ``source``) naming the field path.
    """
    try:
        return _dossier(raw)
    except DossierFieldError as exc:
        if source is None:
            raise
        raise InputFileError(source, exc.detail, field=exc.field, hint=EDIT_HINT) from None
