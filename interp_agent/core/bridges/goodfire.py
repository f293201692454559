"""Goodfire: feature cards from Goodfire SDK feature objects and their JSON exports.

Goodfire's hosted Ember API was shut down in 2025, so nothing here calls it: there is
no live feature search (``search_goodfire`` says so and returns nothing). What still
works is reading features you already hold: SDK ``Feature`` objects (attributes
``uuid``, ``label``, ``max_activation_strength``, ``index_in_sae``), a ``FeatureGroup``,
their ``.json()`` dicts, or a JSON file of those, into feature cards and feature JSONL.
The SDK is not needed: objects are read by attribute name. A Goodfire feature carries a
label and a maximum activation only; every card says where it came from and that
nothing in it measures a criterion.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from interp_agent.core.bridges.cards import FeatureCard, feature_id_for, write_cards
from interp_agent.core.errors import InputFileError, RemoteServiceError, ValidationError

SHUTDOWN_NOTE = (
    "Goodfire's hosted API was shut down in 2025; live search is unavailable; these cards come from SDK "
    "objects you supplied"
)
"""The note every Goodfire card carries."""

KNOWN_SAE_LAYERS: dict[str, int] = {
    # Goodfire's released SAEs: goodfire/Llama-3.1-8B-Instruct-SAE-l19 and goodfire/Llama-3.3-70B-Instruct-SAE-l50
    "meta-llama/Llama-3.1-8B-Instruct": 19,
    "meta-llama/Meta-Llama-3.1-8B-Instruct": 19,
    "meta-llama/Llama-3.3-70B-Instruct": 50,
}
"""Layer of Goodfire's SAE for a model, used when the caller gives no layer."""

_FIELDS = ("uuid", "label", "max_activation_strength", "index_in_sae")

PLACEHOLDER_NOTE = (
    "max_activation_strength dropped: it is 1 for every feature, the constant goodfire>=0.3's Feature.json() "
    "writes, not a measured activation"
)
"""The note of cards whose export carried only the SDK's constant strength."""


def _placeholder_strengths(features: list[Any]) -> bool:
    """True when every feature's ``max_activation_strength`` is exactly 1: what ``Feature.json()`` of the
    0.3 SDK writes for any feature (the attribute no longer exists there), so it measures nothing."""
    strengths = [_field(f, "max_activation_strength") for f in features]
    return bool(strengths) and all(type(v) in (int, float) and v == 1 for v in strengths)


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _is_feature(obj: Any) -> bool:
    return _field(obj, "index_in_sae") is not None or _field(obj, "label") is not None


def _flatten(features: Any) -> list[Any]:
    """Single features, FeatureGroups, ``{"features": [...]}`` dicts and lists, flattened in order."""
    if isinstance(features, (str, bytes)):
        raise ValidationError("Goodfire features: expected Feature objects, dicts or a FeatureGroup, got a string; "
                              "for a JSON file use read_goodfire_export(path)")
    if isinstance(features, Mapping) and isinstance(features.get("features"), list):
        return [f for item in features["features"] for f in _flatten(item)]
    if _is_feature(features):
        return [features]
    if isinstance(features, Iterable):  # a FeatureGroup iterates over its features
        return [f for item in features for f in _flatten(item)]
    raise ValidationError(f"Goodfire features: cannot read a {type(features).__name__}; expected objects with "
                          f"{', '.join(_FIELDS)} (or their .json() dicts)")


def cards_from_goodfire(
    features: Any,
    *,
    model: str | None = None,
    layer: int | None = None,
    sae_id: str | None = None,
    source: dict[str, Any] | None = None,
) -> list[FeatureCard]:
    """Feature cards from Goodfire SDK ``Feature`` objects, a ``FeatureGroup``, or their ``.json()`` dicts.

    Args:
        features: one feature, a FeatureGroup, a ``{"features": [...]}`` dict, or a list of these.
        model: the model the SAE reads (e.g. ``meta-llama/Llama-3.3-70B-Instruct``).
        layer: the SAE's layer; default: Goodfire's released SAE layer for ``model``, if known.
        sae_id: a name for the SAE, used in feature ids when the layer is unknown.
        source: provenance to record (default: ``{"kind": "goodfire", "objects": "supplied in Python"}``).

    Returns:
        One card per distinct ``index_in_sae``, labelled, with the shutdown note.

    Raises:
        ValidationError: a feature without ``index_in_sae``, or something that is not a feature.
    """
    notes = [SHUTDOWN_NOTE]
    if layer is None and model in KNOWN_SAE_LAYERS:
        layer = KNOWN_SAE_LAYERS[model]
        notes.append(f"layer {layer} is the layer of Goodfire's released SAE for {model}; pass layer= if yours differs")
    retrieved = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    src = {"kind": "goodfire", "objects": "supplied in Python", "retrieved_at": retrieved, "live_search": False}
    src = {k: v for k, v in (src | (source or {})).items() if v is not None}
    flat = _flatten(features)
    if _placeholder_strengths(flat):
        notes.append(PLACEHOLDER_NOTE)
    cards: dict[str, FeatureCard] = {}
    for i, feat in enumerate(flat):
        index = _field(feat, "index_in_sae")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValidationError(f"Goodfire feature {i} ({_field(feat, 'label')!r}): index_in_sae is {index!r}; "
                                  "it must be a non-negative integer (it names the latent)")
        label = _field(feat, "label")
        strength = None if PLACEHOLDER_NOTE in notes else _field(feat, "max_activation_strength")
        if strength is not None and (isinstance(strength, bool) or not isinstance(strength, (int, float))):
            raise ValidationError(f"Goodfire feature {i}: max_activation_strength is {strength!r}, not a number")
        uuid = _field(feat, "uuid")
        card = FeatureCard(
            feature_id=feature_id_for(layer, index, sae_id), index=index, source=dict(src), model=model,
            sae_id=sae_id, layer=layer, explanations=(str(label),) if label else (),
            max_activation=None if strength is None else float(strength), notes=tuple(notes),
            extra={"uuid": None if uuid is None else str(getattr(uuid, "hex", uuid))},
        )
        cards.setdefault(card.feature_id, card)
    if not cards:
        raise ValidationError("no Goodfire features given")
    return list(cards.values())


def read_goodfire_export(path: str | Path, **kwargs: Any) -> list[FeatureCard]:
    """Cards from a JSON file of ``Feature.json()`` dicts, a list of them, or ``FeatureGroup.json()``.

    Keyword arguments are those of :func:`cards_from_goodfire`.

    Raises:
        InputFileError: the file is missing, not JSON, or holds no usable feature.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(p, "file not found", hint="save features with FeatureGroup.json() or Feature.json()")
    try:
        payload = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputFileError(p, f"not JSON: {exc}") from None
    try:
        return cards_from_goodfire(payload, source={"objects": None, "file": str(p)}, **kwargs)
    except ValidationError as exc:
        raise InputFileError(p, exc.message, hint="expected Feature.json() dicts or FeatureGroup.json()") from None


def write_goodfire_features(features: Any, out: str | Path, **kwargs: Any) -> Path:
    """Write Goodfire features (objects, dicts, a FeatureGroup, or a JSON file path) as feature JSONL.

    ``inspect --backend features --features OUT`` then orders them by label similarity to a
    criterion; nothing about the criterion is measured without activation records.
    """
    cards = read_goodfire_export(features, **kwargs) if isinstance(features, (str, Path)) else (
        cards_from_goodfire(features, **kwargs))
    return write_cards(out, cards)


def search_goodfire(query: str = "", *args: Any, **kwargs: Any) -> NoReturn:
    """Always raises: Goodfire's hosted API, which served feature search, was shut down in 2025.

    Raises:
        RemoteServiceError: always; no results are made up.
    """
    raise RemoteServiceError(
        f"Goodfire live feature search is unavailable (query {query!r}): Goodfire's hosted Ember API was shut "
        "down in 2025, so no search results exist to return",
        hint="pass Feature objects or FeatureGroup.json() exports you saved to cards_from_goodfire() or "
             "`interp-agent convert-goodfire`, or use Neuronpedia refs with inspect --backend neuronpedia",
    )
