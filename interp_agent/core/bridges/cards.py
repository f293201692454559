"""Feature cards: what an outside source (Neuronpedia, Goodfire) says about one feature.

A card carries labels, top examples with per-token activations, logit effects and
density exactly as its source states them; nothing in a card is measured by
interp-agent, so every number in it is ``imported``. Cards travel as ordinary feature
JSONL rows (``FeatureRecord``) with the whole card under the row's ``card`` key, so the
``features`` and ``neuronpedia`` backends of ``inspect`` read them back unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from interp_agent.core.formats.features import FeatureRecord, write_features
from interp_agent.core.ids import format_sae_latent

CardKind = Literal["neuronpedia", "goodfire"]

CARD_KEY = "card"
"""Key of the card inside a feature JSONL row (kept by ``FeatureRecord.extra``)."""

NO_MEASUREMENT = (
    "not measured: this card is imported from {kind}; no activation records were given, so nothing here "
    "measures how the feature relates to the criterion"
)
"""What a card-based report says about the criterion association when there are no records."""


def feature_id_for(layer: int | None, index: int, sae_id: str | None = None) -> str:
    """``SAE:L{layer}:F{index}`` when the layer is known, else ``SAE:{sae_id}:F{index}``, else ``SAE:F{index}``."""
    return format_sae_latent(index, layer=layer, sae_id=sae_id)


@dataclass(frozen=True, slots=True)
class CardExample:
    """One top-activating text of a card."""

    text: str
    """The text, rebuilt from its tokens."""
    tokens: tuple[str, ...] = ()
    """Its tokens, in order (may be empty when the source gives only text)."""
    values: tuple[float, ...] = ()
    """The feature's activation at each token (index aligned with ``tokens``)."""
    max_value: float | None = None
    """The largest activation in this text."""
    max_token_index: int | None = None
    """Position of the token with the largest activation."""

    def __post_init__(self) -> None:
        if self.values and len(self.values) != len(self.tokens):
            raise ValueError(
                f"values: {len(self.values)} activations for {len(self.tokens)} tokens; give one value per token"
            )

    def to_json(self) -> dict[str, Any]:
        """The example as stored in a card."""
        return {"text": self.text, "tokens": list(self.tokens), "values": list(self.values),
                "max_value": self.max_value, "max_token_index": self.max_token_index}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> CardExample:
        """Inverse of ``to_json``."""
        return cls(text=str(obj.get("text") or ""), tokens=tuple(str(t) for t in obj.get("tokens") or ()),
                   values=tuple(float(v) for v in obj.get("values") or ()), max_value=obj.get("max_value"),
                   max_token_index=obj.get("max_token_index"))

    def to_report(self) -> dict[str, Any]:
        """The example in the report's ``examples`` shape, per-token activations under ``tokens``."""
        i = self.max_token_index
        token = self.tokens[i] if i is not None and 0 <= i < len(self.tokens) else None
        row: dict[str, Any] = {"prompt_id": None, "text": self.text, "token_index": i if token is not None else None,
                               "token": token, "activation": self.max_value, "criterion_score": None}
        if self.values:
            row["tokens"] = [[t, v] for t, v in zip(self.tokens, self.values, strict=True)]
        return row


@dataclass(frozen=True, slots=True)
class FeatureCard:
    """Everything an outside source says about one feature; every number is imported."""

    feature_id: str
    """Where the feature lives, e.g. ``SAE:L6:F650``."""
    index: int
    """Index of the latent in its SAE."""
    source: dict[str, Any]
    """Provenance: ``kind`` (neuronpedia, goodfire), ``url`` or ``file``, ``retrieved_at`` (UTC ISO time)."""
    model: str | None = None
    """The source's model id (e.g. ``gpt2-small``)."""
    sae_id: str | None = None
    """The source's SAE id (e.g. ``6-res_scefr-ajt``)."""
    layer: int | None = None
    """Layer, when the source names it."""
    explanations: tuple[str, ...] = ()
    """Explanations (auto-interpretation or human), the source's preferred first; the first is the label."""
    examples: tuple[CardExample, ...] = ()
    """Top-activating texts, highest first."""
    positive_logits: tuple[tuple[str, float], ...] = ()
    """Output tokens the feature promotes most, with the source's logit effect."""
    negative_logits: tuple[tuple[str, float], ...] = ()
    """Output tokens the feature suppresses most, with the source's logit effect."""
    density: float | None = None
    """Fraction of tokens on which the feature is non-zero (Neuronpedia's ``frac_nonzero``)."""
    max_activation: float | None = None
    """Largest activation the source has seen."""
    hookpoint: str | None = None
    """TransformerLens hookpoint of the SAE, when the source names it."""
    notes: tuple[str, ...] = ()
    """What the reader must know about this card (e.g. that live search is unavailable)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Source-specific fields kept verbatim (e.g. Goodfire's ``uuid``)."""

    def __post_init__(self) -> None:
        if self.density is not None and not (math.isfinite(self.density) and 0.0 <= self.density <= 1.0):
            raise ValueError(f"density: {self.density!r} is not a fraction in [0, 1]")
        if self.source.get("kind") not in ("neuronpedia", "goodfire"):
            raise ValueError(f"source.kind: {self.source.get('kind')!r}; use 'neuronpedia' or 'goodfire'")

    @property
    def label(self) -> str | None:
        """The first explanation, or None."""
        return self.explanations[0] if self.explanations else None

    def to_json(self) -> dict[str, Any]:
        """The card as stored in feature JSONL and shown in a report (``provenance: imported``)."""
        return {
            "provenance": "imported",
            "source": dict(self.source),
            "model": self.model, "sae_id": self.sae_id, "index": self.index, "layer": self.layer,
            "hookpoint": self.hookpoint,
            "explanations": list(self.explanations),
            "density": self.density,
            "max_activation": self.max_activation,
            "logit_effects": {"positive": [[t, v] for t, v in self.positive_logits],
                              "negative": [[t, v] for t, v in self.negative_logits]},
            "examples": [e.to_json() for e in self.examples],
            "notes": list(self.notes),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, feature_id: str, obj: dict[str, Any]) -> FeatureCard:
        """Inverse of ``to_json``."""
        logits = obj.get("logit_effects") or {}
        return cls(
            feature_id=feature_id, index=int(obj["index"]), source=dict(obj.get("source") or {}),
            model=obj.get("model"), sae_id=obj.get("sae_id"), layer=obj.get("layer"), hookpoint=obj.get("hookpoint"),
            explanations=tuple(obj.get("explanations") or ()), density=obj.get("density"),
            max_activation=obj.get("max_activation"),
            positive_logits=tuple((str(t), float(v)) for t, v in logits.get("positive") or ()),
            negative_logits=tuple((str(t), float(v)) for t, v in logits.get("negative") or ()),
            examples=tuple(CardExample.from_json(e) for e in obj.get("examples") or ()),
            notes=tuple(obj.get("notes") or ()), extra=dict(obj.get("extra") or {}),
        )

    def to_feature_record(self) -> FeatureRecord:
        """The card as a feature JSONL row: label, examples' texts, and the whole card under ``card``."""
        return FeatureRecord(
            feature_id=self.feature_id, model=self.model, layer=self.layer, label=self.label,
            examples=tuple(e.text for e in self.examples if e.text),
            source=str(self.source["kind"]), extra={CARD_KEY: self.to_json()},
        )


def card_of(record: FeatureRecord) -> FeatureCard | None:
    """The card stored in a feature JSONL row, or None when the row has none."""
    obj = record.extra.get(CARD_KEY)
    if not isinstance(obj, dict) or "index" not in obj:
        return None
    return FeatureCard.from_json(record.feature_id, obj)


def write_cards(path: str | Path, cards: Iterable[FeatureCard]) -> Path:
    """Write cards as feature JSONL (atomically); ``inspect --backend features --features PATH`` reads it."""
    return write_features(path, (c.to_feature_record() for c in cards))


def with_card(
    row: dict[str, Any], info: FeatureRecord | None, *, measured: bool, n_examples: int
) -> dict[str, Any] | None:
    """A report row with its feature's imported card added (a new dict), or None when there is no card.

    Adds ``card`` (the imported card) and ``provenance.card``. Without activation records
    (``measured`` False) the card's examples, with per-token activations, replace the
    row's text-only examples, ``provenance.association`` is null and
    ``provenance.criterion_association`` says plainly that nothing was measured.
    """
    card = card_of(info) if info is not None else None
    if card is None:
        return None
    card_json = card.to_json()
    card_json["examples"] = card_json["examples"][:n_examples]
    new = row | {"card": card_json}
    provenance = dict(row.get("provenance") or {}) | {"card": "imported"}
    if not measured:  # the card's examples become the row's; not kept twice
        card_json.pop("examples")
        new["examples"] = [e.to_report() for e in card.examples[:n_examples]]
        provenance |= {"examples": "imported", "association": None,
                       "criterion_association": NO_MEASUREMENT.format(kind=card.source["kind"])}
    new["provenance"] = provenance
    return new
