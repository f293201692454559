"""The inspect backends, in an explicit registry (after SAELens's ``sae_lens/registry.py``).

A backend gathers evidence: it turns a request into the inputs the shared ranking reads
(activation records, a feature dump, intervention records) and writes any inputs it
generates (toy records, harvested records, imported cards) into the output folder. The
ranking and the report are the same for every backend (``core.inspect.pipeline``); a
backend may add a step after the ranking (``refine``: token highlights of a live model)
and say how imported cards are attached (``attach_cards``).

Add a backend with ``register_backend(Backend(name, gather, ...))`` and its name in
``request.BackendName``; a test checks that the two agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from interp_agent.core.errors import ValidationError, arg
from interp_agent.core.formats.features import FeatureRecord
from interp_agent.core.inspect.report import FeatureEvidence
from interp_agent.core.inspect.request import InspectRequest
from interp_agent.core.inspect.semantic import Ranked
from interp_agent.core.progress import Progress

TOY_SYNTHETIC_NOTE = "SYNTHETIC: the toy backend generated these records; no model was measured"
"""The first warning of every toy report."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a backend gathered: the inputs the shared ranking reads, and what it wrote or found on the way."""

    criterion: str
    """The criterion (a live backend's pack may supply it)."""
    records: str | Path | None = None
    """Activation records to rank on; None for a ranking by label similarity."""
    features: str | Path | None = None
    """Feature JSONL: labels, signatures and cards."""
    interventions: tuple[str | Path, ...] | None = None
    """Intervention records JSONL (causal evidence)."""
    rank_by: Literal["records", "semantic"] = "records"
    """records: measured association; semantic: the feature dump ordered by label similarity."""
    caveat: str | None = None
    """The warning of a semantic ranking, worded for this backend's source (default: the features backend's)."""
    paths: Mapping[str, Path] = field(default_factory=dict)
    """Inputs the backend wrote, by name (toy_records, records, neuronpedia_features …)."""
    warnings: tuple[str, ...] = ()
    """The backend's own warnings, shown before the ranking's."""
    synthetic_note: str | None = None
    """Set when the backend generated the evidence: the report is then synthetic throughout."""
    live: dict[str, Any] | None = None
    """A live harvest's handle (model, hookpoints, directions), for the token-highlight step."""


Gather = Callable[[InspectRequest, Path | None, Progress | None], Evidence]
CardStep = Callable[[Ranked, Mapping[str, FeatureRecord], bool, int], Ranked]
Refine = Callable[[Ranked, Evidence], Ranked]


def with_cards(
    features: tuple[FeatureEvidence, ...], feature_info: Mapping[str, FeatureRecord], *, measured: bool, n_examples: int
) -> tuple[tuple[FeatureEvidence, ...], int]:
    """The features with their imported cards attached, and how many got one."""
    from interp_agent.core.bridges.cards import with_card

    out, n = [], 0
    for f in features:
        row = with_card(f.to_json(), feature_info.get(f.feature_id), measured=measured, n_examples=n_examples)
        n += row is not None
        out.append(f if row is None else FeatureEvidence.from_json(row))
    return tuple(out), n


def attach_cards(ranked: Ranked, feature_info: Mapping[str, FeatureRecord], measured: bool, n_examples: int) -> Ranked:
    """Put imported cards (Goodfire, Neuronpedia files given as features) into the ranked features."""
    features, n = with_cards(ranked.features, feature_info, measured=measured, n_examples=n_examples)
    return ranked if n == 0 else replace(ranked, features=features, summary=ranked.summary | {"n_cards": n})


def attach_neuronpedia_cards(
    ranked: Ranked, feature_info: Mapping[str, FeatureRecord], measured: bool, n_examples: int
) -> Ranked:
    """The neuronpedia backend's cards, and what the report says about what was (not) measured."""
    from interp_agent.core.bridges import neuronpedia as np_bridge

    features, n = with_cards(ranked.features, feature_info, measured=measured, n_examples=n_examples)
    warnings = ranked.warnings
    if measured:
        missing = len(set(feature_info) - {f.feature_id for f in features})
        warnings = (np_bridge.MEASURED_NOTE, *warnings) + (
            (f"{missing} Neuronpedia features are not in this report: the records give "
             "them no activation, or they ranked below top_k",) if missing else ())
    return replace(ranked, features=features, summary=ranked.summary | {"n_cards": n}, warnings=warnings,
                   method=ranked.method | {"neuronpedia": np_bridge.method_text(measured)})


@dataclass(frozen=True, slots=True)
class Backend:
    """One way of gathering evidence for ``inspect``."""

    name: str
    """The ``backend`` value that selects it."""
    gather: Gather
    """``gather(request, out, progress) -> Evidence``."""
    needs_out: str | None = None
    """The error raised when no output folder is given (None: the backend writes nothing of its own)."""
    attach_cards: CardStep = attach_cards
    """How imported cards join the ranked features."""
    refine: Refine | None = None
    """A step after the ranking (e.g. per-token highlights from the live model)."""


BACKEND_REGISTRY: dict[str, Backend] = {}
"""Backend name -> backend."""


def register_backend(backend: Backend) -> Backend:
    """Add ``backend`` to the registry (replacing one of the same name)."""
    BACKEND_REGISTRY[backend.name] = backend
    return backend


def get_backend(name: str) -> Backend:
    """The backend called ``name``.

    Raises:
        ValidationError: no such backend.
    """
    if name not in BACKEND_REGISTRY:
        raise ValidationError(f"unknown backend {name!r}; use one of {', '.join(BACKEND_REGISTRY)}")
    return BACKEND_REGISTRY[name]


# -- the built-in backends ---------------------------------------------------------------------
def _records(req: InspectRequest, out: Path | None, progress: Progress | None) -> Evidence:
    if req.records is None:
        raise ValidationError(
            "the records backend needs --records FILE (activation records JSONL or Parquet folder)")
    return Evidence(criterion=req.criterion, records=req.records, features=req.features,
                    interventions=req.interventions)


def _features(req: InspectRequest, out: Path | None, progress: Progress | None) -> Evidence:
    if req.features is None:
        raise ValidationError(f"the features backend needs {arg('features')} (feature JSONL)")
    return Evidence(criterion=req.criterion, features=req.features, interventions=req.interventions, rank_by="semantic")


def _toy(req: InspectRequest, out: Path | None, progress: Progress | None) -> Evidence:
    from interp_agent.core.formats.interventions import write_interventions
    from interp_agent.core.formats.records import write_records
    from interp_agent.core.synthetic import PlantedConfig, planted_interventions, planted_records

    assert out is not None  # needs_out
    planted = planted_records(req.model, req.criterion, PlantedConfig())
    records = write_records(out / "toy-records.jsonl", planted.records, planted.feature_metadata)
    paths = {"toy_records": Path(records)}
    interventions = req.interventions
    if interventions is None:
        generated = planted_interventions(planted, req.criterion)
        written = write_interventions(out / "toy-interventions.jsonl", generated)
        paths["toy_interventions"] = Path(written)
        interventions = (written,)
    return Evidence(criterion=req.criterion, records=records, features=req.features, interventions=interventions,
                    paths=paths, synthetic_note=TOY_SYNTHETIC_NOTE)


def _neuronpedia(req: InspectRequest, out: Path | None, progress: Progress | None) -> Evidence:
    from interp_agent.core.bridges.neuronpedia import NO_MEASUREMENT_WARNING, cards_for_inspection

    assert out is not None  # needs_out
    features, _, warnings = cards_for_inspection(list(req.neuronpedia or ()), out, model=req.model)
    return Evidence(criterion=req.criterion, records=req.records, features=features, interventions=req.interventions,
                    rank_by="records" if req.records is not None else "semantic", caveat=NO_MEASUREMENT_WARNING,
                    paths={"neuronpedia_features": Path(features)}, warnings=tuple(warnings))


def _harvest(req: InspectRequest, out: Path, progress: Progress | None, *,
             hookpoints: list[str] | None, sae: str | Path | None) -> Evidence:
    """The one call into the live-model harvest (``core.live``)."""
    from interp_agent.core.live import harvest_for_inspection

    live = harvest_for_inspection(
        req.model, req.criterion, out=out, dataset=req.dataset, pack=req.pack, hookpoints=hookpoints,
        pooling=req.pooling, held_out_fraction=req.config.held_out_fraction, split_salt=req.config.split_salt,
        sae=sae, progress=progress,
    )
    return Evidence(criterion=live["criterion"], records=live["records"], features=req.features,
                    interventions=req.interventions, paths={"records": Path(live["records"])}, live=live)


def _hf(req: InspectRequest, out: Path | None, progress: Progress | None) -> Evidence:
    assert out is not None  # needs_out
    return _harvest(req, out, progress, hookpoints=list(req.hookpoints) if req.hookpoints else None, sae=req.sae)


def _saelens(req: InspectRequest, out: Path | None, progress: Progress | None) -> Evidence:
    from interp_agent.core.bridges.saelens import sae_for_inspection, sae_hookpoint

    assert out is not None  # needs_out
    sae = sae_for_inspection(req.sae, req.saelens_release, req.saelens_id)
    return _harvest(req, out, progress, hookpoints=list(req.hookpoints) if req.hookpoints else [sae_hookpoint(sae)],
                    sae=sae)


def token_highlights(ranked: Ranked, evidence: Evidence) -> Ranked:
    """The top features' examples with per-token activations from the live model (``examples[i].tokens``)."""
    from interp_agent.core.live import add_token_highlights

    if evidence.live is None:
        return ranked
    # add_token_highlights writes into the rows it is given: give it copies, keep the new examples
    scratch = [{"feature_id": f.feature_id, "examples": [dict(e) for e in f.examples]} for f in ranked.features]
    add_token_highlights(evidence.live, scratch)
    return replace(ranked, features=tuple(replace(f, examples=tuple(s["examples"]))
                                          for f, s in zip(ranked.features, scratch, strict=True)))


def _live_needs_out(name: str) -> str:
    return f"the {name} backend writes the harvested records to {arg('out')}; give an output folder"


register_backend(Backend("records", _records))
register_backend(Backend("features", _features))
register_backend(Backend(
    "toy", _toy, needs_out=f"the toy backend writes its generated records to {arg('out')}; give an output folder"))
register_backend(Backend("hf", _hf, needs_out=_live_needs_out("hf"), refine=token_highlights))
register_backend(Backend(
    "neuronpedia", _neuronpedia, attach_cards=attach_neuronpedia_cards,
    needs_out=f"the neuronpedia backend writes its imported cards as feature JSONL to {arg('out')}: give an output "
    f"folder, and no {arg('features')}",
))
register_backend(Backend("saelens", _saelens, needs_out=_live_needs_out("saelens"), refine=token_highlights))
