"""The inspection report as typed, immutable objects that write today's report.json (v1) exactly.

``FeatureEvidence`` is one ranked feature (a ``features[]`` row), ``InspectionReport`` the
whole report. Nested statistics blocks (``association``, ``causal``, …) stay JSON objects:
their shape belongs to the ranking that made them. ``to_json`` gives the v1 object key for
key, in order; ``from_json`` reads one back, so a report read from disk and written again
is the same JSON. Steps that used to edit the report in place (cards, token highlights,
synthetic relabelling) are methods returning new objects.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from interp_agent.core.artifacts import schema_version

Json = Any
"""A JSON value (dict, list, str, number, bool or None)."""

_ROW_KEYS: tuple[str, ...] = (
    "feature_id", "rank", "importance", "direction", "label", "explanation", "layer", "source", "association",
    "specificity", "stability", "causal", "importance_components", "provenance", "examples", "histogram",
    "probe_activations", "decoder_signature", "imported", "notes",
)


@dataclass(frozen=True, slots=True)
class FeatureEvidence:
    """One ranked feature: its statistics, evidence and provenance (a v1 ``features[]`` row)."""

    feature_id: str
    """Where the feature lives, e.g. ``L6:D12`` or ``SAE:L6:F650``."""
    rank: int
    """1 for the most important feature (0 before ranking)."""
    importance: float
    """The combined importance score the report is ordered by."""
    direction: str | None
    """promotes or suppresses the criterion; None when nothing says which."""
    label: str | None
    """Short label (from the records' metadata, a feature dump or a card)."""
    explanation: str | None
    """Longer explanation, when one was given."""
    layer: int | None
    """Layer the feature lives in, when known."""
    source: str
    """Where the feature came from: records, features, or a dump's own source."""
    association: Json
    """Train and held-out association statistics (correlational), or None (not measured)."""
    specificity: Json
    """Specificity on each split, or None."""
    stability: Json
    """Bootstrap stability, or None."""
    causal: Json
    """Intervention evidence, or None when there is none."""
    importance_components: Json
    """Each component of importance with its value and provenance."""
    provenance: Mapping[str, Any]
    """Provenance of each block: correlational, interventional, semantic, imported, synthetic or None."""
    examples: Sequence[Json]
    """Top-activating examples (``tokens`` holds per-token activations when harvested or imported)."""
    histogram: Json
    """Activation histograms by class, or None."""
    probe_activations: Json
    """Activations on the probe prompts (cross-model matching fingerprint), or None."""
    decoder_signature: Json
    """Decoder direction (signature) when known, else None."""
    imported: Json
    """What a feature dump says about the feature, labelled imported, or None."""
    notes: Sequence[str]
    """Plain-language notes about this feature's evidence."""
    card: Json = None
    """The imported feature card (Neuronpedia, Goodfire); absent from the JSON when None."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Keys of a read row that v1 does not name, kept so a round trip loses nothing."""

    def to_json(self) -> dict[str, Any]:
        """The v1 row (a new, independent JSON object)."""
        row = {key: copy.deepcopy(getattr(self, key)) for key in _ROW_KEYS}
        row["provenance"] = dict(self.provenance)
        row["examples"] = copy.deepcopy(list(self.examples))
        row["notes"] = list(self.notes)
        if self.card is not None:
            row["card"] = copy.deepcopy(self.card)
        return row | copy.deepcopy(dict(self.extra))

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> FeatureEvidence:
        """Read a v1 row (values are copied; the row is left as it is)."""
        row = copy.deepcopy(dict(row))
        named = {key: row.pop(key) for key in _ROW_KEYS}
        named["examples"] = tuple(named["examples"] or ())
        named["notes"] = tuple(named["notes"] or ())
        return cls(**named, card=row.pop("card", None), extra=row)

    def marked_synthetic(self) -> FeatureEvidence:
        """A copy with every provenance label under it relabelled synthetic."""
        return FeatureEvidence.from_json(relabel_synthetic(self.to_json()))


@dataclass(frozen=True, slots=True)
class InspectionReport:
    """The whole report of an ``inspect`` run (report.json, ``interp-agent.inspection_report.v1``)."""

    model: str
    """Model the evidence belongs to."""
    criterion: str
    """The criterion the features were ranked against."""
    backend: str
    """The backend that gathered the evidence."""
    synthetic: bool
    """True when any input was generated (toy) or says it is synthetic; then every provenance says so."""
    provenance: Mapping[str, Any]
    """Tool version, time, platform and the SHA-256 of each input."""
    settings: Mapping[str, Any]
    """The ranking settings (RankingConfig) and the request's own switches."""
    summary: Mapping[str, Any]
    """Counts: rows, prompts, features tested, significant, held-out supported, intervention rows …"""
    method: Mapping[str, Any]
    """How each number was computed, in words."""
    warnings: Sequence[str]
    """What a reader must know before trusting the ranking, most important first."""
    controls: Json
    """Summary of the intervention controls, or None."""
    live: Json
    """hf/saelens backends: hookpoints, pooling and model info; otherwise None."""
    probe_prompts: Sequence[str]
    """Prompt ids of the probe set behind ``probe_activations``."""
    features: Sequence[FeatureEvidence]
    """Ranked features, best first."""
    schema_version: str = field(default_factory=lambda: schema_version("inspection_report"))
    """``interp-agent.inspection_report.v1``."""

    def to_json(self) -> dict[str, Any]:
        """The v1 report object, key for key as report.json holds it (a new, independent object)."""
        def plain(value: Any) -> Any:
            return copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)

        return {
            "schema_version": self.schema_version, "model": self.model, "criterion": self.criterion,
            "backend": self.backend, "synthetic": self.synthetic, "provenance": plain(self.provenance),
            "settings": plain(self.settings), "summary": plain(self.summary), "method": plain(self.method),
            "warnings": list(self.warnings), "controls": plain(self.controls), "live": plain(self.live),
            "probe_prompts": list(self.probe_prompts), "features": [f.to_json() for f in self.features],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> InspectionReport:
        """Read a v1 report object."""
        obj = copy.deepcopy(dict(obj))
        features = tuple(FeatureEvidence.from_json(row) for row in obj.pop("features"))
        return cls(**{**obj, "features": features, "warnings": tuple(obj["warnings"]),
                      "probe_prompts": tuple(obj["probe_prompts"])})

    def marked_synthetic(self) -> InspectionReport:
        """A copy labelled synthetic: every feature's provenance and the controls' provenance."""
        controls = self.controls
        if controls:
            controls = dict(controls) | {"provenance": "synthetic"}
        return replace(self, synthetic=True, controls=controls,
                       features=tuple(f.marked_synthetic() for f in self.features))


def relabel_synthetic(node: Json) -> Json:
    """A copy of ``node`` with every ``provenance`` under it relabelled synthetic (null entries stay null)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "provenance" and isinstance(value, str):
                out[key] = "synthetic"
            elif key == "provenance" and isinstance(value, dict):
                out[key] = {k: (None if v is None else "synthetic") for k, v in value.items()}
            else:
                out[key] = relabel_synthetic(value)
        return out
    if isinstance(node, list):
        return [relabel_synthetic(value) for value in node]
    return node
