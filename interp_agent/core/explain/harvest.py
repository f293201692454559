"""One streamed pass over a tokenized corpus that keeps every feature's explanation evidence.

Each batch of contexts (all from one split, so a batch updates one split's state) is run to
the hookpoint and stopped there (``StopForward``); the hookpoint's activations become
feature activations [B, T, F] by the source's transform (an SAE encoder, a projection, or
none). Per batch, on the model's device:

- per-context maxima go into a [N, F] table (histograms, random non-firing contexts);
- firing counts and sums (density, mean activation) and the running maximum;
- a running top-``n_top`` per feature and a uniform sample (``pool``, by hashed keys, see
  ``select.keys``) of firing contexts, both with per-token activations; only features whose
  candidates change in the batch are touched, so late batches cost little.

Dense features (residual dimensions, directions) fire above the 99th percentile of their token
activations in the first ``CALIBRATION_CONTEXTS`` contexts (recorded per feature); ReLU-like codes
(SAE latents, MLP neurons) above 0. The result equals :func:`select.evidence_from_dense` on
the same activations (a test checks it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from interp_agent.core.errors import ValidationError
from interp_agent.core.explain.evidence import Contexts, FeatureEvidence, FeatureKind, Split
from interp_agent.core.explain.select import (
    DENSE_PERCENTILE,
    Candidates,
    Selection,
    Totals,
    assemble,
    keys,
)
from interp_agent.core.models.harvest import Transform, hook_reader
from interp_agent.core.models.hookpoints import HookPoint
from interp_agent.core.progress import Progress

CALIBRATION_CONTEXTS = 128
"""Contexts whose token activations set dense features' firing thresholds."""


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


@dataclass(slots=True)
class _SplitState:
    """Running top and sample of one split: values/keys [F, n], contexts [F, n], acts [F, n, T]."""

    top_val: torch.Tensor
    top_ctx: torch.Tensor
    top_acts: torch.Tensor
    pool_key: torch.Tensor
    pool_ctx: torch.Tensor
    pool_acts: torch.Tensor


def _empty_state(n_feat: int, selection: Selection, length: int, device: torch.device) -> _SplitState:
    def block(n: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (torch.full((n_feat, n), -torch.inf, dtype=dtype, device=device),
                torch.full((n_feat, n), -1, dtype=torch.long, device=device),
                torch.zeros((n_feat, n, length), device=device))

    # keys stay float64, as select.keys makes them, so ties break as in the in-memory reference
    return _SplitState(*block(selection.n_top, torch.float32), *block(selection.pool, torch.float64))


def _merge(val: torch.Tensor, ctx: torch.Tensor, acts: torch.Tensor, new_val_FB: torch.Tensor,
           batch_ctx: torch.Tensor, feats_FBT: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep the n best (value desc, context asc) of the old and new candidates of features that change."""
    n = val.shape[1]
    changed = (new_val_FB > val[:, -1:]).any(dim=1).nonzero(as_tuple=True)[0]
    if not len(changed):
        return val, ctx, acts
    cv = torch.cat([val[changed], new_val_FB[changed]], dim=1)
    cc = torch.cat([ctx[changed], batch_ctx.expand(len(changed), -1)], dim=1)
    ca = torch.cat([acts[changed], feats_FBT[changed]], dim=1)
    # value descending, context ascending: a stable sort by context, then a stable sort by -value
    by_ctx = torch.sort(torch.where(cc < 0, torch.iinfo(torch.long).max, cc), dim=1, stable=True).indices
    cv, cc, ca = cv.gather(1, by_ctx), cc.gather(1, by_ctx), ca.gather(1, by_ctx[..., None].expand_as(ca))
    order = torch.sort(-cv, dim=1, stable=True).indices[:, :n]
    val, ctx, acts = val.clone(), ctx.clone(), acts.clone()
    val[changed] = cv.gather(1, order)
    ctx[changed] = cc.gather(1, order)
    acts[changed] = ca.gather(1, order[..., None].expand(-1, -1, ca.shape[2]))
    return val, ctx, acts


@dataclass(slots=True)
class _Pass:
    """Everything a harvest accumulates."""

    source: FeatureSource
    selection: Selection
    seed: int
    threshold: torch.Tensor
    ctx_max: np.ndarray
    fired_tokens: torch.Tensor
    fired_sum: torch.Tensor
    max_act: torch.Tensor
    states: dict[Split, _SplitState]
    feature_index: np.ndarray

    def update(self, feats_BTF: torch.Tensor, batch_ctx: np.ndarray, split: Split) -> None:
        """Fold one batch (all of ``split``) into the running state."""
        counted = feats_BTF[:, 1:, :]
        fired = counted > self.threshold
        self.fired_tokens += fired.sum(dim=(0, 1))
        self.fired_sum += torch.where(fired, counted, 0.0).sum(dim=(0, 1))
        self.max_act = torch.maximum(self.max_act, counted.amax(dim=(0, 1)))
        cmax_BF = counted.amax(dim=1)
        self.ctx_max[batch_ctx] = cmax_BF.float().cpu().numpy()
        firing_BF = cmax_BF > self.threshold
        feats_FBT = feats_BTF.permute(2, 0, 1).clone()
        feats_FBT[:, :, 0] = torch.minimum(self.threshold, torch.zeros_like(self.threshold))[:, None]
        ctx_t = torch.as_tensor(batch_ctx, device=feats_BTF.device)[None, :]
        state = self.states[split]
        top_new = torch.where(firing_BF, cmax_BF, -torch.inf).T
        state.top_val, state.top_ctx, state.top_acts = _merge(state.top_val, state.top_ctx, state.top_acts, top_new,
                                                              ctx_t, feats_FBT)
        k_BF = torch.as_tensor(keys(self.seed, self.feature_index, batch_ctx, salt=1), device=feats_BTF.device)
        pool_new = torch.where(firing_BF, k_BF, -torch.inf).T
        state.pool_key, state.pool_ctx, state.pool_acts = _merge(state.pool_key, state.pool_ctx, state.pool_acts,
                                                                 pool_new, ctx_t, feats_FBT)


def _features_of(acts_BTD: torch.Tensor, source: FeatureSource, device: torch.device) -> torch.Tensor:
    feats = acts_BTD.float()
    if source.transform is not None:
        feats = source.transform(feats)
    if source.columns is not None:
        feats = feats[..., torch.as_tensor(source.columns, device=device)]
    return feats


def harvest_evidence(loaded: Any, contexts: Contexts, point: HookPoint, source: FeatureSource, *,
                     selection: Selection | None = None, batch_size: int = 32, seed: int = 0,
                     progress: Progress | None = None) -> tuple[dict[str, FeatureEvidence], dict[str, float]]:
    """Every feature's evidence from one pass over ``contexts``; also the pass's timings (seconds)."""
    selection = selection or Selection()
    if batch_size < 1:
        raise ValidationError(f"batch_size must be positive, got {batch_size}")
    device = next(loaded.model.parameters()).device
    read = hook_reader(loaded.model, [point])
    batches = split_batches(contexts, batch_size)
    started = time.perf_counter()
    state: _Pass | None = None
    pending: list[tuple[torch.Tensor, np.ndarray, Split]] = []
    for done, (rows, split) in enumerate(batches, 1):
        input_BT = torch.as_tensor(contexts.token_ids[rows], dtype=torch.long, device=device)
        with torch.no_grad():
            feats = _features_of(read(input_BT, torch.ones_like(input_BT))[point.name], source, device)
        if state is None:
            pending.append((feats, rows, split))
            if sum(len(r) for _, r, _ in pending) < CALIBRATION_CONTEXTS and done < len(batches):
                continue
            state = _start(pending, source, selection, seed, len(contexts), device)
            for f, r, s in pending:
                state.update(f, r, s)
            pending = []
        else:
            state.update(feats, rows, split)
        if progress is not None:
            progress("harvesting", done, len(batches))
    assert state is not None, "a corpus has at least one batch"
    harvest_s = time.perf_counter() - started
    out = _assemble_all(state, contexts)
    return out, {"harvest_s": harvest_s, "assemble_s": time.perf_counter() - started - harvest_s}


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


def _start(pending: list[tuple[torch.Tensor, np.ndarray, Split]], source: FeatureSource, selection: Selection,
           seed: int, n_contexts: int, device: torch.device) -> _Pass:
    n_feat = pending[0][0].shape[-1]
    if n_feat != len(source.ids):
        raise ValidationError(f"the feature source computes {n_feat} features but names {len(source.ids)}")
    if source.kind in ("sae_latent", "neuron"):
        threshold = torch.zeros(n_feat, device=device)
    else:
        threshold = dense_thresholds(torch.cat([f[:, 1:, :].reshape(-1, n_feat) for f, _, _ in pending]))
    length = pending[0][0].shape[1]
    states: dict[Split, _SplitState] = {s: _empty_state(n_feat, selection, length, device)
                                        for s in ("explain", "held_out")}
    return _Pass(source, selection, seed, threshold, np.zeros((n_contexts, n_feat), dtype=np.float32),
                 torch.zeros(n_feat, dtype=torch.long, device=device), torch.zeros(n_feat, dtype=torch.float64,
                 device=device), torch.full((n_feat,), -torch.inf, device=device), states,
                 np.arange(n_feat, dtype=np.int64))


def _candidates(state: _SplitState, f: int) -> Candidates:
    top = state.top_ctx[f].cpu().numpy()
    pool = state.pool_ctx[f].cpu().numpy()
    # slots still at -inf hold no candidate (a merge may park non-firing contexts there)
    tk, pk = np.isfinite(state.top_val[f].cpu().numpy()), np.isfinite(state.pool_key[f].cpu().numpy())
    return Candidates(top[tk], state.top_acts[f].cpu().numpy()[tk], pool[pk], state.pool_acts[f].cpu().numpy()[pk])


def _assemble_all(state: _Pass, contexts: Contexts) -> dict[str, FeatureEvidence]:
    n_tokens = len(contexts) * (contexts.length - 1)
    thr = state.threshold.cpu().numpy()
    fired = state.fired_tokens.cpu().numpy()
    sums = state.fired_sum.cpu().numpy()
    maxes = state.max_act.cpu().numpy()
    out: dict[str, FeatureEvidence] = {}
    for f, fid in enumerate(state.source.ids):
        totals = Totals(state.source.kind, float(thr[f]), int(fired[f]), float(sums[f]), max(float(maxes[f]), 0.0),
                        n_tokens)
        cands: dict[Split, Candidates] = {s: _candidates(st, f) for s, st in state.states.items()}
        out[fid] = assemble(fid, f, totals, state.ctx_max[:, f], contexts, cands, state.selection, state.seed)
    return out
