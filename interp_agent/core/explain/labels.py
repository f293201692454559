"""Explanations in and out: imports from Neuronpedia, Goodfire and feature JSONL; label tables; Neuronpedia export.

Imports read through the bridges (:mod:`interp_agent.core.bridges.dashboards`,
:mod:`~interp_agent.core.bridges.neuronpedia`, :mod:`~interp_agent.core.bridges.goodfire`,
:mod:`interp_agent.core.formats.features`) and keep the feature ids they produce; every
imported explanation has ``Author(kind="imported")``, its source as the name, and the
explainer model the source names (if any) in the note. Imports were shown nothing here, so
their ``shown_contexts`` are empty; they are scored on held-out contexts like any other.

Exports:

- :func:`write_label_table`: one row per explanation with its scores by method, Parquet or CSV.
- :func:`to_neuronpedia_explanations`: objects with the field names of Neuronpedia's
  ``Explanation`` records (its Prisma schema, ``apps/webapp/prisma/schema.prisma`` in
  hijohnnylin/neuronpedia; the ``explanations[]`` entries of its feature API, which
  :func:`~interp_agent.core.bridges.dashboards.card_from_feature` reads back).
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from interp_agent.core.artifacts import atomic_open, clean_json, write_json
from interp_agent.core.bridges.cards import FeatureCard, card_of
from interp_agent.core.bridges.dashboards import layer_of_sae
from interp_agent.core.bridges.goodfire import cards_from_goodfire, read_goodfire_export
from interp_agent.core.bridges.neuronpedia import NeuronpediaClient, load_cards
from interp_agent.core.errors import InputFileError, ValidationError, arg
from interp_agent.core.explain.explainers import fit_explanation_text
from interp_agent.core.explain.explanations import (
    MAX_EXPLANATION_CHARS,
    Author,
    Explanation,
    Method,
    Score,
    ScoredExplanation,
    check_explanation_text,
)
from interp_agent.core.formats.features import FeatureRecord, read_features
from interp_agent.core.formats.jsonl import write_jsonl
from interp_agent.core.ids import match_feature_id

LABEL_METHODS: tuple[Method, ...] = ("embedding", "detection", "fuzzing", "output")
"""Scoring methods of the label table, in column order."""
_METHOD_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("auroc", pa.float64()), ("auroc_ci_low", pa.float64()), ("auroc_ci_high", pa.float64()),
    ("null_auroc", pa.float64()), ("margin_ci_low", pa.float64()), ("judge", pa.string()),
    ("n_positive", pa.int64()), ("n_negative", pa.int64()),
)
LABEL_SCHEMA = pa.schema(
    [("feature_id", pa.string()), ("explanation", pa.string()), ("author_kind", pa.string()),
     ("author_name", pa.string()), ("author_note", pa.string())]
    + [(f"{m}_{name}", kind) for m in LABEL_METHODS for name, kind in _METHOD_COLUMNS])
"""Columns of the label table: ``{method}_auroc``, ``…_auroc_ci_low``/``_high``, ``…_null_auroc`` (the
random-explanation null), ``…_margin_ci_low`` (lower end of the margin over it), ``…_judge``,
``…_n_positive``, ``…_n_negative``; all null for a method that did not score the explanation."""
LABEL_SUFFIXES = (".parquet", ".csv")
NEURONPEDIA_EXPLANATION_FIELDS = ("modelId", "layer", "index", "description", "typeName", "explanationModelName",
                                  "notes", "createdAt", "scores")
"""The fields :func:`to_neuronpedia_explanations` fills, all named as in Neuronpedia's ``Explanation``."""
NEURONPEDIA_TYPE_PREFIX = "interp-agent"
_NEURONPEDIA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# --- imports --------------------------------------------------------------------------------


def _imported(feature_id: str, text: str, name: str, notes: Sequence[str | None]) -> Explanation | None:
    fitted = fit_explanation_text(text)
    if not fitted:
        return None
    parts = [n for n in notes if n]
    if len(" ".join(text.split())) > MAX_EXPLANATION_CHARS:
        parts.append(f"cut to {MAX_EXPLANATION_CHARS} characters")
    return Explanation(feature_id, check_explanation_text(fitted), Author("imported", name, "; ".join(parts)))


def _card_origin(card: FeatureCard) -> str | None:
    where = card.source.get("file") or card.source.get("url") or card.source.get("ref")
    return f"from {where}" if where else None


def explanations_from_cards(cards: Iterable[FeatureCard], *, name: str | None = None) -> list[Explanation]:
    """Every explanation of every card, in order (a card's preferred one first).

    Args:
        cards: feature cards from the Neuronpedia or Goodfire bridges.
        name: the author name; default the card's source kind (``neuronpedia``, ``goodfire``).

    Returns:
        One explanation per (card, explanation), author ``imported``, the note naming the explainer
        model and Neuronpedia explanation type when the source gives them, and where the card came from.
    """
    out: list[Explanation] = []
    for card in cards:
        details = card.extra.get("explanations")
        details = details if isinstance(details, list) and len(details) == len(card.explanations) else []
        for i, text in enumerate(card.explanations):
            info = details[i] if details and isinstance(details[i], dict) else {}
            notes = [f"explainer model {info['model']}" if info.get("model") else None,
                     f"Neuronpedia type {info['type']}" if info.get("type") else None, _card_origin(card)]
            found = _imported(card.feature_id, text, name or str(card.source.get("kind")), notes)
            if found is not None:
                out.append(found)
    return out


def explanations_from_neuronpedia(items: Iterable[FeatureCard | str | Path] | str | Path, *,
                                  client: NeuronpediaClient | None = None) -> list[Explanation]:
    """Explanations from Neuronpedia cards, SAEDashboard/Neuronpedia JSON files, or refs (fetched with ``client``).

    Files and refs are read by :func:`~interp_agent.core.bridges.neuronpedia.load_cards`; feature ids
    are the bridge's (``SAE:L{layer}:F{index}``). A card without explanations adds nothing.

    Raises:
        InputFileError: a bad export file.
        RemoteServiceError: a ref could not be fetched.
        ValidationError: a value that is neither a card, a file nor a ref.
    """
    listed = [items] if isinstance(items, (str, Path)) else list(items)
    cards = [c for c in listed if isinstance(c, FeatureCard)]
    others = [c for c in listed if not isinstance(c, FeatureCard)]
    if others:
        cards += load_cards(others, client=client)
    return explanations_from_cards(cards, name="neuronpedia")


def from_goodfire(features: Any, **kwargs: Any) -> list[Explanation]:
    """Explanations from Goodfire features: SDK objects, their ``.json()`` dicts, a FeatureGroup, or a JSON file.

    Keyword arguments (``model``, ``layer``, ``sae_id``) are those of
    :func:`~interp_agent.core.bridges.goodfire.cards_from_goodfire`. Goodfire labels name no explainer model.

    Raises:
        InputFileError: a bad JSON file.
        ValidationError: something that is not a Goodfire feature.
    """
    cards = read_goodfire_export(features, **kwargs) if isinstance(features, (str, Path)) else (
        cards_from_goodfire(features, **kwargs))
    return explanations_from_cards(cards, name="goodfire")


def _record_explanations(record: FeatureRecord, name: str) -> list[Explanation]:
    card = card_of(record)
    if card is not None and card.explanations:
        return explanations_from_cards([card], name=name)
    texts = list(dict.fromkeys(t for t in (record.label, record.explanation) if t and t.strip()))
    source = f"source {record.source}" if record.source else None
    found = [_imported(record.feature_id, t, name, [source]) for t in texts]
    return [e for e in found if e is not None]


def from_feature_jsonl(path: str | Path) -> list[Explanation]:
    """Explanations from a feature JSONL file: each row's ``label`` and ``explanation`` (or its card's explanations).

    The author name is the file name; the note gives the row's ``source`` and any explainer model its card names.

    Raises:
        InputFileError: the file is missing or malformed (names the file and line).
    """
    path = Path(path)
    return [e for record in read_features(path) for e in _record_explanations(record, path.name)]


# --- the label table ------------------------------------------------------------------------


def _ci(score: Score | None, which: int) -> float | None:
    ci = None if score is None else score.auroc.ci95
    return None if ci is None else float(ci[which])


def label_row(item: ScoredExplanation) -> dict[str, Any]:
    """One label-table row (the columns of :data:`LABEL_SCHEMA`)."""
    e = item.explanation
    row: dict[str, Any] = {"feature_id": e.feature_id, "explanation": e.text, "author_kind": e.author.kind,
                           "author_name": e.author.name, "author_note": e.author.note}
    for method in LABEL_METHODS:
        s = item.score(method)
        margin = None if s is None else s.margin_over_random.ci95
        row |= {
            f"{method}_auroc": None if s is None else s.auroc.value,
            f"{method}_auroc_ci_low": _ci(s, 0), f"{method}_auroc_ci_high": _ci(s, 1),
            f"{method}_null_auroc": None if s is None else s.null_random_explanation.value,
            f"{method}_margin_ci_low": None if margin is None else float(margin[0]),
            f"{method}_judge": None if s is None else s.judge,
            f"{method}_n_positive": None if s is None else s.n_positive,
            f"{method}_n_negative": None if s is None else s.n_negative,
        }
    return row


def _label_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in LABEL_SUFFIXES:
        raise ValidationError(f"{arg('path', str(path))}: a label table is written as .parquet or .csv, "
                              f"not {suffix or 'a file without a suffix'}",
                              hint="end the path with .parquet or .csv")
    return suffix


def write_label_table(path: str | Path, items: Iterable[ScoredExplanation]) -> Path:
    """Write one row per explanation, Parquet or CSV by the path's suffix, atomically.

    Raises:
        ValidationError: the suffix is neither ``.parquet`` nor ``.csv``.
    """
    path = Path(path)
    suffix = _label_format(path)
    rows = [label_row(item) for item in items]
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        with atomic_open(path) as fh:
            writer = csv.DictWriter(fh, fieldnames=LABEL_SCHEMA.names, lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
        return path
    table = pa.Table.from_pylist(rows, schema=LABEL_SCHEMA)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_label_table(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a label table written by :func:`write_label_table` (CSV values typed back; empty cells None).

    Raises:
        ValidationError: the suffix is neither ``.parquet`` nor ``.csv``.
        InputFileError: the file is missing or unreadable.
    """
    path = Path(path)
    suffix = _label_format(path)
    try:
        if suffix == ".parquet":
            return pq.read_table(path).to_pylist()
        with path.open(encoding="utf-8", newline="") as fh:
            raw = list(csv.DictReader(fh))
    except (OSError, pa.ArrowException) as exc:
        raise InputFileError(path, f"cannot be read as a label table: {exc}") from exc
    kinds = {f.name: f.type for f in LABEL_SCHEMA}

    def typed(name: str, value: str) -> Any:
        kind = kinds.get(name, pa.string())
        if kind == pa.string():
            return None if value == "" and name.endswith("_judge") else value
        if value == "":
            return None
        return float(value) if kind == pa.float64() else int(value)

    return [{k: typed(k, v) for k, v in row.items()} for row in raw]


# --- Neuronpedia export ---------------------------------------------------------------------


def _neuronpedia_index(feature_id: str, source_id: str) -> str | None:
    """The latent index to export ``feature_id`` as, or None when it cannot be a latent of ``source_id``."""
    fid = match_feature_id(feature_id)
    if fid is None or fid.kind != "sae" or fid.index is None:
        return None
    source_layer = layer_of_sae(source_id)
    if fid.layer is not None and source_layer is not None and fid.layer != source_layer:
        return None
    if fid.sae_id is not None and fid.sae_id != source_id:
        return None
    return str(fid.index)


def _neuronpedia_score(score: Score) -> dict[str, Any] | None:
    if score.auroc.value is None:
        return None
    details = {"method": score.method, "metric": "auroc", "ci95": score.auroc.ci95,
               "null_random_explanation": score.null_random_explanation.value,
               "margin_over_random_ci95": score.margin_over_random.ci95, "n_positive": score.n_positive,
               "n_negative": score.n_negative, "provenance": score.provenance, "judge": score.judge}
    return {"value": float(score.auroc.value),
            "explanationScoreTypeName": f"{NEURONPEDIA_TYPE_PREFIX}_{score.method}-auroc",
            "explanationScoreModelName": score.judge or "none",
            "jsonDetails": json.dumps(clean_json(details), allow_nan=False)}


def to_neuronpedia_explanations(items: Iterable[ScoredExplanation | Explanation], *, model_id: str,
                                source_id: str) -> list[dict[str, Any]]:
    """Explanations as Neuronpedia ``Explanation`` objects, for its upload API or an explanations export.

    Fields filled (Neuronpedia's names): ``modelId`` = ``model_id``; ``layer`` = ``source_id`` (Neuronpedia's
    SAE id, e.g. ``15-res-jb``; the feature API calls it ``layer``); ``index`` = the latent index as a string;
    ``description`` = the text; ``typeName`` = ``interp-agent_{author kind}`` (``-`` for ``_``);
    ``explanationModelName`` = the author name; ``notes`` = the author note; ``createdAt``; ``scores`` = one
    ``{value, explanationScoreTypeName: interp-agent_{method}-auroc, explanationScoreModelName: judge or
    "none", jsonDetails}`` per score with an AUROC (``jsonDetails`` is a JSON string with the interval, the
    random-explanation null, the margin interval, the counts and the provenance). Not filled:
    ``id``, ``authorId`` and ``triggeredByUserId`` (Neuronpedia assigns them from the uploading account),
    ``scoreV1``/``scoreV2``, the embedding and the umap fields.

    Only SAE latents can be exported: ids ``SAE:L{layer}:F{i}`` (the layer must be the one ``source_id``
    starts with, when it starts with one), ``SAE:{source_id}:F{i}`` or ``SAE:F{i}``. Any other id raises.

    Raises:
        ValidationError: ``model_id`` or ``source_id`` is not a Neuronpedia name, or some feature ids are
            not latents of that SAE (the message names them).
    """
    for name, value in (("model_id", model_id), ("source_id", source_id)):
        if not isinstance(value, str) or not _NEURONPEDIA_NAME.match(value):
            raise ValidationError(f"{arg(name, value)} is not a Neuronpedia id (letters, digits, '.', '_', '-')",
                                  hint="e.g. model_id='gpt2-small', source_id='6-res-jb'")
    scored = [i if isinstance(i, ScoredExplanation) else ScoredExplanation(i) for i in items]
    indices = {s.explanation.feature_id: _neuronpedia_index(s.explanation.feature_id, source_id) for s in scored}
    bad = [fid for fid, index in indices.items() if index is None]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ValidationError(
            f"{len(bad)} feature id(s) cannot be exported as latents of Neuronpedia source {source_id!r}: {shown}",
            hint="export SAE latents only (SAE:L{layer}:F{i} with the source's layer); filter the others out first")
    out: list[dict[str, Any]] = []
    for s in scored:
        e = s.explanation
        scores = [d for d in (_neuronpedia_score(sc) for sc in s.scores) if d is not None]
        out.append({"modelId": model_id, "layer": source_id, "index": indices[e.feature_id], "description": e.text,
                    "typeName": f"{NEURONPEDIA_TYPE_PREFIX}_{e.author.kind.replace('_', '-')}",
                    "explanationModelName": e.author.name, "notes": e.author.note, "createdAt": e.created,
                    "scores": scores})
    return out


def write_neuronpedia_explanations(path: str | Path, items: Iterable[ScoredExplanation | Explanation], *,
                                   model_id: str, source_id: str) -> Path:
    """Write :func:`to_neuronpedia_explanations` atomically: a JSON array (``.json``) or one object a line (``.jsonl``).

    Raises:
        ValidationError: another suffix, or what :func:`to_neuronpedia_explanations` raises.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".jsonl"):
        raise ValidationError(f"{arg('path', str(path))}: Neuronpedia explanations are written as .json or .jsonl",
                              hint="end the path with .json (an array) or .jsonl (one explanation a line)")
    rows = to_neuronpedia_explanations(items, model_id=model_id, source_id=source_id)
    return write_json(path, rows) if suffix == ".json" else write_jsonl(path, rows)


def read_explanations_file(path: str | Path) -> list[Explanation]:
    """Explanations from a file of any form explain reads: its own ``explanations.jsonl`` (scores dropped: they
    are measured again), a feature JSONL with labels, a Neuronpedia / SAEDashboard JSON export, or a Goodfire
    SDK export (``Feature.json()`` / ``FeatureGroup.json()``).

    Raises:
        InputFileError: the file is missing or is none of these (file and line named where known).
    """
    from interp_agent.core.explain.explanations import EXPLANATION_SCHEMA, iter_explanations

    p = Path(path)
    if not p.is_file():
        raise InputFileError(p, "no such file", hint="give explanations.jsonl, a feature JSONL or a Neuronpedia export")
    with p.open(encoding="utf-8") as handle:
        first = handle.readline()
    try:
        head = json.loads(first) if first.strip() else None
    except json.JSONDecodeError:
        head = None
    if isinstance(head, dict) and head.get("schema_version") == EXPLANATION_SCHEMA:
        return [item.explanation for item in iter_explanations(p)]
    if p.suffix.lower() in (".jsonl", ".ndjson"):
        return from_feature_jsonl(p)
    try:
        return explanations_from_neuronpedia(p)
    except (InputFileError, ValidationError) as neuronpedia_error:
        try:
            return from_goodfire(p)
        except (InputFileError, ValidationError):
            raise neuronpedia_error from None
