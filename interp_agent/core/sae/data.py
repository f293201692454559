"""Training activations for an SAE: streamed from a source into a shard cache, then batched.

Sources: a model harvested at a hookpoint over a prompt set, stored activations
(safetensors, ``.npy`` or Parquet), a sharded harvest (``core.shards``: its manifest folder),
or activation-record JSONL (each feature a dimension).
Every source is read in chunks and written as float32 safetensors shards of
``shard_rows`` rows under ``<folder>/train`` and ``<folder>/held_out``; nothing holds the
whole set in memory except ``--max-records``, which keeps a deterministic reservoir sample
of that many rows (Algorithm R with a seeded generator).

The held-out split is by prompt when rows have prompts (the ranking's salted hash of the
prompt id, so a prompt's tokens never straddle the split), else by a salted hash of the row
number. Batches come from a seeded shuffle: each epoch permutes the shard order and the rows
of each shard, carrying leftovers across shard boundaries, so the batch at step n is a
function of (seed, n) alone, which is what resuming from a checkpoint relies on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from interp_agent.core.artifacts import atomic_open, schema_version, sha256_of, write_json
from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.progress import Progress
from interp_agent.core.ranking.splits import HELD_OUT, SPLIT_SALT, assign_splits, prompt_hashes, salted

if TYPE_CHECKING:
    from interp_agent.core.formats.records import ActivationRecord

CACHE_META = "cache.json"
SHARD_ROWS = 65_536


@dataclass(frozen=True, slots=True)
class ActivationCache:
    """A finished shard cache (see the module docstring)."""

    folder: Path
    d_in: int
    n_train: int
    n_held_out: int
    shard_rows: int
    hookpoint: str | None
    source: dict[str, Any]
    """Where the rows came from: kind, paths and digests, model, sampling."""
    feature_ids: list[str] | None = None
    """Names of the input dimensions (record sources)."""

    def shards(self, split: str) -> list[Path]:
        """Shard files of ``train`` or ``held_out``, in order."""
        return sorted((self.folder / split).glob("shard-*.safetensors"))

    def train_batches(self, batch_size: int, *, seed: int, start_step: int = 0) -> Iterator[np.ndarray]:
        """Endless float32 batches ``[batch_size, d_in]`` of training rows, deterministic in ``seed``.

        ``start_step`` skips that many batches (resuming) without copying them.
        """
        if not 0 < batch_size <= self.n_train:
            raise ValidationError(f"batch size {batch_size} must be in 1..{self.n_train} (the training rows)")
        shards = self.shards("train")
        step, epoch = 0, 0
        carry = np.zeros((0, self.d_in), np.float32)
        while True:
            rng = np.random.default_rng([seed, epoch])
            for s in rng.permutation(len(shards)):
                rows = _read_shard(shards[s])
                rows = np.concatenate([carry, rows[rng.permutation(len(rows))]])
                n_full = len(rows) // batch_size
                for b in range(n_full):
                    if step >= start_step:
                        yield rows[b * batch_size:(b + 1) * batch_size]
                    step += 1
                carry = rows[n_full * batch_size:]
            epoch += 1

    def held_out_batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """Held-out rows in order, in batches of at most ``batch_size``."""
        for path in self.shards("held_out"):
            rows = _read_shard(path)
            for i in range(0, len(rows), batch_size):
                yield rows[i:i + batch_size]

    def sample(self, n: int, *, seed: int) -> np.ndarray:
        """Up to ``n`` training rows drawn at random from the first shards (for initialisation)."""
        rng = np.random.default_rng([seed, 7])
        parts, got = [], 0
        for path in self.shards("train"):
            rows = _read_shard(path)
            take = rows[rng.permutation(len(rows))[: n - got]]
            parts.append(take)
            got += len(take)
            if got >= n:
                break
        return np.concatenate(parts)


def _read_shard(path: Path) -> np.ndarray:
    from safetensors.numpy import load_file

    return load_file(str(path))["activations"]


def open_cache(folder: str | Path) -> ActivationCache | None:
    """The finished cache in ``folder``, or None when there is none (or it is unfinished)."""
    meta_path = Path(folder) / CACHE_META
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    return ActivationCache(
        folder=Path(folder), d_in=meta["d_in"], n_train=meta["n_train"], n_held_out=meta["n_held_out"],
        shard_rows=meta["shard_rows"], hookpoint=meta.get("hookpoint"), source=meta["source"],
        feature_ids=meta.get("feature_ids"),
    )


# -- writing -------------------------------------------------------------------------


class _ShardWriter:
    """Appends rows of one split and writes full shards atomically."""

    def __init__(self, folder: Path, d_in: int, shard_rows: int) -> None:
        self.folder, self.d_in, self.shard_rows = folder, d_in, shard_rows
        folder.mkdir(parents=True, exist_ok=True)
        self.pending: list[np.ndarray] = []
        self.n_pending = 0
        self.n_written = 0
        self.n_shards = 0

    def add(self, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        self.pending.append(np.ascontiguousarray(rows, dtype=np.float32))
        self.n_pending += len(rows)
        while self.n_pending >= self.shard_rows:
            block = np.concatenate(self.pending)
            self._write(block[: self.shard_rows])
            rest = block[self.shard_rows:]
            self.pending, self.n_pending = ([rest] if len(rest) else []), len(rest)

    def close(self) -> int:
        if self.n_pending:
            self._write(np.concatenate(self.pending))
            self.pending, self.n_pending = [], 0
        return self.n_written

    def _write(self, block: np.ndarray) -> None:
        from safetensors.numpy import save

        with atomic_open(self.folder / f"shard-{self.n_shards:05d}.safetensors", "wb", encoding=None) as fh:
            fh.write(save({"activations": np.ascontiguousarray(block)}))
        self.n_shards += 1
        self.n_written += len(block)


class Reservoir:
    """A uniform sample of ``capacity`` rows from a stream (Algorithm R, seeded, vectorised per chunk)."""

    def __init__(self, capacity: int, d_in: int, *, seed: int) -> None:
        self.rows = np.zeros((capacity, d_in), np.float32)
        self.capacity = capacity
        self.seen = 0
        self.rng = np.random.default_rng([seed, 11])

    def add(self, chunk: np.ndarray) -> None:
        n = len(chunk)
        fill = max(0, min(n, self.capacity - self.seen))
        self.rows[self.seen:self.seen + fill] = chunk[:fill]
        rest = np.arange(fill, n)
        if len(rest):
            # item i (0-based position seen + i in the stream) replaces slot j ~ U[0, seen + i] when j < capacity
            j = self.rng.integers(0, self.seen + rest + 1)
            keep = j < self.capacity
            slots, items = j[keep], rest[keep]
            # when one slot is hit twice in a chunk, the later item wins, as in the sequential algorithm
            last = len(slots) - 1 - np.unique(slots[::-1], return_index=True)[1]
            self.rows[slots[last]] = chunk[items[last]]
        self.seen += n

    def result(self) -> np.ndarray:
        return self.rows[: min(self.seen, self.capacity)]


class _SplitSink:
    """Routes rows to the train / held-out shard writers, through reservoirs under ``max_records``."""

    def __init__(
        self, folder: Path, d_in: int, *, shard_rows: int, max_records: int | None, held_out_fraction: float, seed: int
    ):
        self.writers = {s: _ShardWriter(folder / s, d_in, shard_rows) for s in ("train", "held_out")}
        self.reservoirs: dict[str, Reservoir] = {}
        if max_records is not None:
            if max_records < 2:
                raise ValidationError(f"max_records must be at least 2, got {max_records}")
            n_held = max(1, round(max_records * held_out_fraction))
            self.reservoirs = {
                "train": Reservoir(max_records - n_held, d_in, seed=seed),
                "held_out": Reservoir(n_held, d_in, seed=seed + 1),
            }
        self.seen = {"train": 0, "held_out": 0}

    def add(self, rows: np.ndarray, held_out: np.ndarray) -> None:
        for split, mask in (("train", ~held_out), ("held_out", held_out)):
            part = rows[mask]
            self.seen[split] += len(part)
            if split in self.reservoirs:
                self.reservoirs[split].add(part)
            else:
                self.writers[split].add(part)

    def close(self) -> dict[str, int]:
        for split, res in self.reservoirs.items():
            self.writers[split].add(res.result())
        return {split: w.close() for split, w in self.writers.items()}


def _finish(
    folder: Path, sink: _SplitSink, d_in: int, *, shard_rows: int, hookpoint: str | None, source: dict[str, Any],
    feature_ids: list[str] | None = None,
) -> ActivationCache:
    counts = sink.close()
    if counts["train"] == 0 or counts["held_out"] == 0:
        raise ValidationError(
            f"the split left {counts['train']} training and {counts['held_out']} held-out rows",
            hint="give more prompts or rows, or change held_out_fraction",
        )
    source = {**source, "rows_seen": dict(sink.seen)}
    meta = {
        "schema_version": schema_version("activation-cache"), "d_in": d_in, "n_train": counts["train"],
        "n_held_out": counts["held_out"], "shard_rows": shard_rows, "hookpoint": hookpoint, "source": source,
        "feature_ids": feature_ids,
    }
    write_json(folder / CACHE_META, meta)  # written last: its presence marks the cache finished
    cache = open_cache(folder)
    assert cache is not None
    return cache


def _fresh(folder: Path) -> None:
    """Clear an unfinished cache left by a killed run."""
    import shutil

    for split in ("train", "held_out"):
        shutil.rmtree(folder / split, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


def reuse(folder: Path, source: dict[str, Any]) -> ActivationCache | None:
    """The finished cache in ``folder`` if it was built from the same ``source``, else None."""
    cache = open_cache(folder)
    if cache is None:
        return None
    old = {k: v for k, v in cache.source.items() if k != "rows_seen"}
    return cache if old == source else None


# -- sources -------------------------------------------------------------------------


def from_model(
    loaded: Any,
    prompts: Sequence[tuple[str, str]],
    hookpoint: str,
    folder: str | Path,
    *,
    held_out_fraction: float = 0.1,
    salt: str = SPLIT_SALT,
    max_length: int = 128,
    batch_size: int = 16,
    chunk_prompts: int = 256,
    max_records: int | None = None,
    seed: int = 0,
    shard_rows: int = SHARD_ROWS,
    progress: Progress | None = None,
) -> ActivationCache:
    """Harvest token activations at ``hookpoint`` for ``prompts`` ((prompt_id, text) pairs) into a cache.

    Prompts are harvested ``chunk_prompts`` at a time; the first position of each prompt is left
    out (its residual norm is ~100x the others', see models/harvest). Held-out prompts are the
    ranking's hash split of prompt ids under ``salt``.
    """
    from interp_agent.core.models.harvest import harvest
    from interp_agent.core.models.hookpoints import resolve_hookpoint

    folder = Path(folder)
    point = resolve_hookpoint(loaded.model, hookpoint)
    source = {
        "kind": "model", "model": loaded.name, "hookpoint": point.name, "n_prompts": len(prompts),
        "prompt_ids_fnv": _ids_digest([p for p, _ in prompts]), "held_out_fraction": held_out_fraction, "salt": salt,
        "max_length": max_length, "max_records": max_records, "seed": seed, "positions": "all but the first",
    }
    if (cache := reuse(folder, source)) is not None:
        return cache
    _fresh(folder)
    held = assign_splits(prompt_hashes([p for p, _ in prompts], salt), held_out_fraction) == HELD_OUT
    sink = _SplitSink(folder, point.width, shard_rows=shard_rows, max_records=max_records,
                      held_out_fraction=held_out_fraction, seed=seed)
    for start in range(0, len(prompts), chunk_prompts):
        texts = [t for _, t in prompts[start:start + chunk_prompts]]
        got = harvest(loaded, texts, [point.name], batch_size=batch_size, max_length=max_length,
                      pooling="token")[point.name]
        sink.add(got.acts, held[start + got.row_prompt])
        if progress:
            progress("harvest", min(start + chunk_prompts, len(prompts)), len(prompts))
    return _finish(folder, sink, point.width, shard_rows=shard_rows, hookpoint=point.name, source=source)


def _ids_digest(ids: Sequence[str]) -> str:
    from interp_agent.core.formats.ids import fnv1a64

    return f"{int(np.bitwise_xor.reduce(salted(fnv1a64(list(ids)), 'ids'))) if ids else 0:016x}"


def _tensor_chunks(path: Path, chunk_rows: int) -> tuple[int, Iterator[np.ndarray]]:
    """Width and row chunks of a stored activation tensor file."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        arr = np.load(path, mmap_mode="r")
        if arr.ndim < 2:
            raise InputFileError(path, f"expected an array [rows, d_in], got shape {arr.shape}")
        arr = arr.reshape(-1, arr.shape[-1])
        return arr.shape[1], (np.asarray(arr[i:i + chunk_rows], np.float32) for i in range(0, len(arr), chunk_rows))
    if suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as fh:
            names = list(fh.keys())
            name = "activations" if "activations" in names else (names[0] if len(names) == 1 else None)
            if name is None:
                raise InputFileError(path, f"several tensors {names} and none named 'activations'",
                                     hint="name the activation tensor 'activations'")
            shape = fh.get_slice(name).get_shape()
        if len(shape) < 2:
            raise InputFileError(path, f"tensor {name!r} has shape {shape}; expected [rows, d_in] or [..., d_in]")
        n = math.prod(shape[:-1])

        def chunks() -> Iterator[np.ndarray]:
            with safe_open(str(path), framework="numpy") as fh:
                if len(shape) == 2:
                    sl = fh.get_slice(name)
                    for i in range(0, n, chunk_rows):
                        yield np.asarray(sl[i:min(n, i + chunk_rows)], np.float32)
                else:  # [batch, seq, d]: read whole leading slices
                    sl = fh.get_slice(name)
                    per = math.prod(shape[1:-1])
                    step = max(1, chunk_rows // per)
                    for i in range(0, shape[0], step):
                        yield np.asarray(sl[i:min(shape[0], i + step)], np.float32).reshape(-1, shape[-1])

        return shape[-1], chunks()
    if suffix == ".parquet" or path.is_dir():
        return _parquet_chunks(path, chunk_rows)
    raise InputFileError(path, f"unknown activation file type {suffix!r}",
                         hint="give .safetensors, .npy or .parquet files (or a folder of Parquet files)")


def _parquet_chunks(path: Path, chunk_rows: int) -> tuple[int, Iterator[np.ndarray]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not files:
        raise InputFileError(path, "no .parquet files in this folder")
    schema = pq.read_schema(files[0])
    lists = [
        f.name for f in schema
        if pa.types.is_list(f.type) or pa.types.is_fixed_size_list(f.type) or pa.types.is_large_list(f.type)
    ]
    if "activations" in schema.names:
        columns, as_list = ["activations"], True
    elif len(lists) == 1:
        columns, as_list = lists, True
    elif all(pa.types.is_floating(f.type) or pa.types.is_integer(f.type) for f in schema):
        columns, as_list = list(schema.names), False
    else:
        raise InputFileError(files[0], f"cannot tell the activation column among {schema.names}",
                             hint="name a list<float> column 'activations', or store one numeric column per dimension")
    head = pq.ParquetFile(files[0])
    first = head.read_row_group(0, columns=columns) if head.num_row_groups else None
    if as_list:
        if first is None or first.num_rows == 0:
            raise InputFileError(files[0], "no rows")
        width = len(first.column(0)[0].as_py())
    else:
        width = len(columns)

    def chunks() -> Iterator[np.ndarray]:
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=chunk_rows, columns=columns):
                if as_list:
                    col = batch.column(0)
                    values = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
                    if len(values) != batch.num_rows * width:
                        raise InputFileError(f, f"rows of column {columns[0]!r} are not all {width} long")
                    yield values.reshape(batch.num_rows, width)
                else:
                    columns_BD = [batch.column(i).to_numpy(zero_copy_only=False) for i in range(width)]
                    yield np.stack(columns_BD, 1).astype(np.float32)

    return width, chunks()


def from_activations(
    paths: Sequence[str | Path],
    folder: str | Path,
    *,
    hookpoint: str | None = None,
    held_out_fraction: float = 0.1,
    salt: str = SPLIT_SALT,
    max_records: int | None = None,
    seed: int = 0,
    chunk_rows: int = 65_536,
    shard_rows: int = SHARD_ROWS,
    progress: Progress | None = None,
) -> ActivationCache:
    """Cache stored activation tensors (safetensors, .npy, Parquet; several files are concatenated), or a
    sharded harvest (its folder or ``manifest.json``: see ``from_manifest``)."""
    from interp_agent.core.formats.harvest import is_manifest

    folder = Path(folder)
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.exists():
            raise InputFileError(p, "file not found")
    if any(is_manifest(p) for p in paths):
        if len(paths) != 1:
            raise ValidationError(f"a harvest folder is read alone; got {len(paths)} activation paths",
                                  hint="give one harvest folder (its shards are read as one dataset)")
        return from_manifest(paths[0], folder, hookpoint=hookpoint, held_out_fraction=held_out_fraction, salt=salt,
                             max_records=max_records, seed=seed, shard_rows=shard_rows, progress=progress)
    source = {
        "kind": "activations", "paths": [str(p) for p in paths],
        "sha256": [sha256_of(p) if p.is_file() else None for p in paths], "hookpoint": hookpoint,
        "held_out_fraction": held_out_fraction, "salt": salt, "max_records": max_records, "seed": seed,
    }
    if (cache := reuse(folder, source)) is not None:
        return cache
    _fresh(folder)
    sink: _SplitSink | None = None
    width0, row = None, 0
    for p in paths:
        width, chunks = _tensor_chunks(p, chunk_rows)
        if sink is None:
            width0 = width
            sink = _SplitSink(folder, width, shard_rows=shard_rows, max_records=max_records,
                              held_out_fraction=held_out_fraction, seed=seed)
        elif width != width0:
            raise InputFileError(p, f"width {width} differs from {width0} in {paths[0]}")
        file_row = 0
        for chunk in chunks:
            if not np.isfinite(chunk).all():
                bad = int(np.argwhere(~np.isfinite(chunk))[0][0]) + file_row
                raise InputFileError(p, f"row {bad} holds a NaN or infinite value",
                                     hint="drop or repair the row; nothing was trained")
            file_row += len(chunk)
            idx = np.arange(row, row + len(chunk), dtype=np.uint64)
            sink.add(chunk, assign_splits(salted(idx, salt), held_out_fraction) == HELD_OUT)
            row += len(chunk)
            if progress:
                progress("read", row, None)
    assert sink is not None and width0 is not None
    return _finish(folder, sink, width0, shard_rows=shard_rows, hookpoint=hookpoint, source=source)


def from_manifest(
    path: str | Path,
    folder: str | Path,
    *,
    hookpoint: str | None = None,
    held_out_fraction: float = 0.1,
    salt: str = SPLIT_SALT,
    max_records: int | None = None,
    seed: int = 0,
    shard_rows: int = SHARD_ROWS,
    progress: Progress | None = None,
) -> ActivationCache:
    """Cache a sharded harvest (``core.shards``): every shard's token activations, verified, in shard order.

    The held-out split is by prompt, the ranking's salted hash of the prompt ids stored in the shards
    (contexts: ``context-{i}``), as in ``from_model``: a prompt's tokens never straddle the split.

    Raises:
        InputFileError: a shard missing or corrupt (named; re-run the harvest on its folder).
        ValidationError: ``hookpoint`` differs from the harvest's.
    """
    from interp_agent.core.formats.harvest import iter_shard_activations, manifest_path, open_manifest

    manifest = open_manifest(path)
    if hookpoint is not None and hookpoint != manifest.hookpoint:
        raise ValidationError(f"hookpoint {hookpoint!r} differs from the harvest's {manifest.hookpoint!r}",
                              hint="drop the hookpoint, or give the harvest of that hookpoint")
    mpath = manifest_path(path)
    assert mpath is not None
    source = {
        "kind": "harvest", "path": str(manifest.folder), "manifest_sha256": sha256_of(mpath),
        "model": manifest.model, "hookpoint": manifest.hookpoint, "held_out_fraction": held_out_fraction,
        "salt": salt, "max_records": max_records, "seed": seed, "positions": "all but the first",
    }
    if (cache := reuse(Path(folder), source)) is not None:
        return cache
    folder = Path(folder)
    _fresh(folder)
    sink = _SplitSink(folder, manifest.d_in, shard_rows=shard_rows, max_records=max_records,
                      held_out_fraction=held_out_fraction, seed=seed)
    for done, tensors in enumerate(iter_shard_activations(manifest), 1):
        held = assign_splits(salted(tensors["prompt_fnv"], salt), held_out_fraction) == HELD_OUT
        sink.add(tensors["activations"], held)
        if progress:
            progress("read", done, len(manifest.shards))
    return _finish(folder, sink, manifest.d_in, shard_rows=shard_rows, hookpoint=manifest.hookpoint, source=source)


def from_records(
    path: str | Path,
    folder: str | Path,
    *,
    hookpoint: str | None = None,
    held_out_fraction: float = 0.1,
    salt: str = SPLIT_SALT,
    max_records: int | None = None,
    seed: int = 0,
    chunk_rows: int = 8192,
    shard_rows: int = SHARD_ROWS,
    progress: Progress | None = None,
) -> ActivationCache:
    """Cache activation records (JSONL): each feature id is a dimension, missing entries are 0.

    Two streaming passes: the first collects the feature ids, the second fills rows. The split
    is the ranking's (a row's own ``split`` field wins over the hash of its prompt id).
    """
    from interp_agent.core.formats.records import RecordReader

    path, folder = Path(path), Path(folder)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    source = {
        "kind": "records", "path": str(path), "sha256": sha256_of(path), "hookpoint": hookpoint,
        "held_out_fraction": held_out_fraction, "salt": salt, "max_records": max_records, "seed": seed,
    }
    if (cache := reuse(folder, source)) is not None:
        return cache
    _fresh(folder)
    feature_ids = _record_feature_ids(path)
    width = len(feature_ids)
    sink = _SplitSink(folder, width, shard_rows=shard_rows, max_records=max_records,
                      held_out_fraction=held_out_fraction, seed=seed)
    rows = _RecordRows(sink, feature_ids, chunk_rows, salt=salt, held_out_fraction=held_out_fraction)
    for done, rec in enumerate(RecordReader(path), 1):
        if rows.add(rec) and progress:
            progress("read", done, None)
    rows.flush()
    return _finish(
        folder, sink, width, shard_rows=shard_rows, hookpoint=hookpoint, source=source, feature_ids=feature_ids
    )


def _record_feature_ids(path: Path) -> list[str]:
    """The first pass over activation records: every feature id they name, in natural order."""
    from interp_agent.core.formats.records import RecordReader

    ids: dict[str, None] = {}
    for rec in RecordReader(path):
        for fid in rec.feature_ids:
            ids.setdefault(fid, None)
    return sorted(ids, key=_natural)


class _RecordRows:
    """Fills dense rows (one column per feature id, missing entries 0) from records and hands each chunk to a sink."""

    def __init__(
        self, sink: _SplitSink, feature_ids: list[str], chunk_rows: int, *, salt: str, held_out_fraction: float
    ) -> None:
        self.sink, self.salt, self.held_out_fraction = sink, salt, held_out_fraction
        self.col = {fid: i for i, fid in enumerate(feature_ids)}
        self.buf = np.zeros((chunk_rows, len(feature_ids)), np.float32)
        self.pids: list[str] = []
        self.explicit: list[str | None] = []
        self.n = 0

    def add(self, rec: ActivationRecord) -> bool:
        """Add one record as a row; True when it filled the chunk, which was then flushed."""
        self.buf[self.n, [self.col[f] for f in rec.feature_ids]] = rec.activations
        self.pids.append(rec.prompt_id)
        self.explicit.append(rec.split)
        self.n += 1
        if self.n == len(self.buf):
            self.flush()
            return True
        return False

    def flush(self) -> None:
        """Hand the buffered rows to the sink, split by prompt (a row's own ``split`` wins) and clear the buffer."""
        if self.n:
            held = assign_splits(prompt_hashes(self.pids, self.salt), self.held_out_fraction, self.explicit) == HELD_OUT
            self.sink.add(self.buf[:self.n].copy(), held)
            self.buf[:self.n] = 0.0
            self.pids.clear()
            self.explicit.clear()
            self.n = 0


def _natural(s: str) -> tuple[Any, ...]:
    import re

    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s))
