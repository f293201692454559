"""Fingerprints: the comparable evidence of each feature in one inspection report.

A fingerprint has up to four components, each a matrix with one row per feature, a
presence mask, and a *space* per row: two rows are comparable only when their spaces
are equal (same kind of evidence, same length). A component a feature lacks is masked,
never filled with zeros that would then count as a similarity.

- activation: mean activation on the probe prompts both reports share (compared by
  Pearson correlation), or, for a feature without probe activations, its imported
  index-aligned ``activation_signature``.
- decoder: ``decoder_signature`` (cosine; only between signatures of the same length).
- text: sentence embedding of label and explanation (first examples when unlabelled).
- causal: effect vector over the union of effect keys of both reports, missing = 0.

Activation alignment and the causal keys depend on both reports, so fingerprints are
built per pair of reports by :func:`fingerprint_pair`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from interp_agent.core.errors import ValidationError

ComponentName = Literal["activation", "decoder", "text", "causal"]
COMPONENTS: tuple[ComponentName, ...] = ("activation", "decoder", "text", "causal")
MIN_SHARED_PROBES = 3
"""Fewest shared probe prompts for which a Pearson correlation means anything."""
_EXAMPLES_FOR_TEXT = 3


class Encoder(Protocol):
    """Anything that embeds texts into unit-norm rows (e.g. :class:`TextEncoder`)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed texts; shape [n, d]."""
        ...


@dataclass(frozen=True, slots=True, eq=False)
class Component:
    """One kind of evidence for every feature of a report."""

    values: np.ndarray
    """[n_features, width] float64; rows zero-padded past their length."""
    lengths: np.ndarray
    """[n_features] int; how many leading entries of each row are real."""
    present: np.ndarray
    """[n_features] bool; False where the feature lacks this evidence (or it is constant)."""
    space: np.ndarray
    """[n_features] str; rows compare only within one space, e.g. ``decoder:64``."""
    sources: tuple[str | None, ...]
    """Per feature, the provenance of the evidence (``imported`` when copied from a dump)."""
    centred: bool
    """True: compare by Pearson correlation (rows centred first); False: by cosine."""

    def unit_rows(self, width: int) -> np.ndarray:
        """Rows centred (if Pearson) and scaled to unit norm, zero-padded to ``width``; [n, width]."""
        return _unit_rows(self.values, self.lengths, centred=self.centred, width=width)

    def similarity(self, other: Component) -> tuple[np.ndarray, np.ndarray]:
        """Similarity of every row here with every row of ``other``.

        Returns:
            (sim_LR, mask_LR): similarities in [-1, 1] (NaN where not comparable) and the
            boolean mask of comparable pairs.
        """
        width = max(self.values.shape[1], other.values.shape[1])
        sim_LR = np.clip(self.unit_rows(width) @ other.unit_rows(width).T, -1.0, 1.0)
        mask_LR = (
            self.present[:, None] & other.present[None, :] & (self.space[:, None] == other.space[None, :])
        )
        return np.where(mask_LR, sim_LR, np.nan), mask_LR


@dataclass(frozen=True, slots=True, eq=False)
class Fingerprints:
    """The comparable evidence of every feature in one report, aligned for one pair of reports."""

    feature_ids: tuple[str, ...]
    """Feature ids in report order."""
    labels: tuple[str | None, ...]
    """Feature labels (None when unlabelled)."""
    directions: tuple[str | None, ...]
    """``promotes`` / ``suppresses`` / None, per feature."""
    mean_effects: np.ndarray
    """[n_features] measured ``causal.mean_effect``; NaN where there is none."""
    components: dict[str, Component]
    """Component name → evidence; see the module docstring."""
    synthetic: bool
    """True when the report was built from synthetic data."""

    def __len__(self) -> int:
        return len(self.feature_ids)


def _unit_rows(values_NW: np.ndarray, lengths_N: np.ndarray, *, centred: bool, width: int) -> np.ndarray:
    """Centre each row over its real entries (if ``centred``), scale it to unit norm, pad to ``width``."""
    if centred and values_NW.shape[1]:
        valid_NW = np.arange(values_NW.shape[1])[None, :] < lengths_N[:, None]
        mean_N = values_NW.sum(axis=1) / np.maximum(lengths_N, 1)
        values_NW = np.where(valid_NW, values_NW - mean_N[:, None], 0.0)
    norms_N = np.linalg.norm(values_NW, axis=1)
    out_NW = np.zeros((values_NW.shape[0], width))
    out_NW[:, : values_NW.shape[1]] = values_NW / np.where(norms_N > 0, norms_N, 1.0)[:, None]
    return out_NW


def _bad(side: str, fid: str, field: str, message: str) -> ValidationError:
    return ValidationError(
        f"{side} report: feature '{fid}': field '{field}' {message}",
        hint="fix the report or regenerate it with interp-agent inspect",
    )


def _number(value: Any, side: str, fid: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(side, fid, field, f"must be a finite number, got {value!r}")
    return float(value)


def _vector(value: Any, side: str, fid: str, field: str) -> np.ndarray | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _bad(side, fid, field, f"must be a list of numbers or null, got {type(value).__name__}")
    return np.array([_number(v, side, fid, field) for v in value], dtype=np.float64)


def _mapping(value: Any, side: str, fid: str, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(side, fid, field, f"must be an object or null, got {type(value).__name__}")
    return value


def _imported(feature: dict[str, Any], side: str) -> dict[str, Any]:
    return _mapping(feature.get("imported"), side, feature["feature_id"], "imported") or {}


def probe_ids(report: dict[str, Any]) -> list[str]:
    """The report's probe prompt ids: ``probe_prompts``, else every key of ``probe_activations``."""
    listed = report.get("probe_prompts")
    if isinstance(listed, list) and listed:
        return [str(p) for p in listed]
    seen: dict[str, None] = {}
    for feature in report["features"]:
        acts = feature.get("probe_activations")
        if isinstance(acts, dict):
            seen.update(dict.fromkeys(str(k) for k in acts))
    return list(seen)


def causal_vector(feature: dict[str, Any], side: str) -> tuple[dict[str, float], str | None]:
    """A feature's effects as key → value and their provenance (None when it has none).

    Measured ``causal`` (``mean_effect``, ``side_effect``) wins over imported
    ``causal_effects``.
    """
    fid = feature["feature_id"]
    causal = _mapping(feature.get("causal"), side, fid, "causal")
    if causal is not None and causal.get("mean_effect") is not None:
        effects = {"mean_effect": _number(causal["mean_effect"], side, fid, "causal.mean_effect")}
        if causal.get("side_effect") is not None:
            effects["side_effect"] = _number(causal["side_effect"], side, fid, "causal.side_effect")
        return effects, "interventional"
    imported = _mapping(_imported(feature, side).get("causal_effects"), side, fid, "imported.causal_effects")
    if imported:
        return {str(k): _number(v, side, fid, f"imported.causal_effects.{k}") for k, v in imported.items()}, "imported"
    return {}, None


def feature_text(feature: dict[str, Any]) -> str | None:
    """The text embedded for a feature: label and explanation, or its first examples when unlabelled."""
    parts: list[str] = []
    for key in ("label", "explanation"):
        value = feature.get(key)
        if isinstance(value, str) and value.strip() and value.strip() not in parts:
            parts.append(value.strip())
    if not (isinstance(feature.get("label"), str) and feature["label"].strip()):
        examples = feature.get("examples") or _imported_examples(feature)
        for example in list(examples)[:_EXAMPLES_FOR_TEXT]:
            text = example.get("text") if isinstance(example, dict) else example
            if isinstance(text, str) and text.strip():
                parts.append(text.strip())
    return ". ".join(parts) if parts else None


def _imported_examples(feature: dict[str, Any]) -> list[Any]:
    imported = feature.get("imported")
    examples = imported.get("examples") if isinstance(imported, dict) else None
    return examples if isinstance(examples, list) else []


def _component(
    rows: list[np.ndarray | None], spaces: list[str], sources: list[str | None], *, centred: bool
) -> Component:
    """Stack ragged rows into a padded matrix; a row is present when it exists and is not constant."""
    width = max((len(r) for r in rows if r is not None), default=0)
    values = np.zeros((len(rows), width))
    lengths = np.zeros(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        if row is not None:
            values[i, : len(row)] = row
            lengths[i] = len(row)
    norms = np.linalg.norm(_unit_rows(values, lengths, centred=centred, width=width), axis=1)
    # A constant row has no direction (zero norm after centring): no similarity is defined.
    present = (lengths > 0) & (norms > 0)
    if centred:
        present &= lengths >= MIN_SHARED_PROBES
    space = np.where(present, np.array(spaces, dtype=str).reshape(len(rows)), "")
    return Component(values, lengths, present, space, tuple(sources), centred)


def build_fingerprints(
    report: dict[str, Any],
    *,
    side: str,
    shared_probes: list[str],
    causal_keys: list[str],
    encoder: Encoder | None,
) -> Fingerprints:
    """Fingerprint every feature of a validated report.

    Args:
        report: an inspection report (already validated).
        side: ``left`` or ``right``; named in error messages.
        shared_probes: probe prompt ids both reports share, in the order to align on; probe
            activations are used only when there are at least ``MIN_SHARED_PROBES``.
        causal_keys: the union of effect keys of both reports.
        encoder: sentence encoder for the text component; None leaves text absent.

    Raises:
        ValidationError: a feature field has the wrong type or a non-finite number.
    """
    features: list[dict[str, Any]] = report["features"]
    use_probes = len(shared_probes) >= MIN_SHARED_PROBES
    act_rows: list[np.ndarray | None] = []
    act_spaces: list[str] = []
    act_sources: list[str | None] = []
    dec_rows: list[np.ndarray | None] = []
    causal_rows: list[np.ndarray | None] = []
    causal_sources: list[str | None] = []
    texts: list[str | None] = []
    mean_effects = np.full(len(features), np.nan)
    for i, feature in enumerate(features):
        fid = feature["feature_id"]
        probes = _mapping(feature.get("probe_activations"), side, fid, "probe_activations")
        signature = _vector(_imported(feature, side).get("activation_signature"), side, fid,
                            "imported.activation_signature")
        if probes and use_probes:
            # A probe prompt missing from the dict is one the feature did not fire on.
            row = [_number(probes.get(p, 0.0), side, fid, f"probe_activations.{p}") for p in shared_probes]
            act_rows.append(np.array(row))
            act_spaces.append(f"probe:{len(shared_probes)}")
            act_sources.append("correlational")
        elif signature is not None:
            act_rows.append(signature)
            act_spaces.append(f"imported:{len(signature)}")
            act_sources.append("imported")
        else:
            act_rows.append(None)
            act_spaces.append("")
            act_sources.append(None)
        decoder = _vector(feature.get("decoder_signature"), side, fid, "decoder_signature")
        dec_rows.append(decoder)
        effects, source = causal_vector(feature, side)
        causal_rows.append(np.array([effects.get(k, 0.0) for k in causal_keys]) if effects else None)
        causal_sources.append(source)
        if source == "interventional":
            mean_effects[i] = effects["mean_effect"]
        texts.append(feature_text(feature))

    text_rows: list[np.ndarray | None] = [None] * len(features)
    if encoder is not None:
        have = [i for i, t in enumerate(texts) if t is not None]
        emb_ND = np.asarray(encoder.encode([texts[i] for i in have]), dtype=np.float64)
        for j, i in enumerate(have):
            text_rows[i] = emb_ND[j]

    components = {
        "activation": _component(act_rows, act_spaces, act_sources, centred=True),
        "decoder": _component(dec_rows, [f"decoder:{len(r)}" if r is not None else "" for r in dec_rows],
                              ["correlational" if r is not None else None for r in dec_rows], centred=False),
        "text": _component(text_rows, ["text" if r is not None else "" for r in text_rows],
                           ["semantic" if r is not None else None for r in text_rows], centred=False),
        "causal": _component(causal_rows, ["causal" if r is not None else "" for r in causal_rows],
                             causal_sources, centred=False),
    }
    directions = tuple(
        d if isinstance(d := f.get("direction"), str) and d in ("promotes", "suppresses") else None
        for f in features
    )
    labels = tuple(lab if isinstance(lab := f.get("label"), str) else None for f in features)
    return Fingerprints(
        feature_ids=tuple(f["feature_id"] for f in features),
        labels=labels,
        directions=directions,
        mean_effects=mean_effects,
        components=components,
        synthetic=bool(report.get("synthetic", False)),
    )


def fingerprint_pair(
    left: dict[str, Any], right: dict[str, Any], *, encoder: Encoder | None
) -> tuple[Fingerprints, Fingerprints, list[str], list[str]]:
    """Fingerprints of two validated reports aligned on each other, and notes on the alignment.

    Returns:
        (left_fingerprints, right_fingerprints, shared_probe_ids, notes)
    """
    right_probes = set(probe_ids(right))
    shared = [p for p in probe_ids(left) if p in right_probes]
    notes: list[str] = []
    has_probe_acts = any(
        isinstance(f.get("probe_activations"), dict) and f["probe_activations"]
        for f in (*left["features"], *right["features"])
    )
    if has_probe_acts and len(shared) < MIN_SHARED_PROBES:
        notes.append(
            f"activation: the reports share {len(shared)} probe prompt(s), fewer than the "
            f"{MIN_SHARED_PROBES} a Pearson correlation needs; probe activations were not compared "
            "(run both inspections with the same probe prompts to compare them)"
        )
    keys: dict[str, None] = {}
    for side, report in (("left", left), ("right", right)):
        for feature in report["features"]:
            keys.update(dict.fromkeys(causal_vector(feature, side)[0]))
    causal_keys = sorted(keys)
    return (
        build_fingerprints(left, side="left", shared_probes=shared, causal_keys=causal_keys, encoder=encoder),
        build_fingerprints(right, side="right", shared_probes=shared, causal_keys=causal_keys, encoder=encoder),
        shared,
        notes,
    )
