"""Columnar (Parquet) form of activation records, for runs too big for JSONL.

A records dataset is a folder:

- ``activations.parquet``: long sparse rows ``(row int64, feature int32, activation float64)``,
  sorted by ``row``; a feature absent for a row has activation 0.
- ``rows.parquet``: one line per record row: ``row, prompt_id, prompt_fnv (FNV-1a of the id), token_index, token, text,
  criterion_score, model, split, extra`` (``extra`` holds unrecognised JSON fields).
- ``features.parquet``: ``feature, feature_id, label, layer, explanation, decoder_signature``.
- ``meta.json``: schema version and counts.

Conversion JSONL → Parquet → JSONL loses nothing (activations stay float64).
Readers stream both tables in step, so memory is bounded by the batch size and the
number of features, not by the number of rows.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from interp_agent.core.artifacts import schema_version, write_json
from interp_agent.core.errors import InputFileError
from interp_agent.core.formats.ids import fnv1a64
from interp_agent.core.formats.records import ActivationRecord, FeatureMeta, RecordReader, write_records

ACTIVATIONS = "activations.parquet"
ROWS = "rows.parquet"
FEATURES = "features.parquet"
META = "meta.json"

ACTIVATION_SCHEMA = pa.schema([("row", pa.int64()), ("feature", pa.int32()), ("activation", pa.float64())])
ROW_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("prompt_id", pa.string()),
        ("prompt_fnv", pa.uint64()),
        ("token_index", pa.int32()),
        ("token", pa.string()),
        ("text", pa.string()),
        ("criterion_score", pa.float64()),
        ("model", pa.string()),
        ("split", pa.string()),
        ("extra", pa.string()),
    ]
)
FEATURE_SCHEMA = pa.schema(
    [
        ("feature", pa.int32()),
        ("feature_id", pa.string()),
        ("label", pa.string()),
        ("layer", pa.int32()),
        ("explanation", pa.string()),
        ("decoder_signature", pa.list_(pa.float64())),
    ]
)


def is_parquet_dataset(path: str | Path) -> bool:
    """Whether ``path`` is a records dataset folder."""
    p = Path(path)
    return p.is_dir() and (p / ACTIVATIONS).is_file() and (p / ROWS).is_file()


def write_parquet_dataset(
    out: str | Path,
    records: Iterable[ActivationRecord],
    feature_metadata: dict[str, FeatureMeta] | None = None,
    *,
    chunk_rows: int = 8192,
) -> Path:
    """Write records as a Parquet records dataset folder, atomically (temp folder, then rename).

    ``feature_metadata`` may be filled while ``records`` is consumed (as RecordReader does);
    it is read after the last record.
    """
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        index: dict[str, int] = {}
        n_rows = n_nonzero = 0
        with (
            pq.ParquetWriter(tmp / ACTIVATIONS, ACTIVATION_SCHEMA) as aw,
            pq.ParquetWriter(tmp / ROWS, ROW_SCHEMA) as rw,
        ):
            buf_rows: list[ActivationRecord] = []
            for record in records:
                buf_rows.append(record)
                if len(buf_rows) >= chunk_rows:
                    n_nonzero += _write_chunk(aw, rw, buf_rows, n_rows, index)
                    n_rows += len(buf_rows)
                    buf_rows = []
            if buf_rows:
                n_nonzero += _write_chunk(aw, rw, buf_rows, n_rows, index)
                n_rows += len(buf_rows)
        ids = list(index)
        write_feature_table(tmp, ids, feature_metadata or {})
        write_json(
            tmp / META,
            {
                "schema_version": schema_version("activation_records"),
                "n_rows": n_rows,
                "n_nonzero": n_nonzero,
                "n_features": len(ids),
            },
        )
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def write_feature_table(folder: Path, ids: list[str], meta: dict[str, FeatureMeta]) -> None:
    """Write features.parquet: index, id and metadata of each feature."""
    table = pa.table(
        {
            "feature": pa.array(range(len(ids)), pa.int32()),
            "feature_id": pa.array(ids, pa.string()),
            "label": pa.array([meta[i].label if i in meta else None for i in ids], pa.string()),
            "layer": pa.array([meta[i].layer if i in meta else None for i in ids], pa.int32()),
            "explanation": pa.array([meta[i].explanation if i in meta else None for i in ids], pa.string()),
            "decoder_signature": pa.array(
                [list(sig) if (sig := meta[i].decoder_signature if i in meta else None) else None for i in ids],
                pa.list_(pa.float64()),
            ),
        },
        schema=FEATURE_SCHEMA,
    )
    pq.write_table(table, Path(folder) / FEATURES)


def _write_chunk(
    aw: pq.ParquetWriter, rw: pq.ParquetWriter, rows: list[ActivationRecord], start: int, index: dict[str, int]
) -> int:
    row_col: list[int] = []
    feat_col: list[int] = []
    act_col: list[float] = []
    for offset, record in enumerate(rows):
        r = start + offset
        for fid, value in zip(record.feature_ids, record.activations, strict=True):
            j = index.get(fid)
            if j is None:
                j = index[fid] = len(index)
            row_col.append(r)
            feat_col.append(j)
            act_col.append(value)
    aw.write_table(
        pa.table(
            {
                "row": pa.array(row_col, pa.int64()),
                "feature": pa.array(feat_col, pa.int32()),
                "activation": pa.array(act_col, pa.float64()),
            },
            schema=ACTIVATION_SCHEMA,
        )
    )
    ids = [r.prompt_id for r in rows]
    rw.write_table(
        pa.table(
            {
                "row": pa.array(range(start, start + len(rows)), pa.int64()),
                "prompt_id": ids,
                "prompt_fnv": pa.array(fnv1a64(ids), pa.uint64()),
                "token_index": pa.array([r.token_index for r in rows], pa.int32()),
                "token": pa.array([r.token for r in rows], pa.string()),
                "text": [r.text for r in rows],
                "criterion_score": pa.array([r.criterion_score for r in rows], pa.float64()),
                "model": pa.array([r.model for r in rows], pa.string()),
                "split": pa.array([r.split for r in rows], pa.string()),
                "extra": pa.array([json.dumps(r.extra) if r.extra else None for r in rows], pa.string()),
            },
            schema=ROW_SCHEMA,
        )
    )
    return len(row_col)


@dataclass(frozen=True, slots=True)
class RowChunk:
    """A run of consecutive record rows with their non-zero activations."""

    rows: pa.Table
    """Row table slice (columns as in rows.parquet, possibly a subset)."""
    act_row: np.ndarray
    """Row number of each non-zero activation (int64)."""
    act_feature: np.ndarray
    """Feature index of each non-zero activation (int32)."""
    act_value: np.ndarray
    """Activation value (float64)."""


def read_feature_table(path: str | Path) -> tuple[list[str], dict[str, FeatureMeta]]:
    """Feature ids in index order, and their metadata."""
    _check(path)
    table = pq.read_table(Path(path) / FEATURES).to_pylist()
    ids = [""] * len(table)
    meta: dict[str, FeatureMeta] = {}
    for entry in table:
        ids[entry["feature"]] = entry["feature_id"]
        m = FeatureMeta()
        m.merge(entry)
        if m.to_json():
            meta[entry["feature_id"]] = m
    return ids, meta


def iter_row_chunks(
    path: str | Path, *, row_columns: list[str] | None = None, batch_rows: int = 65536,
    features: np.ndarray | None = None
) -> Iterator[RowChunk]:
    """Stream the dataset as aligned chunks of rows and their activations.

    Args:
        path: dataset folder.
        row_columns: columns of rows.parquet to read (``row`` is always included).
        batch_rows: rows per chunk.
        features: when given, only activations of these feature indices are returned.
    """
    _check(path)
    p = Path(path)
    cols = ["row"] + [c for c in (row_columns or []) if c != "row"]
    row_file = pq.ParquetFile(p / ROWS)
    act_file = pq.ParquetFile(p / ACTIVATIONS)
    act_batches = act_file.iter_batches(
        batch_size=max(batch_rows * 8, 1 << 16), columns=["row", "feature", "activation"]
    )
    keep = None if features is None else pa.array(np.asarray(features, dtype=np.int32))
    # activation batches not yet handed out; concatenated once per chunk, not per batch
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    pending_max = -1
    exhausted = False
    for batch in row_file.iter_batches(batch_size=batch_rows, columns=cols):
        rows = pa.Table.from_batches([batch])
        row_ids = rows.column("row").to_numpy()
        if len(row_ids) == 0:
            continue
        hi = int(row_ids[-1])
        while not exhausted and pending_max <= hi:
            try:
                ab = next(act_batches)
            except StopIteration:
                exhausted = True
                break
            if keep is not None:
                # pyarrow.compute makes its kernel functions at import time: pyright cannot see is_in
                kept = pc.is_in(ab.column("feature"), value_set=keep)  # pyright: ignore[reportAttributeAccessIssue]
                ab = ab.filter(kept)
            r = ab.column("row").to_numpy()
            if not len(r):
                continue
            if r[0] < pending_max or np.any(r[1:] < r[:-1]):
                raise InputFileError(
                    p / ACTIVATIONS, "rows are not sorted by 'row'", hint="rewrite it with interp-agent convert"
                )
            pending_max = int(r[-1])
            pending.append((r, ab.column("feature").to_numpy(), ab.column("activation").to_numpy()))
        if len(pending) == 1:
            p_row, p_feat, p_val = pending[0]
        elif pending:
            p_row, p_feat, p_val = (np.concatenate(parts) for parts in zip(*pending, strict=True))
        else:
            p_row, p_feat, p_val = np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.float64)
        cut = int(np.searchsorted(p_row, hi, side="right"))
        yield RowChunk(rows, p_row[:cut], p_feat[:cut], p_val[:cut])
        pending = [(p_row[cut:], p_feat[cut:], p_val[cut:])] if cut < len(p_row) else []


def iter_parquet_records(path: str | Path) -> Iterator[ActivationRecord]:
    """Stream a Parquet dataset back as ActivationRecord rows (for conversion to JSONL)."""
    ids, _ = read_feature_table(path)
    for chunk in iter_row_chunks(path, row_columns=[f.name for f in ROW_SCHEMA]):
        rows = chunk.rows.to_pylist()
        starts = np.searchsorted(chunk.act_row, [r["row"] for r in rows], side="left")
        ends = np.searchsorted(chunk.act_row, [r["row"] for r in rows], side="right")
        for r, a, b in zip(rows, starts, ends, strict=True):
            yield ActivationRecord(
                prompt_id=r["prompt_id"],
                criterion_score=r["criterion_score"],
                feature_ids=tuple(ids[j] for j in chunk.act_feature[a:b]),
                activations=tuple(float(v) for v in chunk.act_value[a:b]),
                text=r["text"] or "",
                model=r["model"],
                token_index=r["token_index"],
                token=r["token"],
                split=r["split"],
                extra=json.loads(r["extra"]) if r["extra"] else {},
            )


def jsonl_to_parquet(src: str | Path, out: str | Path) -> Path:
    """Convert a records JSONL file to a Parquet dataset folder."""
    reader = RecordReader(src)
    return write_parquet_dataset(out, reader, reader.feature_metadata)


def parquet_to_jsonl(src: str | Path, out: str | Path) -> Path:
    """Convert a Parquet dataset folder to records JSONL (map form; metadata on the first row)."""
    _, meta = read_feature_table(src)
    return write_records(out, iter_parquet_records(src), meta)


def _check(path: str | Path) -> None:
    if not is_parquet_dataset(path):
        raise InputFileError(
            path,
            f"not a records dataset folder (needs {ACTIVATIONS} and {ROWS})",
            hint="create one with: interp-agent convert RECORDS.jsonl OUT_DIR",
        )
