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

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp_agent.core.inspect.report import InspectionReport
from interp_agent.core.inspect.request import BACKENDS, InspectRequest
from interp_agent.core.inspect.request import BackendName as Backend
from interp_agent.core.progress import Progress
from interp_agent.core.ranking.config import RankingConfig

__all__ = ["BACKENDS", "Backend", "InspectionResult", "inspect", "inspect_request"]


@dataclass(frozen=True, slots=True)
class InspectionResult:
    """What ``inspect`` returns."""

    report: dict[str, Any]
    """The report (as written to report.json)."""
    paths: dict[str, Path]
    """Written files: json, md, html (and toy inputs for the toy backend); empty when out is None."""
    inspection: InspectionReport | None = None
    """The same report as typed objects."""


def inspect(
    model: str,
    criterion: str,
    *,
    backend: Backend | None = None,
    records: str | Path | None = None,
    features: str | Path | None = None,
    interventions: str | Path | Sequence[str | Path] | None = None,
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

    The keyword arguments are the fields of ``InspectRequest`` (described there), plus
    ``out`` (output folder) and ``progress`` (a ``progress(phase, done, total)`` callback).

    Raises:
        ValidationError: a missing or contradictory argument.
        InputFileError: a bad input file (names file, line, field).
        EvidenceError: the evidence cannot support a ranking.
    """
    request = InspectRequest(
        model=model, criterion=criterion, backend=backend, records=records, features=features,
        interventions=None if interventions is None else (
            (interventions,) if isinstance(interventions, (str, Path)) else tuple(interventions)),
        allow_intervention_criterion_mismatch=allow_intervention_criterion_mismatch,
        config=config or RankingConfig(), dataset=dataset, pack=pack,
        hookpoints=None if hookpoints is None else tuple(hookpoints), pooling=pooling,  # type: ignore[arg-type]  # a str from the public API; InspectRequest checks it is a Pooling
        sae=sae, neuronpedia=None if neuronpedia is None else tuple(neuronpedia),
        saelens_release=saelens_release, saelens_id=saelens_id,
    )
    return inspect_request(request, out=out, progress=progress)


def inspect_request(
    request: InspectRequest, *, out: str | Path | None = None, progress: Progress | None = None
) -> InspectionResult:
    """``inspect`` for a built request (the CLI and the job kind build one); see ``inspect``."""
    from interp_agent.core.inspect.pipeline import run_inspection

    report, report_json, paths = run_inspection(request, out=out, progress=progress)
    return InspectionResult(report=report_json, paths=paths, inspection=report)
