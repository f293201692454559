"""Records sources for ranking: JSONL files and Parquet datasets, streamed as numeric chunks.

Both yield :class:`Chunk` objects with the same layout, so the statistics code has one
vectorised path. Feature ids are mapped to integer indices in order of first sight.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interp_agent.core.formats.parquet import is_parquet_dataset, iter_row_chunks, read_feature_table
from interp_agent.core.formats.records import ActivationRecord, FeatureMeta, RecordReader


@dataclass(slots=True)
class Chunk:
    """Consecutive record rows and their non-zero activations."""

    prompt_ids: list[str]
    """Prompt id of each row."""
    token_index: list[int | None]
    """Token position of each row (None for prompt-level rows)."""
    scores: np.ndarray
    """Criterion score of each row, float64 [rows]."""
    splits: list[str | None]
    """Explicit split of each row, or None."""
    texts: list[str] | None
    """Text of each row, when asked for."""
    tokens: list[str | None] | None
    """Token of each row, when asked for."""
    act_row: np.ndarray
    """Row (0-based within the chunk) of each activation, int64 [nnz]."""
    act_feature: np.ndarray
    """Feature index of each activation, int64 [nnz]."""
    act_value: np.ndarray
    """Activation value, float64 [nnz]."""
    models: set[str]
    """Model names seen in the chunk."""


class RecordsSource:
    """A records file or dataset that can be streamed several times."""

    def __init__(self, path: str | Path, *, chunk_rows: int = 4096) -> None:
        self.path = Path(path)
        self.chunk_rows = chunk_rows
        self.parquet = is_parquet_dataset(self.path)
        self.feature_ids: list[str] = []
        self.feature_metadata: dict[str, FeatureMeta] = {}
        self._index: dict[str, int] = {}
        if self.parquet:
            self.feature_ids, self.feature_metadata = read_feature_table(self.path)
            self._index = {fid: i for i, fid in enumerate(self.feature_ids)}

    @property
    def n_features(self) -> int:
        """Number of distinct features seen so far (all of them after one full pass)."""
        return len(self.feature_ids)

    def chunks(self, *, with_text: bool = False, features: np.ndarray | None = None) -> Iterator[Chunk]:
        """Stream the records as chunks; ``features`` restricts activations to those indices."""
        if self.parquet:
            yield from self._parquet_chunks(with_text, features)
        else:
            yield from self._jsonl_chunks(with_text, features)

    def _jsonl_chunks(self, with_text: bool, features: np.ndarray | None) -> Iterator[Chunk]:
        reader = RecordReader(self.path)
        keep: np.ndarray | None = None
        if features is not None:
            keep = np.zeros(max(self.n_features, 1), dtype=bool)
            keep[features] = True
        buf: list[ActivationRecord] = []
        for record in reader:
            buf.append(record)
            if len(buf) >= self.chunk_rows:
                yield self._jsonl_chunk(buf, with_text, keep)
                buf = []
        if buf:
            yield self._jsonl_chunk(buf, with_text, keep)
        for fid, meta in reader.feature_metadata.items():
            self.feature_metadata.setdefault(fid, meta)

    def _jsonl_chunk(self, rows: list[ActivationRecord], with_text: bool, keep: np.ndarray | None) -> Chunk:
        index = self._index
        ids = self.feature_ids
        act_row: list[int] = []
        act_feature: list[int] = []
        act_value: list[float] = []
        models: set[str] = set()
        for r, record in enumerate(rows):
            if record.model:
                models.add(record.model)
            for fid in record.feature_ids:
                j = index.get(fid)
                if j is None:
                    j = index[fid] = len(ids)
                    ids.append(fid)
                act_feature.append(j)
            act_row.extend([r] * len(record.feature_ids))
            act_value.extend(record.activations)
        a_row = np.asarray(act_row, dtype=np.int64)
        a_feat = np.asarray(act_feature, dtype=np.int64)
        a_val = np.asarray(act_value, dtype=np.float64)
        if keep is not None:
            mask = a_feat < len(keep)
            mask[mask] = keep[a_feat[mask]]
            a_row, a_feat, a_val = a_row[mask], a_feat[mask], a_val[mask]
        return Chunk(
            prompt_ids=[r.prompt_id for r in rows],
            token_index=[r.token_index for r in rows],
            scores=np.fromiter((r.criterion_score for r in rows), dtype=np.float64, count=len(rows)),
            splits=[r.split for r in rows],
            texts=[r.text for r in rows] if with_text else None,
            tokens=[r.token for r in rows] if with_text else None,
            act_row=a_row,
            act_feature=a_feat,
            act_value=a_val,
            models=models,
        )

    def _parquet_chunks(self, with_text: bool, features: np.ndarray | None) -> Iterator[Chunk]:
        cols = ["prompt_id", "token_index", "criterion_score", "split", "model"] + (["text", "token"] if with_text else [])
        for chunk in iter_row_chunks(self.path, row_columns=cols, batch_rows=self.chunk_rows * 8, features=features):
            rows = chunk.rows
            first = int(rows.column("row")[0].as_py()) if rows.num_rows else 0
            models = {m for m in rows.column("model").unique().to_pylist() if m}
            yield Chunk(
                prompt_ids=rows.column("prompt_id").to_pylist(),
                token_index=rows.column("token_index").to_pylist(),
                scores=rows.column("criterion_score").to_numpy(),
                splits=rows.column("split").to_pylist(),
                texts=rows.column("text").to_pylist() if with_text else None,
                tokens=rows.column("token").to_pylist() if with_text else None,
                act_row=chunk.act_row - first,
                act_feature=chunk.act_feature.astype(np.int64),
                act_value=chunk.act_value,
                models=models,
            )
