"""One streamed pass over a tokenized corpus that keeps every feature's explanation evidence.

Each batch of contexts (all from one split) is run to the hookpoint and stopped there
(``StopForward``). Its feature activations are reduced at once to what the evidence needs, on
the model's device:

- the **firing entries**: (token, feature, activation) wherever a feature fires, kept sparse (a
  dense feature fires on about 1% of tokens, a TopK latent on k of d_sae per token);
- per-context maxima into an [N, F] table, firing counts and sums, the running maximum.

A TopK SAE is never expanded to [tokens, d_sae]: its k values and indices per token are the
firing entries (``FeatureSource.sparse``). After the pass, the top and quantile-sampled contexts of
every feature and split are chosen at once from the per-context maxima (``select``), and their
per-token activations are read back from the firing entries: the activation where the feature
fires, 0 elsewhere.

SAE latents fire above 0; dense features (residual dimensions, MLP neurons of gated or GELU
MLPs, directions) above the 99th percentile of their token activations in the first
``CALIBRATION_CONTEXTS`` contexts, recorded per feature. The result equals
:func:`select.evidence_from_dense` on the same activations (a test checks it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from interp_agent.core.errors import ValidationError
from interp_agent.core.explain.evidence import SPLITS, Contexts, FeatureEvidence, FeatureKind, Split
from interp_agent.core.explain.select import DENSE_PERCENTILE, Candidates, Selection, Totals, assemble, keys
from interp_agent.core.models.harvest import Transform, hook_reader
from interp_agent.core.models.hookpoints import HookPoint
from interp_agent.core.progress import Progress

CALIBRATION_CONTEXTS = 128
"""Contexts whose token activations set dense features' firing thresholds."""
SparseEncode = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""[..., width] -> (values [..., k], feature indices [..., k]) of a TopK code, ReLU'd."""
StoredReader = Callable[[np.ndarray], torch.Tensor]
"""Context indices [B] -> their stored hookpoint activations [B, T, width] (a sharded harvest, ``core.shards``)."""


@dataclass(frozen=True, slots=True)
class FeatureSource:
    """Which features of one hookpoint to harvest and how they are computed."""

    ids: list[str]
    """Feature id of each column the transform returns (after ``columns``)."""
    kind: FeatureKind
    transform: Transform | None
    """[..., width] hookpoint activations -> [..., F_all] feature activations; None for the basis itself."""
    columns: np.ndarray | None = None
    """Which of the transform's columns to keep (int64), or None for all."""
    output_directions: np.ndarray | None = None
    """float32 [F, d_model]: each feature's write direction in the residual stream (logit lens), or None."""
    description: dict[str, Any] = field(default_factory=dict)
    """Goes into the manifest's ``feature_source``."""
    sparse: SparseEncode | None = None
    """For a TopK SAE: its k values and indices per token, so the pass never builds [tokens, d_sae]."""
    n_all: int | None = None
    """Width of the transform's output before ``columns`` (with ``sparse`` and ``columns``)."""


def is_sparse_kind(kind: FeatureKind) -> bool:
    """SAE latents fire above 0; every other kind is dense and fires above a calibrated percentile."""
    return kind == "sae_latent"


def _row_max(n_rows: int, n_cols: int, row: torch.Tensor, col: torch.Tensor, val: torch.Tensor) -> torch.Tensor:
    """[n_rows, n_cols]: the largest ``val`` per (row, col), 0 where there is none."""
    out = torch.zeros(n_rows * n_cols, dtype=val.dtype, device=val.device)
    out.scatter_reduce_(0, row * n_cols + col, val, reduce="amax")
    return out.view(n_rows, n_cols)


@dataclass(slots=True)
class _Pass:
    """Everything the pass accumulates (tensors on the model's device; entries on the CPU)."""

    n_feat: int
    n_ctx: int
    length: int
    threshold: torch.Tensor
    ctx_max: torch.Tensor
    fired_tokens: torch.Tensor
    fired_sum: torch.Tensor
    max_act: torch.Tensor
    entry_keys: list[torch.Tensor] = field(default_factory=list)
    entry_values: list[torch.Tensor] = field(default_factory=list)

    def add_entries(self, ctx_E: torch.Tensor, pos_E: torch.Tensor, feat_E: torch.Tensor,
                    val_E: torch.Tensor) -> None:
        """Fold firing entries (context, position >= 1, feature, activation above threshold) into the totals."""
        self.fired_tokens += torch.bincount(feat_E, minlength=self.n_feat)
        self.fired_sum += torch.bincount(feat_E, weights=val_E.double(), minlength=self.n_feat)
        self.max_act.scatter_reduce_(0, feat_E, val_E, reduce="amax")
        self.entry_keys.append((feat_E * (self.n_ctx * self.length) + ctx_E * self.length + pos_E).cpu())
        self.entry_values.append(val_E.float().cpu())

    def dense(self, feats_BTF: torch.Tensor, batch_ctx: torch.Tensor) -> None:
        """One batch of dense activations [B, T, F]."""
        counted = feats_BTF[:, 1:, :]
        self.ctx_max[batch_ctx] = counted.amax(dim=1)
        self.max_act = torch.maximum(self.max_act, counted.amax(dim=(0, 1)))
        b, t, f = (counted > self.threshold).nonzero(as_tuple=True)
        self.add_entries(batch_ctx[b], t + 1, f, counted[b, t, f])

    def topk(self, values_BTK: torch.Tensor, index_BTK: torch.Tensor, batch_ctx: torch.Tensor,
             col_of: torch.Tensor | None) -> None:
        """One batch of a TopK code: values and feature indices [B, T, k]; a value of 0 is not firing."""
        vals, idx = values_BTK[:, 1:, :], index_BTK[:, 1:, :]
        if col_of is not None:
            idx = col_of[idx]
        b, t, j = ((vals > 0) & (idx >= 0)).nonzero(as_tuple=True)
        feat, val = idx[b, t, j], vals[b, t, j].float()
        self.ctx_max[batch_ctx] = _row_max(len(batch_ctx), self.n_feat, b, feat, val)
        self.add_entries(batch_ctx[b], t + 1, feat, val)


def _encode(acts_BTD: torch.Tensor, source: FeatureSource, device: torch.device) -> torch.Tensor:
    feats = acts_BTD.float()
    if source.transform is not None:
        feats = source.transform(feats)
    if source.columns is not None:
        feats = feats[..., torch.as_tensor(source.columns, device=device)]
    return feats


def split_batches(contexts: Contexts, batch_size: int) -> list[tuple[np.ndarray, Split]]:
    """Batches of one split each, the two splits interleaved so calibration sees both."""
    explain_idx, held_idx = np.flatnonzero(~contexts.held_out), np.flatnonzero(contexts.held_out)
    explain: list[tuple[np.ndarray, Split]] = [(explain_idx[i: i + batch_size], "explain")
                                               for i in range(0, len(explain_idx), batch_size)]
    held: list[tuple[np.ndarray, Split]] = [(held_idx[i: i + batch_size], "held_out")
                                            for i in range(0, len(held_idx), batch_size)]
    mixed = [b for pair in zip(explain, held, strict=False) for b in pair]
    longer = explain if len(explain) > len(held) else held
    return mixed + longer[min(len(explain), len(held)):]


def dense_thresholds(sample_NF: torch.Tensor) -> torch.Tensor:
    """Per-feature DENSE_PERCENTILE of token activations [N, F] (numpy's linear interpolation)."""
    values = np.percentile(sample_NF.double().cpu().numpy(), DENSE_PERCENTILE, axis=0)
    return torch.as_tensor(values, dtype=torch.float32, device=sample_NF.device)


def _start(n_feat: int, threshold: torch.Tensor, contexts: Contexts, device: torch.device, *, sparse: bool) -> _Pass:
    """Empty totals; the running maximum starts at 0 for a sparse code (silent latents are 0), else at -inf."""
    return _Pass(n_feat, len(contexts), contexts.length, threshold,
                 torch.zeros((len(contexts), n_feat), device=device), torch.zeros(n_feat, dtype=torch.long,
                 device=device), torch.zeros(n_feat, dtype=torch.float64, device=device),
                 torch.full((n_feat,), 0.0 if sparse else -torch.inf, device=device))


class _Harvester:
    """Runs the batches: a TopK source straight into sparse entries, a dense one after calibration."""

    def __init__(self, loaded: Any, contexts: Contexts, point: HookPoint, source: FeatureSource,
                 stored: StoredReader | None = None) -> None:
        self.contexts, self.source = contexts, source
        self.device = next(loaded.model.parameters()).device
        self.read = hook_reader(loaded.model, [point])
        self.stored = stored
        self.point = point
        self.state: _Pass | None = None
        self.pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.col_of: torch.Tensor | None = None
        if source.sparse is not None:
            self._sparse_start()

    def _sparse_start(self) -> None:
        if self.source.columns is not None:
            n_all = int(self.source.n_all or (int(self.source.columns.max()) + 1))
            col_of = torch.full((n_all,), -1, dtype=torch.long, device=self.device)
            col_of[torch.as_tensor(self.source.columns, device=self.device)] = torch.arange(
                len(self.source.columns), device=self.device)
            self.col_of = col_of
        n = len(self.source.ids)
        self.state = _start(n, torch.zeros(n, device=self.device), self.contexts, self.device, sparse=True)

    def batch(self, rows: np.ndarray, last: bool) -> None:
        """Run and fold in one batch of contexts."""
        input_BT = torch.as_tensor(self.contexts.token_ids[rows], dtype=torch.long, device=self.device)
        ctx = torch.as_tensor(rows, dtype=torch.long, device=self.device)
        with torch.no_grad():
            if self.stored is not None:
                acts = self.stored(rows).to(self.device).float()
            else:
                acts = self.read(input_BT, torch.ones_like(input_BT))[self.point.name].float()
            if self.source.sparse is not None:
                assert self.state is not None
                values, index = self.source.sparse(acts)
                self.state.topk(values, index, ctx, self.col_of)
                return
            feats = _encode(acts, self.source, self.device)
        if self.state is not None:
            self.state.dense(feats, ctx)
            return
        self.pending.append((feats, ctx))
        if sum(len(c) for _, c in self.pending) >= CALIBRATION_CONTEXTS or last:
            self._calibrate()

    def _calibrate(self) -> None:
        n_feat = self.pending[0][0].shape[-1]
        if n_feat != len(self.source.ids):
            raise ValidationError(f"the feature source computes {n_feat} features but names {len(self.source.ids)}")
        if is_sparse_kind(self.source.kind):
            threshold = torch.zeros(n_feat, device=self.device)
        else:
            threshold = dense_thresholds(torch.cat([f[:, 1:, :].reshape(-1, n_feat) for f, _ in self.pending]))
        self.state = _start(n_feat, threshold, self.contexts, self.device, sparse=is_sparse_kind(self.source.kind))
        for feats, ctx in self.pending:
            self.state.dense(feats, ctx)
        self.pending = []


def harvest_evidence(loaded: Any, contexts: Contexts, point: HookPoint, source: FeatureSource, *,
                     selection: Selection | None = None, batch_size: int = 32, seed: int = 0,
                     progress: Progress | None = None,
                     stored: StoredReader | None = None) -> tuple[dict[str, FeatureEvidence], dict[str, float]]:
    """Every feature's evidence from one pass over ``contexts``; also the pass's timings (seconds).

    With ``stored``, the hookpoint's activations are read from a sharded harvest instead of the model
    (position 0 of a context is never counted, so a reader may leave it zero).
    """
    selection = selection or Selection()
    if batch_size < 1:
        raise ValidationError(f"batch_size must be positive, got {batch_size}")
    batches = split_batches(contexts, batch_size)
    harvester = _Harvester(loaded, contexts, point, source, stored)
    started = time.perf_counter()
    for done, (rows, _) in enumerate(batches, 1):
        harvester.batch(rows, done == len(batches))
        if progress is not None:
            progress("harvesting", done, len(batches))
    state = harvester.state
    assert state is not None, "a corpus has at least one batch"
    harvest_s = time.perf_counter() - started
    out = _assemble_all(state, contexts, source, selection, seed)
    return out, {"harvest_s": harvest_s, "assemble_s": time.perf_counter() - started - harvest_s}


# --- after the pass ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entries:
    """Firing entries sorted by key = feature * N * T + context * T + position."""

    keys: np.ndarray
    values: np.ndarray
    n_ctx: int
    length: int

    @classmethod
    def of(cls, state: _Pass) -> _Entries:
        keys_ = torch.cat(state.entry_keys).numpy() if state.entry_keys else np.zeros(0, np.int64)
        values = torch.cat(state.entry_values).numpy() if state.entry_values else np.zeros(0, np.float32)
        order = np.argsort(keys_, kind="stable")
        return cls(keys_[order], values[order], state.n_ctx, state.length)

    def acts(self, feature: int, contexts_C: np.ndarray) -> np.ndarray:
        """float32 [len(contexts_C), T]: the feature's firing activations in those contexts, 0 elsewhere."""
        out = np.zeros((len(contexts_C), self.length), dtype=np.float32)
        if not len(contexts_C):
            return out
        base = feature * self.n_ctx * self.length + contexts_C.astype(np.int64) * self.length
        lo = np.searchsorted(self.keys, base, side="left")
        hi = np.searchsorted(self.keys, base + self.length, side="left")
        rows = np.repeat(np.arange(len(contexts_C)), hi - lo)
        picks = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)]) if len(rows) else \
            np.zeros(0, np.int64)
        out[rows, self.keys[picks] % self.length] = self.values[picks]
        return out


def _best_rows(score_NF: np.ndarray, idx_N: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per feature, the ``n`` contexts of ``idx_N`` with the highest finite score (ties: lower context):
    contexts [n, F] and whether each slot holds one [n, F]."""
    order = np.argsort(-score_NF, axis=0, kind="stable")[:n]
    chosen = idx_N[order]
    valid = np.isfinite(np.take_along_axis(score_NF, order, axis=0))
    return chosen, valid


def _split_candidates(state: _Pass, ctx_max: np.ndarray, thr: np.ndarray, contexts: Contexts, split: Split,
                      selection: Selection, seed: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    idx = np.flatnonzero(contexts.held_out == (split == "held_out"))
    firing = ctx_max[idx] > thr
    top = _best_rows(np.where(firing, ctx_max[idx], -np.inf), idx, selection.n_top)
    k = keys(seed, np.arange(state.n_feat), idx, salt=1)
    pool = _best_rows(np.where(firing, k, -np.inf), idx, selection.pool)
    return top, pool


def _assemble_all(state: _Pass, contexts: Contexts, source: FeatureSource, selection: Selection,
                  seed: int) -> dict[str, FeatureEvidence]:
    entries = _Entries.of(state)
    ctx_max = state.ctx_max.cpu().numpy()
    thr = state.threshold.cpu().numpy()
    fired, sums = state.fired_tokens.cpu().numpy(), state.fired_sum.cpu().numpy()
    maxes = state.max_act.cpu().numpy()
    chosen: dict[Split, tuple[tuple[np.ndarray, np.ndarray], ...]] = {
        split: _split_candidates(state, ctx_max, thr, contexts, split, selection, seed) for split in SPLITS}
    n_tokens = len(contexts) * (contexts.length - 1)
    out: dict[str, FeatureEvidence] = {}
    for f, fid in enumerate(source.ids):
        cands: dict[Split, Candidates] = {}
        for split, ((top_c, top_v), (pool_c, pool_v)) in chosen.items():
            t, p = top_c[top_v[:, f], f], pool_c[pool_v[:, f], f]
            cands[split] = Candidates(t, entries.acts(f, t), p, entries.acts(f, p))
        totals = Totals(source.kind, float(thr[f]), int(fired[f]), float(sums[f]), max(float(maxes[f]), 0.0),
                        n_tokens)
        out[fid] = assemble(fid, f, totals, ctx_max[:, f], contexts, cands, selection, seed)
    return out
