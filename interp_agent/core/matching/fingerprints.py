"""Fingerprints: the comparable evidence of each feature in one inspection report.

A fingerprint has up to four components. Activation, decoder and text are each a matrix
with one row per feature, a presence mask, and a *space* per row: two rows are
comparable only when their spaces are equal (same kind of evidence, same length). A
component a feature lacks is masked, never filled with zeros that would then count as
a similarity.

- activation: mean activation on the probe prompts both reports share (compared by
  Pearson correlation), or, for a feature without probe activations, its imported
  index-aligned ``activation_signature``.
- decoder: ``decoder_signature`` (cosine; only between signatures of the same length).
- text: sentence embedding of label and explanation (first examples when unlabelled);
  embedded only when both reports have some text, so the encoder never loads otherwise.
- causal: named measures (signed effect on the criterion, side effect, …) compared on
  the measures both features have; see :mod:`interp_agent.core.matching.causal`.

Activation alignment and text embedding depend on both reports, so fingerprints are
built per pair of reports by :func:`fingerprint_pair`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from interp_agent.core.matching.causal import CausalComponent, causal_component
from interp_agent.core.matching.fields import imported_block, mapping, number, vector
from interp_agent.core.matching.text import Encoder

ComponentName = Literal["activation", "decoder", "text", "causal"]
COMPONENTS: tuple[ComponentName, ...] = ("activation", "decoder", "text", "causal")
MIN_SHARED_PROBES = 3
"""Fewest shared probe prompts for which a Pearson correlation means anything."""
_EXAMPLES_FOR_TEXT = 3


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
    components: dict[str, Component]
    """activation, decoder, text → evidence; see the module docstring."""
    causal: CausalComponent
    """The causal evidence as named measures."""
    synthetic: bool
    """True when the report was built from synthetic data."""

    def __len__(self) -> int:
        return len(self.feature_ids)

    def component(self, name: str) -> Component | CausalComponent:
        """The evidence of component ``name`` (one of :data:`COMPONENTS`)."""
        return self.causal if name == "causal" else self.components[name]


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


def scored_explanation(feature: dict[str, Any]) -> str | None:
    """The text of a feature's ``explained`` entry (written by explain) when its embedding score beats the
    random-explanation null (the paired-bootstrap interval of the margin lies above 0), else None."""
    explained = feature.get("explained")
    if not isinstance(explained, dict) or not isinstance(explained.get("text"), str):
        return None
    for score in explained.get("scores") or []:
        ci = (score.get("margin_over_random") or {}).get("ci95") if isinstance(score, dict) else None
        if score.get("method") == "embedding" and ci and ci[0] > 0:
            return explained["text"].strip() or None
    return None


def feature_text(feature: dict[str, Any]) -> str | None:
    """The text embedded for a feature: a scored explanation that beats its null, label and explanation, or its
    first examples when it has none of these."""
    parts: list[str] = []
    scored = scored_explanation(feature)
    if scored:
        parts.append(scored)
    for key in ("label", "explanation"):
        value = feature.get(key)
        if isinstance(value, str) and value.strip() and value.strip() not in parts:
            parts.append(value.strip())
    if not scored and not (isinstance(feature.get("label"), str) and feature["label"].strip()):
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


def _activation_rows(
    features: list[dict[str, Any]], side: str, shared_probes: list[str]
) -> tuple[list[np.ndarray | None], list[str], list[str | None]]:
    """Per feature: probe activations on the shared probes (else the imported signature), space, source."""
    use_probes = len(shared_probes) >= MIN_SHARED_PROBES
    rows: list[np.ndarray | None] = []
    spaces: list[str] = []
    sources: list[str | None] = []
    for feature in features:
        fid = feature["feature_id"]
        probes = mapping(feature.get("probe_activations"), side, fid, "probe_activations")
        signature = vector(imported_block(feature, side).get("activation_signature"), side, fid,
                           "imported.activation_signature")
        if probes and use_probes:
            # A probe prompt missing from the dict is one the feature did not fire on.
            row = [number(probes.get(p, 0.0), side, fid, f"probe_activations.{p}") for p in shared_probes]
            rows.append(np.array(row))
            spaces.append(f"probe:{len(shared_probes)}")
            sources.append("correlational")
        elif signature is not None:
            rows.append(signature)
            spaces.append(f"imported:{len(signature)}")
            sources.append("imported")
        else:
            rows.append(None)
            spaces.append("")
            sources.append(None)
    return rows, spaces, sources


def build_fingerprints(
    report: dict[str, Any],
    *,
    side: str,
    shared_probes: list[str],
    text_rows: list[np.ndarray | None] | None = None,
) -> Fingerprints:
    """Fingerprint every feature of a validated report.

    Args:
        report: an inspection report (already validated).
        side: ``left`` or ``right``; named in error messages.
        shared_probes: probe prompt ids both reports share, in the order to align on; probe
            activations are used only when there are at least ``MIN_SHARED_PROBES``.
        text_rows: per feature, the embedding of :func:`feature_text` (None where it has no
            text); None leaves the text component absent.

    Raises:
        ValidationError: a feature field has the wrong type or a non-finite number.
    """
    features: list[dict[str, Any]] = report["features"]
    act_rows, act_spaces, act_sources = _activation_rows(features, side, shared_probes)
    dec_rows = [vector(f.get("decoder_signature"), side, f["feature_id"], "decoder_signature") for f in features]
    texts: list[np.ndarray | None] = text_rows if text_rows is not None else [None] * len(features)
    components = {
        "activation": _component(act_rows, act_spaces, act_sources, centred=True),
        "decoder": _component(dec_rows, [f"decoder:{len(r)}" if r is not None else "" for r in dec_rows],
                              ["correlational" if r is not None else None for r in dec_rows], centred=False),
        "text": _component(texts, ["text" if r is not None else "" for r in texts],
                           ["semantic" if r is not None else None for r in texts], centred=False),
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
        components=components,
        causal=causal_component(features, side),
        synthetic=bool(report.get("synthetic", False)),
    )


def report_texts(report: dict[str, Any]) -> list[str | None]:
    """Per feature of a report, the text :func:`feature_text` embeds (None where it has none)."""
    return [feature_text(f) for f in report["features"]]


def _embed_pair(
    left_texts: list[str | None], right_texts: list[str | None], encoder: Encoder
) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
    """Embed both reports' texts in one encoder call; None rows stay None."""
    flat = [t for t in (*left_texts, *right_texts) if t is not None]
    emb_ND = np.asarray(encoder.encode(flat), dtype=np.float64).reshape(len(flat), -1)
    rows = iter(emb_ND)
    left_rows = [next(rows) if t is not None else None for t in left_texts]
    right_rows = [next(rows) if t is not None else None for t in right_texts]
    return left_rows, right_rows


def _text_missing_note(have_left: bool, have_right: bool) -> str:
    what = "feature label, explanation or example text to embed; the sentence encoder was not loaded"
    if not (have_left or have_right):
        return f"text: dropped, neither report has a {what}"
    return f"text: dropped, the {'right' if have_left else 'left'} report has no {what}"


def fingerprint_pair(
    left: dict[str, Any], right: dict[str, Any], *, encoder: Encoder | None
) -> tuple[Fingerprints, Fingerprints, list[str], list[str]]:
    """Fingerprints of two validated reports aligned on each other, and notes on the alignment.

    Args:
        encoder: sentence encoder for the text component; it is called (once, for both
            reports) only when both reports have some text. None leaves text absent.

    Returns:
        (left_fingerprints, right_fingerprints, shared_probe_ids, notes)

    Raises:
        ValidationError: a feature field has the wrong type or a non-finite number.
        MissingDependencyError: the encoder is needed and cannot load.
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
    left_rows: list[np.ndarray | None] | None = None
    right_rows: list[np.ndarray | None] | None = None
    if encoder is not None:
        left_texts, right_texts = report_texts(left), report_texts(right)
        have_left, have_right = any(t is not None for t in left_texts), any(t is not None for t in right_texts)
        if have_left and have_right:
            left_rows, right_rows = _embed_pair(left_texts, right_texts, encoder)
        else:
            notes.append(_text_missing_note(have_left, have_right))
    return (
        build_fingerprints(left, side="left", shared_probes=shared, text_rows=left_rows),
        build_fingerprints(right, side="right", shared_probes=shared, text_rows=right_rows),
        shared,
        notes,
    )
