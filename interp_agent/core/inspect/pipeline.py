"""The shared inspect pipeline: backend evidence -> causal summary -> ranking -> cards -> report."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from interp_agent.core.artifacts import run_provenance
from interp_agent.core.errors import ValidationError, arg
from interp_agent.core.formats.features import FeatureRecord, read_features
from interp_agent.core.inspect.backends import Evidence, get_backend
from interp_agent.core.inspect.report import InspectionReport
from interp_agent.core.inspect.request import InspectRequest
from interp_agent.core.inspect.semantic import SEMANTIC_ONLY_WARNING, Ranked, rank_feature_dump
from interp_agent.core.progress import Progress
from interp_agent.core.ranking.causal import CausalEvidence

FILES_SYNTHETIC_NOTE = "SYNTHETIC: the input files say they are synthetic; no model was measured"
"""The first warning of a report whose input files are labelled synthetic."""


def run_inspection(
    request: InspectRequest, *, out: str | Path | None = None, progress: Progress | None = None
) -> tuple[InspectionReport, dict[str, Any], dict[str, Path]]:
    """Gather, rank and report; write report.json/.md/.html into ``out`` when given.

    Returns:
        The report, its v1 JSON object, and the written files by name.
    """
    from interp_agent.core.preflight import check_inspect_inputs

    backend = get_backend(request.backend_name)
    if out is None and backend.needs_out:
        raise ValidationError(backend.needs_out)
    check_inspect_inputs(request)  # files, prompt sets, hookpoints and SAE folders, before any model loads
    evidence = backend.gather(request, None if out is None else Path(out), progress)
    causal = _causal(request, evidence)
    feature_info = None
    if evidence.features is not None:
        feature_info = {f.feature_id: f for f in read_features(evidence.features)}
    ranked = _rank(request, evidence, causal, feature_info, progress)
    if backend.refine is not None:
        ranked = backend.refine(ranked, evidence)
    if feature_info is not None:
        ranked = backend.attach_cards(ranked, feature_info, evidence.records is not None, request.config.n_examples)
    report = build_report(request, evidence, ranked, causal, feature_info)
    report_json = report.to_json()
    paths = dict(evidence.paths)
    if out is not None:
        from interp_agent.core.reports import write_report

        paths |= write_report(report_json, out)
    return report, report_json, paths


def _causal(request: InspectRequest, evidence: Evidence) -> CausalEvidence | None:
    from interp_agent.core.formats.interventions import read_interventions
    from interp_agent.core.ranking import summarise_interventions

    if evidence.interventions is None:
        return None
    rows = [row for path in evidence.interventions for row in read_interventions(path)]  # every file, pooled
    return summarise_interventions(
        rows, evidence.criterion,
        allow_criterion_mismatch=request.allow_intervention_criterion_mismatch, model=request.model,
    )


def _rank(
    request: InspectRequest, evidence: Evidence, causal: CausalEvidence | None,
    feature_info: Mapping[str, FeatureRecord] | None, progress: Progress | None,
) -> Ranked:
    if evidence.rank_by == "semantic":
        if feature_info is None:
            raise ValidationError(f"the features backend needs {arg('features')} (feature JSONL)")
        return rank_feature_dump(list(feature_info.values()), evidence.criterion, request.config, causal,
                                 caveat=evidence.caveat or SEMANTIC_ONLY_WARNING)
    from interp_agent.core.ranking import RecordsSource, rank_records

    if evidence.records is None:
        raise ValidationError(
            f"the records backend needs {arg('records')} (activation records JSONL or Parquet folder)")
    source = RecordsSource(evidence.records)
    try:
        body = rank_records(source, request.config, evidence=causal,
                            feature_info=None if feature_info is None else dict(feature_info), progress=progress)
    finally:
        source.close()
    return Ranked.from_body(body)


def build_report(
    request: InspectRequest, evidence: Evidence, ranked: Ranked, causal: CausalEvidence | None,
    feature_info: Mapping[str, FeatureRecord] | None,
) -> InspectionReport:
    """The report of a ranking: warnings in order of importance, provenance, and synthetic labels where due."""
    warnings = [*evidence.warnings, *ranked.warnings, *(causal.warnings if causal else [])]
    if ranked.models_seen and request.model not in ranked.models_seen:
        warnings.append(f"the records name model(s) {list(ranked.models_seen)}, not {request.model!r}")
    note = evidence.synthetic_note
    if note is None and (
        ranked.synthetic_input
        or (causal is not None and causal.synthetic)
        or any(f.extra.get("synthetic") is True for f in (feature_info or {}).values())
    ):
        note = FILES_SYNTHETIC_NOTE
    if note is not None:
        warnings.insert(0, note)
    alias = {} if request.backend == request.backend_name else {"backend_given": request.backend}
    if alias:
        warnings.append(f"backend {request.backend!r} was given: an alias of {request.backend_name!r}, the name "
                        "this report records")
    live = evidence.live
    report = InspectionReport(
        model=request.model, criterion=evidence.criterion, backend=request.backend_name, synthetic=False,
        provenance=run_provenance({"records": evidence.records, "features": evidence.features} | {
            "interventions" if i == 0 else f"interventions.{i}": p
            for i, p in enumerate(evidence.interventions or ())}),
        settings=request.config.to_json()
        | {"allow_intervention_criterion_mismatch": request.allow_intervention_criterion_mismatch} | alias,
        summary=ranked.summary, method=ranked.method, warnings=tuple(warnings),
        controls=causal.controls if causal else None,
        live=None if live is None else {k: live[k] for k in ("hookpoints", "pooling", "model_info")},
        probe_prompts=ranked.probe_prompts, features=ranked.features,
    )
    return report if note is None else report.marked_synthetic()
