"""Harvesting one shard on one model replica: token activations and, for scored prompts, per-prompt records.

One stopped forward pass per batch reads the hookpoint at every position. The dense rows keep
every position but the first (its massive activations are left out of training harvests, as in
``sae.data.from_model``); the records pool the same activations as the hf inspect backend does
(``core.live``: the last token, or the mean / max over the positions after the first) into the
hookpoint's basis features (``L{layer}:D{dim}`` ...). Files are written into a temporary folder
and renamed into place, so a shard folder is either whole or absent.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interp_agent.core.formats.harvest import ACTIVATIONS_FILE, RECORDS_DIR, ShardEntry
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.formats.records import ActivationRecord, FeatureMeta

BATCH_SIZE = 16
"""Prompts (or contexts) per forward pass."""


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """What every shard of one harvest shares."""

    hookpoint: str
    """Canonical hookpoint name."""
    mode: str
    """prompts or contexts."""
    pooling: str
    """Pooling of the per-prompt records (last, mean, max)."""
    max_length: int
    """Tokens kept per prompt (prompt mode)."""
    records: bool
    """Whether to write the per-prompt records (scored prompts)."""
    shards_dir: str
    """Where shard folders go (a path every worker sees)."""
    batch_size: int = BATCH_SIZE
    """Units per forward pass."""


@dataclass(frozen=True, slots=True)
class ShardTask:
    """One shard to harvest: its units."""

    name: str
    index: int
    start: int
    stop: int
    prompts: tuple[ScoredPrompt, ...] | None = None
    """Prompt mode: the shard's prompts (split filled in)."""
    token_ids: np.ndarray | None = None
    """Context mode: int32 [n, context_length]."""
    passage: np.ndarray | None = None
    """Context mode: int32 [n], the corpus passage of each context."""


def _token_ids(loaded: Any, plan: ShardPlan, task: ShardTask) -> list[list[int]]:
    from interp_agent.core.models.harvest import tokenize

    if task.prompts is not None:
        # checks (as the hf backend does) that mean/max pooling has a position after the first to pool
        return tokenize(loaded.tokenizer, [p.text for p in task.prompts], plan.max_length, plan.pooling, True)
    assert task.token_ids is not None
    return [[int(t) for t in row] for row in task.token_ids]


def token_rows(loaded: Any, plan: ShardPlan, ids: list[list[int]]) -> dict[str, np.ndarray]:
    """Every position's activations of ``ids``: acts [N, D] float32, row_prompt, token_index, token_ids [N]
    (int64), sorted by unit, then position."""
    from interp_agent.core.models.harvest import by_length, forward_batches, hook_reader, make_loop
    from interp_agent.core.models.hookpoints import resolve_hookpoint

    point = resolve_hookpoint(loaded.model, plan.hookpoint)
    device = next(loaded.model.parameters()).device
    loop = make_loop(hook_reader(loaded.model, [point]), [point], loaded.tokenizer, device,
                     batch_size=plan.batch_size, pooling="token", exclude_first=False)
    parts: dict[str, list[np.ndarray]] = {"acts": [], "row_prompt": [], "token_index": [], "token_ids": []}
    for b in forward_batches(loop, ids, by_length(ids, range(len(ids)))):
        parts["acts"].append(b.values[point.name].cpu().numpy().astype(np.float32))
        parts["row_prompt"].append(b.row_prompt)
        parts["token_index"].append(np.asarray(b.token_index, np.int64))
        parts["token_ids"].append(np.asarray(b.token_ids, np.int64))
    got = {k: np.concatenate(v) if v else np.zeros((0, point.width) if k == "acts" else 0, np.float32
                                                     if k == "acts" else np.int64) for k, v in parts.items()}
    order = np.lexsort((got["token_index"], got["row_prompt"]))
    return {k: np.ascontiguousarray(v[order]) for k, v in got.items()}


def _records(loaded: Any, plan: ShardPlan, prompts: tuple[ScoredPrompt, ...],
             rows: dict[str, np.ndarray]) -> tuple[Iterator[ActivationRecord], dict[str, FeatureMeta]]:
    """The hf backend's per-prompt records of the hookpoint's basis features (every dimension, zeros too)."""
    from interp_agent.core.ids import basis_feature_ids, parse_hookpoint
    from interp_agent.core.live import TokenActivations
    from interp_agent.core.models.harvest import Harvested

    got = Harvested(rows["acts"], rows["row_prompt"], rows["token_index"], None)
    pooled = TokenActivations({plan.hookpoint: got}, len(prompts), {}).pooled(plan.hookpoint, plan.pooling)
    point = parse_hookpoint(plan.hookpoint)
    fids = tuple(basis_feature_ids(point, pooled.shape[1]))
    meta = {fid: FeatureMeta(layer=point.layer) for fid in fids}
    values = pooled.astype(np.float64)

    def records() -> Iterator[ActivationRecord]:
        for i, p in enumerate(prompts):
            yield ActivationRecord(prompt_id=p.prompt_id, criterion_score=p.criterion_score, feature_ids=fids,
                                   activations=tuple(values[i].tolist()), text=p.text, model=loaded.name,
                                   split=p.split)

    return records(), meta


def _unit_hashes(task: ShardTask, row_prompt: np.ndarray) -> np.ndarray:
    """Unsalted FNV-1a of each row's prompt id (contexts: ``context-{i}``), the key of the held-out split."""
    from interp_agent.core.formats.ids import fnv1a64

    names = [p.prompt_id for p in task.prompts] if task.prompts is not None else \
        [f"context-{i}" for i in range(task.start, task.stop)]
    return fnv1a64(names)[row_prompt] if len(row_prompt) else np.zeros(0, np.uint64)


def file_info(folder: Path) -> dict[str, dict[str, Any]]:
    """Every file under ``folder``: relative path -> sha256 and bytes."""
    out: dict[str, dict[str, Any]] = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        out[f.relative_to(folder).as_posix()] = {"sha256": digest, "bytes": f.stat().st_size}
    return out


def harvest_shard(loaded: Any, plan: ShardPlan, task: ShardTask, *, worker: str = "local") -> ShardEntry:
    """Harvest one shard into ``plan.shards_dir/task.name`` (replacing what is there) and describe it."""
    from safetensors.numpy import save

    from interp_agent.core.formats.parquet import write_parquet_dataset

    started = time.perf_counter()
    ids = _token_ids(loaded, plan, task)
    with torch.no_grad():
        rows = token_rows(loaded, plan, ids)
    keep = rows["token_index"] >= 1
    tensors = {"activations": rows["acts"][keep], "prompt_index": rows["row_prompt"][keep] + task.start,
               "token_index": rows["token_index"][keep], "token_ids": rows["token_ids"][keep],
               "prompt_fnv": _unit_hashes(task, rows["row_prompt"][keep])}
    if task.token_ids is not None and task.passage is not None:  # contexts: whole, so explain can render them
        tensors |= {"context_token_ids": task.token_ids.astype(np.int32), "context_passage": task.passage}
    shards = Path(plan.shards_dir)
    shards.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{task.name}.", dir=shards))
    try:
        (tmp / ACTIVATIONS_FILE).write_bytes(save({k: np.ascontiguousarray(v) for k, v in tensors.items()}))
        if plan.records and task.prompts is not None:
            records, meta = _records(loaded, plan, task.prompts, rows)
            write_parquet_dataset(tmp / RECORDS_DIR, records, meta)
        files = file_info(tmp)
        target = shards / task.name
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ShardEntry(task.name, task.index, task.start, task.stop, int(keep.sum()), len(keep), files,
                      round(time.perf_counter() - started, 4), worker)
