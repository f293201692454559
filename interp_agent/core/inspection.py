"""``inspect``: rank a model's features against a criterion and write the report.

Backends:
- ``records``: activation records (JSONL file or Parquet dataset folder).
- ``features``: a feature JSONL dump; no activations, so ranking uses the similarity of
  labels/explanations to the criterion (semantic) and any intervention evidence.
- ``toy``: generated records with planted features; every number is labelled synthetic.
- ``hf``: a live model (the embedded smollm2-135m, a local folder or a hub id): the
  criterion's prompts are harvested at the requested hookpoints, with a contrast direction
  per hookpoint learned on the calibration split, then ranked like records.
- ``neuronpedia``: feature cards imported from Neuronpedia (refs, URLs; reads the network)
  or SAEDashboard export files, written as feature JSONL into the output folder and ranked
  like the features backend (no criterion measurement), or like records when records are
  given; every card (labels, examples, logit effects, density) is imported.
- ``saelens``: the hf backend with an SAE: a local SAE Lens / sparsify folder (``sae``) or
  a pretrained SAE by SAE Lens release and id; its latents are harvested on the model (at
  the SAE's hookpoint unless ``hookpoints`` says otherwise) and ranked with held-out stats.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from interp_agent.core.artifacts import run_provenance, schema_version
from interp_agent.core.errors import ValidationError
from interp_agent.core.formats.features import FeatureRecord, read_features
from interp_agent.core.formats.interventions import read_interventions, write_interventions
from interp_agent.core.formats.records import write_records
from interp_agent.core.ranking import METHOD, RankingConfig, RecordsSource, rank_records, summarise_interventions
from interp_agent.core.ranking.causal import CausalEvidence
from interp_agent.core.ranking.importance import IMPORTANCE_FORMULA, causal_component, importance
from interp_agent.core.ranking.rank import Progress, imported_block
from interp_agent.core.synthetic import PlantedConfig, planted_interventions, planted_records

Backend = Literal["records", "features", "toy", "hf", "neuronpedia", "saelens"]
BACKENDS: tuple[str, ...] = ("records", "features", "toy", "hf", "neuronpedia", "saelens")


@dataclass(frozen=True, slots=True)
class InspectionResult:
    """What ``inspect`` returns."""

    report: dict[str, Any]
    """The report (as written to report.json)."""
    paths: dict[str, Path]
    """Written files: json, md, html (and toy inputs for the toy backend); empty when out is None."""


def inspect(
    model: str,
    criterion: str,
    *,
    backend: Backend = "records",
    records: str | Path | None = None,
    features: str | Path | None = None,
    interventions: str | Path | None = None,
    out: str | Path | None = None,
    config: RankingConfig | None = None,
    allow_intervention_criterion_mismatch: bool = False,
    progress: Progress | None = None,
    dataset: str | Path | None = None,
    pack: str | None = None,
    hookpoints: list[str] | None = None,
    pooling: str = "last",
    sae: str | Path | None = None,
    neuronpedia: list[str | Path] | None = None,
    saelens_release: str | None = None,
    saelens_id: str | None = None,
) -> InspectionResult:
    """Rank features against ``criterion`` and, when ``out`` is given, write report.json/.md/.html there.

    Args:
        model: model name the evidence belongs to (checked against the records' ``model``).
        criterion: the natural-language criterion.
        backend: ``records``, ``features`` or ``toy``.
        records: activation records (JSONL file or Parquet dataset folder); records backend.
        features: feature JSONL; required by the features backend, adds labels and
            signatures to the records backend.
        interventions: intervention records JSONL (causal evidence).
        out: output folder.
        config: ranking settings.
        allow_intervention_criterion_mismatch: use intervention rows naming another criterion.
        progress: progress callback.
        dataset: scored prompts JSONL (hf backend).
        pack: a built-in criterion pack instead of a dataset (hf backend); its criterion is
            used when ``criterion`` is empty.
        hookpoints: TransformerLens hookpoint names to harvest (hf backend; a default set
            around the middle layers when None).
        pooling: how token activations become one row per prompt: last, mean or max (hf).
        sae: an SAE Lens folder whose latents are added as features (hf backend).
        neuronpedia: Neuronpedia refs (``gpt2-small@6-res_scefr-ajt:650``), feature or API
            URLs, or SAEDashboard export files (neuronpedia backend; refs read the network).
        saelens_release, saelens_id: a pretrained SAE by SAE Lens release and id (saelens
            backend, instead of ``sae``); fetched once, then cached as an SAE Lens folder.

    Raises:
        ValidationError: a missing or contradictory argument.
        InputFileError: a bad input file (names file, line, field).
        EvidenceError: the evidence cannot support a ranking.
    """
    if (not criterion or not criterion.strip()) and not (backend in ("hf", "saelens") and pack):
        raise ValidationError("criterion is empty; describe what the features should relate to")
    if backend not in BACKENDS:
        raise ValidationError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    config = config or RankingConfig()
    paths: dict[str, Path] = {}
    card_warnings: list[str] = []
    if neuronpedia and backend != "neuronpedia":
        raise ValidationError("neuronpedia refs/files are read by the neuronpedia backend; add --backend neuronpedia")
    if backend == "neuronpedia":
        if features is not None or out is None:
            raise ValidationError("the neuronpedia backend writes its imported cards as feature JSONL to --out: "
                                  "give an output folder, and no --features")
        from interp_agent.core.bridges.neuronpedia import cards_for_inspection

        features, _, card_warnings = cards_for_inspection(neuronpedia or [], out, model=model)
        paths["neuronpedia_features"] = Path(features)
    synthetic = backend == "toy"
    if backend == "toy":
        if records is not None:
            raise ValidationError("the toy backend generates its own records; drop --records or use --backend records")
        if out is None:
            raise ValidationError("the toy backend writes its generated records to --out; give an output folder")
        records, toy_interventions = _toy_inputs(model, criterion, Path(out))
        paths["toy_records"] = Path(records)
        if interventions is None:
            interventions = toy_interventions
            paths["toy_interventions"] = Path(toy_interventions)

    if (saelens_release or saelens_id) and backend != "saelens":
        raise ValidationError("--saelens-release/--saelens-id are read by the saelens backend; add --backend saelens")
    if backend == "saelens":
        from interp_agent.core.bridges.saelens import sae_for_inspection, sae_hookpoint

        sae = sae_for_inspection(sae, saelens_release, saelens_id)
        hookpoints = hookpoints or [sae_hookpoint(sae)]
    live = None
    if backend in ("hf", "saelens"):
        if records is not None:
            raise ValidationError(f"the {backend} backend harvests its own records; drop --records or use --backend records")
        if out is None:
            raise ValidationError(f"the {backend} backend writes the harvested records to --out; give an output folder")
        from interp_agent.core.live import harvest_for_inspection

        live = harvest_for_inspection(
            model, criterion, out=Path(out), dataset=dataset, pack=pack, hookpoints=hookpoints, pooling=pooling,
            held_out_fraction=config.held_out_fraction, split_salt=config.split_salt, sae=sae, progress=progress,
        )
        records, criterion = live["records"], live["criterion"]
        paths["records"] = Path(records)

    evidence = None
    if interventions is not None:
        evidence = summarise_interventions(
            read_interventions(interventions), criterion,
            allow_criterion_mismatch=allow_intervention_criterion_mismatch, model=model,
        )
    feature_info = {f.feature_id: f for f in read_features(features)} if features is not None else None

    if backend == "features" or (backend == "neuronpedia" and records is None):
        if feature_info is None:
            raise ValidationError("the features backend needs --features FILE (feature JSONL)")
        body = _rank_feature_dump(list(feature_info.values()), criterion, config, evidence)
    else:
        if records is None:
            raise ValidationError("the records backend needs --records FILE (activation records JSONL or Parquet folder)")
        source = RecordsSource(records)
        try:
            body = rank_records(source, config, evidence=evidence, feature_info=feature_info, progress=progress)
        finally:
            source.close()
        if live is not None:
            from interp_agent.core.live import add_token_highlights

            add_token_highlights(live, body["features"])

    if feature_info is not None:
        _attach_cards(body, feature_info, backend, measured=records is not None, n_examples=config.n_examples)
    warnings = card_warnings + list(body["warnings"]) + (evidence.warnings if evidence else [])
    seen = body.pop("models_seen", [])
    if seen and model not in seen:
        warnings.append(f"the records name model(s) {seen}, not {model!r}")
    if backend == "toy":
        warnings.insert(0, "SYNTHETIC: the toy backend generated these records; no model was measured")
    elif (
        body.pop("synthetic_input", False)
        or (evidence is not None and evidence.synthetic)
        or any(f.extra.get("synthetic") is True for f in (feature_info or {}).values())
    ):
        synthetic = True
        warnings.insert(0, "SYNTHETIC: the input files say they are synthetic; no model was measured")
    if synthetic:
        _mark_synthetic(body["features"])
    report = {
        "schema_version": schema_version("inspection_report"),
        "model": model,
        "criterion": criterion,
        "backend": backend,
        "synthetic": synthetic,
        "provenance": run_provenance({"records": records, "features": features, "interventions": interventions}),
        "settings": config.to_json() | {"allow_intervention_criterion_mismatch": allow_intervention_criterion_mismatch},
        "summary": body["summary"],
        "method": body["method"],
        "warnings": warnings,
        "controls": (evidence.controls if evidence else None),
        "live": None if live is None else {k: live[k] for k in ("hookpoints", "pooling", "model_info")},
        "probe_prompts": body["probe_prompts"],
        "features": body["features"],
    }
    if synthetic and report["controls"]:
        report["controls"]["provenance"] = "synthetic"
    if out is not None:
        from interp_agent.core.reports import write_report

        paths |= write_report(report, out)
    return InspectionResult(report=report, paths=paths)


def _attach_cards(
    body: dict[str, Any], feature_info: dict[str, FeatureRecord], backend: str, *, measured: bool, n_examples: int
) -> None:
    """Put imported feature cards (Neuronpedia, Goodfire) into the ranked rows; say what was not measured."""
    from interp_agent.core.bridges import cards, neuronpedia as np_bridge

    n = cards.annotate_features(body["features"], feature_info, measured=measured, n_examples=n_examples)
    if backend != "neuronpedia" and n == 0:
        return
    body["summary"]["n_cards"] = n
    if backend == "neuronpedia":
        body["method"] = dict(body["method"]) | {"neuronpedia": np_bridge.method_text(measured)}
        if measured:
            body["warnings"].insert(0, np_bridge.MEASURED_NOTE)
            missing = len(set(feature_info) - {f["feature_id"] for f in body["features"]})
            if missing:
                body["warnings"].append(f"{missing} Neuronpedia features are not in this report: the records give "
                                        "them no activation, or they ranked below top_k")
        else:
            body["warnings"] = [np_bridge.NO_MEASUREMENT_WARNING] + [
                w for w in body["warnings"] if not w.startswith("the features backend measures no association")]


def _toy_inputs(model: str, criterion: str, out: Path) -> tuple[Path, Path]:
    planted = planted_records(model, criterion, PlantedConfig())
    rec = write_records(out / "toy-records.jsonl", planted.records, planted.feature_metadata)
    inter = write_interventions(out / "toy-interventions.jsonl", planted_interventions(planted, criterion))
    return rec, inter


def _mark_synthetic(node: Any) -> None:
    """Relabel every provenance under ``node`` as synthetic."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "provenance" and isinstance(value, str):
                node[key] = "synthetic"
            elif key == "provenance" and isinstance(value, dict):
                node[key] = {k: (None if v is None else "synthetic") for k, v in value.items()}
            else:
                _mark_synthetic(value)
    elif isinstance(node, list):
        for value in node:
            _mark_synthetic(value)


def _rank_feature_dump(
    feats: list[FeatureRecord], criterion: str, config: RankingConfig, evidence: CausalEvidence | None
) -> dict[str, Any]:
    from interp_agent.core.matching.text import default_text_encoder

    # behind the on-disk embedding cache: a rerun on the same features loads no model (nor torch)
    encoder = default_text_encoder()
    texts = [_describe(f) for f in feats]
    sims = encoder.encode(texts) @ encoder.encode([criterion])[0]
    rows = []
    for f, sim in zip(feats, np.asarray(sims, dtype=np.float64)):
        fc = evidence.features.get(f.feature_id) if evidence else None
        # no measured association to agree with: evidence in either direction shows relevance
        c = causal_component(fc.strong_causal_score, fc.effect.mean_effect, 1.0) if fc else 0.0
        a = max(0.0, float(sim))
        rows.append(
            {
                "feature_id": f.feature_id, "rank": 0, "importance": importance(a, None, None, c),
                "direction": None if fc is None else ("promotes" if fc.effect.mean_effect >= 0 else "suppresses"),
                "label": f.label, "explanation": f.explanation, "layer": f.layer, "source": f.source or "features",
                "association": None, "specificity": None, "stability": None,
                "causal": fc.to_json(None) if fc else None,
                "importance_components": {
                    "semantic": {"value": a, "provenance": "semantic"},
                    "causal": {"value": c, "provenance": "interventional"} if fc else None,
                },
                "provenance": {"semantic": "semantic", "causal": "interventional" if fc else None,
                               "examples": "imported", "imported": "imported"},
                "examples": [{"prompt_id": None, "text": t, "token_index": None, "token": None, "activation": None,
                              "criterion_score": None} for t in f.examples[: config.n_examples]],
                "histogram": None, "probe_activations": None,
                "decoder_signature": list(f.decoder_signature) if f.decoder_signature else None,
                "imported": imported_block(f),
                "notes": [],
            }
        )
    rows.sort(key=lambda r: (-r["importance"], r["feature_id"]))
    rows = rows[: config.top_k]
    for rank, r in enumerate(rows, start=1):
        r["rank"] = rank
    return {
        "summary": {"n_rows": 0, "n_prompts": 0, "n_features_tested": len(feats),
                    "n_intervention_rows": evidence.n_rows if evidence else 0,
                    "n_control_rows": evidence.n_control_rows if evidence else 0},
        "warnings": [
            "the features backend measures no association: features are ordered by how close their "
            "label/explanation is to the criterion (semantic, all-MiniLM-L6-v2) and by any intervention "
            "evidence; add --records for measured association"
        ],
        "method": {"importance": IMPORTANCE_FORMULA, "semantic": "cosine similarity of all-MiniLM-L6-v2 embeddings "
                   "of the criterion and of label + explanation (examples when there is no label)",
                   "causal": METHOD["causal"]},
        "probe_prompts": [],
        "features": rows,
    }


def _describe(f: FeatureRecord) -> str:
    parts = [p for p in (f.label, f.explanation) if p]
    if not parts:
        parts = list(f.examples[:3]) or [f.feature_id]
    return ". ".join(parts)
