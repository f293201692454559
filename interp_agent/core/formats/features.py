"""Feature JSONL: one feature per line with its label, examples and signatures."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp_agent.core.errors import InputFileError
from interp_agent.core.formats.jsonl import Fields, finite, iter_json_objects, write_jsonl

_KNOWN = {
    "feature_id", "model", "layer", "label", "explanation", "examples",
    "activation_signature", "decoder_signature", "causal_effects", "source",
}


@dataclass(frozen=True, slots=True)
class FeatureRecord:
    """A feature as described by a feature dump (SAE export, Neuronpedia, …)."""

    feature_id: str
    """Where the feature lives, e.g. ``L18:F104921`` or ``SAE:L6:F650``."""
    model: str | None = None
    """Model the feature belongs to."""
    layer: int | None = None
    """Layer index, when known."""
    label: str | None = None
    """Short human label."""
    explanation: str | None = None
    """Longer explanation (e.g. auto-interpretation)."""
    examples: tuple[str, ...] = ()
    """Example texts on which the feature fires."""
    activation_signature: tuple[float, ...] | None = None
    """Activation vector over the dump author's probe set (index aligned, no prompt ids)."""
    decoder_signature: tuple[float, ...] | None = None
    """Decoder direction (or a projection of it)."""
    causal_effects: dict[str, float] = field(default_factory=dict)
    """Effects as the dump's author reports them (imported, not measured here)."""
    source: str | None = None
    """Where the feature came from (``sae``, ``neuronpedia``, …)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Unrecognised fields, kept so that a round trip loses nothing."""

    def to_json(self) -> dict[str, Any]:
        """The JSONL row for this feature."""
        row: dict[str, Any] = {"feature_id": self.feature_id}
        for key in ("model", "layer", "label", "explanation", "source"):
            if getattr(self, key) is not None:
                row[key] = getattr(self, key)
        if self.examples:
            row["examples"] = list(self.examples)
        for key in ("activation_signature", "decoder_signature"):
            if getattr(self, key) is not None:
                row[key] = list(getattr(self, key))
        if self.causal_effects:
            row["causal_effects"] = dict(self.causal_effects)
        return row | self.extra


def parse_feature(obj: dict[str, Any], path: str | Path, line: int) -> FeatureRecord:
    """Validate one feature object."""
    f = Fields(obj, path, line)
    examples = obj.get("examples") or []
    if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
        raise f.error("examples", "expected a list of strings")
    effects = f.mapping("causal_effects") or {}
    label = f.string("label", required=False)
    return FeatureRecord(
        feature_id=f.string("feature_id"),
        model=f.string("model", required=False),
        layer=f.integer("layer"),
        label=label,
        explanation=f.string("explanation", required=False),
        examples=tuple(examples),
        activation_signature=_tuple(f.vector("activation_signature")),
        decoder_signature=_tuple(f.vector("decoder_signature")),
        causal_effects={k: finite(v, f, f"causal_effects.{k}") for k, v in effects.items()},
        source=f.string("source", required=False),
        extra={k: v for k, v in obj.items() if k not in _KNOWN},
    )


def _tuple(values: list[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(values)


def read_features(path: str | Path) -> list[FeatureRecord]:
    """Read a feature JSONL file; a duplicate feature_id stops with file and line."""
    out: list[FeatureRecord] = []
    seen: dict[str, int] = {}
    for line, obj in iter_json_objects(path):
        feat = parse_feature(obj, path, line)
        if feat.feature_id in seen:
            raise InputFileError(
                path, f"duplicate feature_id {feat.feature_id!r} (first on line {seen[feat.feature_id]})",
                line=line, field="feature_id",
            )
        seen[feat.feature_id] = line
        out.append(feat)
    if not out:
        raise InputFileError(path, "no features in file", hint="one JSON object per line")
    return out


def write_features(path: str | Path, features: Iterable[FeatureRecord]) -> Path:
    """Write features as JSONL atomically."""
    return write_jsonl(path, (f.to_json() for f in features))
