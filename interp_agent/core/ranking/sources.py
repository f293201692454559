"""Records sources for ranking: JSONL files, Parquet datasets and sharded harvests, streamed as numeric chunks.

A sharded harvest (``core.shards``: a folder with ``manifest.json``) is read as one dataset: its
shards' records datasets in shard order, every shard file verified first.

Both yield :class:`Chunk` objects with the same layout, so the statistics code has one
vectorised path. Feature ids are mapped to integer indices in order of first sight.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, overload

import numpy as np

from interp_agent.core.formats.ids import fnv1a64
from interp_agent.core.formats.records import (
    ActivationRecord,
    FeatureMeta,
    RecordReader,
)

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow (and interp_agent.core.formats.parquet, which imports it) is imported where a
# Parquet dataset is read or a JSONL source is spilled: a small JSONL file never needs it,
# and pyarrow turning numpy arrays into Arrow ones imports pandas (~0.3 s together).


@dataclass(slots=True)
class Chunk:
    """Consecutive record rows and their non-zero activations."""

    prompt_ids: Sequence[str]
    """Prompt id of each row."""
    id_hashes: np.ndarray
    """Unsalted FNV-1a hash of each row's prompt id (uint64), see splits.fnv1a64."""
    token_index: list[int | None]
    """Token position of each row (None for prompt-level rows)."""
    scores: np.ndarray
    """Criterion score of each row, float64 [rows]."""
    splits: list[str | None]
    """Explicit split of each row, or None."""
    texts: list[str | None] | None
    """Text of each row, when asked for (None for rows of a source that has none)."""
    tokens: list[str | None] | None
    """Token of each row, when asked for."""
    act_row: np.ndarray
    """Row (0-based within the chunk) of each activation, int64 [nnz]."""
    act_feature: np.ndarray
    """Feature index of each activation, int32 or int64 [nnz]."""
    act_value: np.ndarray
    """Activation value, float64 [nnz]."""
    models: set[str]
    """Model names seen in the chunk."""
    synthetic: bool = False
    """Whether any row says it is synthetic (``"synthetic": true``)."""


class RecordsSource:
    """A records file or dataset that can be streamed several times."""

    def __init__(self, path: str | Path, *, chunk_rows: int = 512, keep_rows: int | None = None) -> None:
        """Open a records JSONL file or Parquet dataset folder (nothing is read until :meth:`chunks`).

        Args:
            path: the JSONL file or dataset folder.
            chunk_rows: rows per chunk of the first pass over JSONL (later passes: 8x).
            keep_rows: a JSONL file of at most this many rows is kept in memory between
                passes, a bigger one spilled to a temporary Parquet copy; default
                ``8 * chunk_rows``, one read-back batch, so both give the same chunks.
        """
        self.path = Path(path)
        self.chunk_rows = chunk_rows
        self.keep_rows = 8 * chunk_rows if keep_rows is None else keep_rows
        self.parts = _harvest_parts(self.path) or ([self.path] if _is_parquet_dataset(self.path) else [])
        self.parquet = bool(self.parts)
        self.feature_ids: list[str] = []
        self.feature_metadata: dict[str, FeatureMeta] = {}
        self._index: dict[str, int] = {}
        self._spill: tempfile.TemporaryDirectory[str] | None = None
        self._kept: Chunk | None = None
        if self.parquet:
            from interp_agent.core.formats.parquet import read_feature_table

            self.feature_ids, self.feature_metadata = read_feature_table(self.parts[0])
            self._index = {fid: i for i, fid in enumerate(self.feature_ids)}
            for part in self.parts[1:]:  # a harvest's shards name the same features in the same order
                if read_feature_table(part)[0] != self.feature_ids:
                    from interp_agent.core.errors import InputFileError

                    raise InputFileError(part, "this shard's features differ from the first shard's",
                                         hint="re-run the harvest into a new folder")

    @property
    def n_features(self) -> int:
        """Number of distinct features seen so far (all of them after one full pass)."""
        return len(self.feature_ids)

    def chunks(self, *, with_text: bool = False, features: np.ndarray | None = None) -> Iterator[Chunk]:
        """Stream the records as chunks; ``features`` restricts activations to those indices.

        A JSONL file is parsed once: the first full pass keeps a copy for later passes (same
        rows, same feature indices): in memory up to ``keep_rows`` rows, else as a columnar
        copy in a temporary folder.
        """
        if self.parquet:
            for part in self.parts:
                yield from self._parquet_chunks(part, with_text, features)
        elif self._kept is not None:
            yield _restrict(self._kept, with_text, features, self.n_features)
        elif self._spill is not None:
            yield from self._parquet_chunks(Path(self._spill.name), with_text, features)
        elif features is None:
            yield from self._jsonl_keeping_chunks(with_text)
        else:
            yield from self._jsonl_chunks(with_text, features)

    def _jsonl_keeping_chunks(self, with_text: bool) -> Iterator[Chunk]:
        kept: list[Chunk] = []
        n_kept = 0
        spill: tempfile.TemporaryDirectory[str] | None = None
        writer: _SpillWriter | None = None
        try:
            for chunk in self._jsonl_chunks(True, None):
                if writer is None:
                    kept.append(chunk)
                    n_kept += len(chunk.prompt_ids)
                    if n_kept > self.keep_rows:  # too big to keep: spill what is kept and the rest
                        spill = tempfile.TemporaryDirectory(prefix="interp-agent-records-")
                        writer = _SpillWriter(Path(spill.name))
                        for k in kept:
                            writer.add(k)
                        kept = []
                else:
                    writer.add(chunk)
                yield chunk if with_text else _restrict(chunk, False, None, self.n_features)
            if writer is not None:
                writer.close(self.feature_ids, self.feature_metadata)
        except BaseException:
            if writer is not None:
                writer.abort()
            if spill is not None:
                spill.cleanup()
            raise
        if spill is not None:
            self._spill = spill
        else:
            self._kept = _concat(kept)

    def close(self) -> None:
        """Drop the copy of a JSONL source kept for later passes (a temporary folder, if any)."""
        self._kept = None
        if self._spill is not None:
            self._spill.cleanup()
            self._spill = None

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
        flat_ids = list(chain.from_iterable(r.feature_ids for r in rows))
        positions = list(map(index.get, flat_ids))
        if None in positions:  # features seen for the first time get the next indices
            for k, fid in enumerate(flat_ids):
                if positions[k] is None:
                    j = index.get(fid)
                    if j is None:
                        j = index[fid] = len(self.feature_ids)
                        self.feature_ids.append(fid)
                    positions[k] = j
        a_feat = np.array(positions, dtype=np.int64)
        a_row = np.repeat(np.arange(len(rows), dtype=np.int64), [len(r.feature_ids) for r in rows])
        a_val = np.fromiter(chain.from_iterable(r.activations for r in rows), dtype=np.float64, count=len(flat_ids))
        if keep is not None:
            mask = a_feat < len(keep)
            mask[mask] = keep[a_feat[mask]]
            a_row, a_feat, a_val = a_row[mask], a_feat[mask], a_val[mask]
        ids = [r.prompt_id for r in rows]
        return Chunk(
            prompt_ids=ids,
            id_hashes=fnv1a64(ids),
            token_index=[r.token_index for r in rows],
            scores=np.fromiter((r.criterion_score for r in rows), dtype=np.float64, count=len(rows)),
            splits=[r.split for r in rows],
            texts=[r.text for r in rows] if with_text else None,
            tokens=[r.token for r in rows] if with_text else None,
            act_row=a_row,
            act_feature=a_feat,
            act_value=a_val,
            models={r.model for r in rows if r.model},
            synthetic=any(r.extra.get("synthetic") is True for r in rows),
        )

    def _parquet_chunks(self, path: Path, with_text: bool, features: np.ndarray | None) -> Iterator[Chunk]:
        from interp_agent.core.formats.parquet import iter_row_chunks

        cols = ["prompt_id", "prompt_fnv", "token_index", "criterion_score", "split", "model", "extra"]
        cols += ["text", "token"] if with_text else []
        for chunk in iter_row_chunks(path, row_columns=cols, batch_rows=self.chunk_rows * 8, features=features):
            rows = chunk.rows
            first = int(rows.column("row")[0].as_py()) if rows.num_rows else 0
            models = {m for m in rows.column("model").unique().to_pylist() if m}
            ids = _ArrowStrings(rows.column("prompt_id"))
            yield Chunk(
                prompt_ids=ids,
                id_hashes=rows.column("prompt_fnv").to_numpy(),
                token_index=rows.column("token_index").to_pylist(),
                scores=rows.column("criterion_score").to_numpy(),
                splits=rows.column("split").to_pylist(),
                texts=rows.column("text").to_pylist() if with_text else None,
                tokens=rows.column("token").to_pylist() if with_text else None,
                act_row=chunk.act_row - first,
                act_feature=chunk.act_feature,
                act_value=chunk.act_value,
                models=models,
                synthetic=any('"synthetic": true' in e for e in rows.column("extra").drop_null().unique().to_pylist()),
            )


class _ArrowStrings(Sequence[str]):
    """A string column read lazily: only the rows that are looked at become Python strings."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        self.array = column.combine_chunks()

    def __len__(self) -> int:
        return len(self.array)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return self.array[i].to_pylist()
        return self.array[i].as_py()


class _SpillWriter:
    """Writes parsed JSONL chunks as a records dataset (activations and rows tables)."""

    def __init__(self, folder: Path) -> None:
        import pyarrow.parquet as pq

        from interp_agent.core.formats.parquet import ACTIVATION_SCHEMA, ROW_SCHEMA

        self.schemas = (ACTIVATION_SCHEMA, ROW_SCHEMA)
        self.folder = folder
        self.acts = pq.ParquetWriter(folder / "activations.parquet", ACTIVATION_SCHEMA)
        self.rows = pq.ParquetWriter(folder / "rows.parquet", ROW_SCHEMA)
        self.start = 0

    def add(self, chunk: Chunk) -> None:
        import pyarrow as pa

        activation_schema, row_schema = self.schemas
        n = len(chunk.prompt_ids)
        self.acts.write_table(
            pa.table(
                {
                    "row": pa.array(chunk.act_row + self.start, pa.int64()),
                    "feature": pa.array(chunk.act_feature, pa.int32()),
                    "activation": pa.array(chunk.act_value, pa.float64()),
                },
                schema=activation_schema,
            )
        )
        self.rows.write_table(
            pa.table(
                {
                    "row": pa.array(np.arange(self.start, self.start + n), pa.int64()),
                    "prompt_id": pa.array(list(chunk.prompt_ids), pa.string()),
                    "prompt_fnv": pa.array(chunk.id_hashes, pa.uint64()),
                    "token_index": pa.array(chunk.token_index, pa.int32()),
                    "token": pa.array(chunk.tokens, pa.string()),
                    "text": pa.array(chunk.texts, pa.string()),
                    "criterion_score": pa.array(chunk.scores, pa.float64()),
                    "model": pa.array([None] * n, pa.string()),
                    "split": pa.array(chunk.splits, pa.string()),
                    "extra": pa.array([None] * n, pa.string()),
                },
                schema=row_schema,
            )
        )
        self.start += n

    def close(self, feature_ids: list[str], metadata: dict[str, FeatureMeta]) -> None:
        from interp_agent.core.formats.parquet import write_feature_table

        self.acts.close()
        self.rows.close()
        write_feature_table(self.folder, feature_ids, metadata)

    def abort(self) -> None:
        for writer in (self.acts, self.rows):
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - best effort while unwinding another error
                pass


def _harvest_parts(path: Path) -> list[Path]:
    """The records datasets of a sharded harvest's shards (verified, in shard order), or [] for another path."""
    # checked before importing core.shards (which imports torch): a plain records file never needs it
    name = "manifest.json"  # core.formats.harvest.MANIFEST
    if not ((path.is_dir() and (path / name).is_file()) or (path.is_file() and path.name == name)):
        return []
    from interp_agent.core.formats.harvest import record_folders

    return record_folders(path)


def _is_parquet_dataset(path: Path) -> bool:
    if not path.is_dir():  # a file is JSONL: no need to import pyarrow to say so
        return False
    from interp_agent.core.formats.parquet import is_parquet_dataset

    return is_parquet_dataset(path)


def _concat(chunks: list[Chunk]) -> Chunk | None:
    """One chunk of consecutive chunks' rows (row numbers renumbered), None for none."""
    if len(chunks) <= 1:
        return chunks[0] if chunks else None
    offsets = np.cumsum([0] + [len(c.prompt_ids) for c in chunks[:-1]])
    return Chunk(
        prompt_ids=[p for c in chunks for p in c.prompt_ids],
        id_hashes=np.concatenate([c.id_hashes for c in chunks]),
        token_index=[t for c in chunks for t in c.token_index],
        scores=np.concatenate([c.scores for c in chunks]),
        splits=[s for c in chunks for s in c.splits],
        texts=[t for c in chunks for t in (c.texts or [None] * len(c.prompt_ids))],
        tokens=[t for c in chunks for t in (c.tokens or [None] * len(c.prompt_ids))],
        act_row=np.concatenate([c.act_row + off for c, off in zip(chunks, offsets, strict=True)]),
        act_feature=np.concatenate([c.act_feature for c in chunks]),
        act_value=np.concatenate([c.act_value for c in chunks]),
        models=set().union(*(c.models for c in chunks)),
        synthetic=any(c.synthetic for c in chunks),
    )


def _restrict(chunk: Chunk, with_text: bool, features: np.ndarray | None, n_features: int) -> Chunk:
    """A view of ``chunk`` without texts unless ``with_text``, with only ``features``' activations when given."""
    a_row, a_feat, a_val = chunk.act_row, chunk.act_feature, chunk.act_value
    if features is not None:
        keep = np.zeros(max(n_features, 1), dtype=bool)
        keep[features] = True
        mask = keep[a_feat]
        a_row, a_feat, a_val = a_row[mask], a_feat[mask], a_val[mask]
    return replace(
        chunk, texts=chunk.texts if with_text else None, tokens=chunk.tokens if with_text else None,
        act_row=a_row, act_feature=a_feat, act_value=a_val,
    )
