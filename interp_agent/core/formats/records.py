"""Activation records JSONL: one prompt or token position per row.

A row is ``{model, prompt_id, text, criterion_score, features}`` where ``features`` is
either a map ``{feature_id: activation}`` or a list of ``{feature_id, activation,
label?, layer?, decoder_signature?}``. Optional: ``token_index``, ``token``, ``split``
and ``feature_metadata`` (``{feature_id: {label, layer, decoder_signature, …}}``).
A feature absent from a row has activation 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from interp_agent.core.errors import InputFileError
from interp_agent.core.formats.ids import fnv1a64
from interp_agent.core.formats.jsonl import Fields, iter_json_objects, write_jsonl
from interp_agent.core.formats.prompts import normalise_split

_ROW_FIELDS = {
    "model", "prompt_id", "text", "criterion_score", "features", "feature_metadata",
    "token_index", "token", "split",
}
_META_FIELDS = ("label", "layer", "explanation", "decoder_signature")


@dataclass(frozen=True, slots=True)
class ActivationRecord:
    """Feature activations on one prompt (or one token of it) with the prompt's criterion score."""

    prompt_id: str
    """Id of the prompt; tokens of one prompt share it."""
    criterion_score: float
    """Criterion score of the prompt."""
    feature_ids: tuple[str, ...]
    """Ids of the features present in this row."""
    activations: tuple[float, ...]
    """Activations, parallel to ``feature_ids``."""
    text: str = ""
    """Prompt text (or the text up to this token)."""
    model: str | None = None
    """Model the activations came from."""
    token_index: int | None = None
    """Token position for token-level rows; None for prompt-level rows."""
    token: str | None = None
    """The token at ``token_index``."""
    split: str | None = None
    """``train`` or ``held_out`` when the file fixes it."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Unrecognised fields, kept so that conversions lose nothing."""

    @property
    def key(self) -> tuple[str, int | None]:
        """Identity of the row: prompt id and token index."""
        return (self.prompt_id, self.token_index)


@dataclass(slots=True)
class FeatureMeta:
    """What a records file says about a feature besides its activations."""

    label: str | None = None
    layer: int | None = None
    explanation: str | None = None
    decoder_signature: tuple[float, ...] | None = None

    def merge(self, other: dict[str, Any]) -> None:
        """Fill fields still unknown from ``other`` (first value seen wins)."""
        for name in _META_FIELDS:
            if getattr(self, name) is None and other.get(name) is not None:
                value = other[name]
                setattr(self, name, tuple(value) if name == "decoder_signature" else value)

    def to_json(self) -> dict[str, Any]:
        """Non-empty fields as a JSON object."""
        out: dict[str, Any] = {}
        for name in _META_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if name == "decoder_signature" else value
        return out


class RecordReader:
    """Streams activation records from JSONL, collecting feature metadata as it goes.

    Memory: the metadata of each feature, plus an 8-byte key per row to catch duplicate
    rows (checked when the file ends; the error names both lines).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.feature_metadata: dict[str, FeatureMeta] = {}
        self.rows_read = 0

    def __iter__(self) -> Iterator[ActivationRecord]:
        keys = _RowKeys()
        for line, obj in iter_json_objects(self.path):
            record = self._parse(obj, line)
            keys.add(record.prompt_id, record.token_index)
            self.rows_read += 1
            yield record
        if self.rows_read == 0:
            raise InputFileError(self.path, "no activation records in file", hint="one JSON object per line")
        suspects = keys.repeated()
        if len(suspects):
            self._raise_duplicate(suspects)

    def _raise_duplicate(self, suspects: np.ndarray) -> None:
        """Find the lines behind repeated keys (a 64-bit hash may collide) and name both."""
        wanted = set(suspects.tolist())
        first_line: dict[tuple[str, int | None], int] = {}
        for line, obj in iter_json_objects(self.path):
            key = (str(obj.get("prompt_id")), obj.get("token_index"))
            if int(row_keys([key[0]], [key[1]])[0]) not in wanted:
                continue
            if key in first_line:
                raise InputFileError(
                    self.path,
                    f"duplicate prompt_id {key[0]!r}"
                    + (f" at token_index {key[1]}" if key[1] is not None else "")
                    + f" (first on line {first_line[key]})",
                    line=line,
                    field="prompt_id",
                    hint="each prompt (or prompt and token_index) must appear once",
                )
            first_line[key] = line


    def _parse(self, obj: dict[str, Any], line: int) -> ActivationRecord:
        f = Fields(obj, self.path, line)
        feats = f.required("features")
        ids: list[str] = []
        acts: list[float] = []
        if isinstance(feats, dict):
            ids = list(feats)
            acts = list(feats.values())
            kinds = set(map(type, acts))
            if not kinds <= {float, int}:
                for fid, value in feats.items():
                    if isinstance(value, bool) or not isinstance(value, (int, float)):
                        raise f.error(f"features.{fid}", f"expected a finite number, got {value!r}")
            if int in kinds:
                for i, (fid, value) in enumerate(feats.items()):
                    try:
                        acts[i] = float(value)
                    except OverflowError:
                        raise f.error(f"features.{fid}", f"expected a finite number, got {value!r}") from None
        elif isinstance(feats, list):
            for i, entry in enumerate(feats):
                if not isinstance(entry, dict):
                    raise f.error(f"features[{i}]", "expected an object with feature_id and activation")
                ef = Fields(entry, self.path, line)
                try:
                    fid = ef.string("feature_id")
                    value = ef.number("activation")
                except InputFileError:
                    missing = "feature_id" if "feature_id" not in entry else "activation"
                    raise f.error(
                        f"features[{i}].{missing}", "required, and must be a string id / finite number"
                    ) from None
                ids.append(fid)
                acts.append(value)
                if any(k in entry for k in _META_FIELDS):
                    self._meta(fid, entry, f, f"features[{i}]")
        else:
            raise f.error("features", "expected a map {feature_id: activation} or a list of objects")
        if isinstance(feats, list) and len(set(ids)) != len(ids):  # JSON object keys are unique already
            raise f.error("features", "a feature_id appears twice in one row")
        meta = f.mapping("feature_metadata")
        if meta:
            for fid, entry in meta.items():
                if not isinstance(entry, dict):
                    raise f.error(f"feature_metadata.{fid}", "expected an object")
                self._meta(fid, entry, f, f"feature_metadata.{fid}")
        return ActivationRecord(
            prompt_id=f.string("prompt_id"),
            criterion_score=f.number("criterion_score"),
            feature_ids=tuple(ids),
            activations=tuple(acts),
            text=f.string("text", required=False, default="") or "",
            model=f.string("model", required=False),
            token_index=f.integer("token_index"),
            token=f.string("token", required=False),
            split=normalise_split(f.string("split", required=False), f),
            extra={k: v for k, v in obj.items() if k not in _ROW_FIELDS},
        )

    def _meta(self, fid: str, entry: dict[str, Any], f: Fields, where: str) -> None:
        sig = entry.get("decoder_signature")
        if sig is not None and (
            not isinstance(sig, list)
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in sig)
        ):
            raise f.error(f"{where}.decoder_signature", "expected a list of finite numbers")
        layer = entry.get("layer")
        if layer is not None and (isinstance(layer, bool) or not isinstance(layer, int)):
            raise f.error(f"{where}.layer", f"expected an integer, got {layer!r}")
        self.feature_metadata.setdefault(fid, FeatureMeta()).merge(entry)


def row_keys(prompt_ids: list[str], token_index: list[int | None]) -> np.ndarray:
    """64-bit key of (prompt_id, token_index) per row."""
    tok = np.array([-1 if t is None else t for t in token_index], dtype=np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        return fnv1a64(prompt_ids) ^ (tok * np.uint64(0x9E3779B97F4A7C15))


class _RowKeys:
    """Collects row keys in numpy arrays (8 bytes a row) and finds repeats at the end."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.ids: list[str] = []
        self.tokens: list[int | None] = []

    def add(self, prompt_id: str, token_index: int | None) -> None:
        self.ids.append(prompt_id)
        self.tokens.append(token_index)
        if len(self.ids) >= 8192:
            self._flush()

    def _flush(self) -> None:
        if self.ids:
            self.parts.append(row_keys(self.ids, self.tokens))
            self.ids, self.tokens = [], []

    def repeated(self) -> np.ndarray:
        self._flush()
        keys = np.sort(np.concatenate(self.parts)) if self.parts else np.zeros(0, np.uint64)
        return np.unique(keys[1:][keys[1:] == keys[:-1]])


def read_records(path: str | Path) -> tuple[list[ActivationRecord], dict[str, FeatureMeta]]:
    """Read a whole records JSONL file into memory (small files; use RecordReader to stream)."""
    reader = RecordReader(path)
    rows = list(reader)
    return rows, reader.feature_metadata


def record_to_json(record: ActivationRecord) -> dict[str, Any]:
    """The canonical JSONL row (map form) of a record."""
    row: dict[str, Any] = {}
    if record.model is not None:
        row["model"] = record.model
    row["prompt_id"] = record.prompt_id
    if record.token_index is not None:
        row["token_index"] = record.token_index
    if record.token is not None:
        row["token"] = record.token
    row["text"] = record.text
    row["criterion_score"] = record.criterion_score
    if record.split is not None:
        row["split"] = record.split
    row["features"] = dict(zip(record.feature_ids, record.activations, strict=True))
    return row | record.extra


def write_records(
    path: str | Path, records: Iterable[ActivationRecord], feature_metadata: dict[str, FeatureMeta] | None = None
) -> Path:
    """Write records as JSONL atomically; feature metadata goes on the first row."""

    def rows() -> Iterator[dict[str, Any]]:
        first = True
        for record in records:
            row = record_to_json(record)
            if first and feature_metadata:
                row["feature_metadata"] = {k: m.to_json() for k, m in feature_metadata.items() if m.to_json()}
            first = False
            yield row

    return write_jsonl(path, rows())
