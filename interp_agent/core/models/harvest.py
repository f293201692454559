"""Batched activation harvesting, and activation records made from it.

One forward pass per batch captures every hookpoint asked for and stops after the
deepest one (``StopForward``), so later blocks and the LM head never run. Texts are
tokenized once, sorted by length (longest first, so memory peaks in the first batch)
and padded on the right; results come back in the caller's order.

Pooling uses real tokens only. By default the first position is excluded from ``mean``,
``max`` and ``token`` rows: it carries massive activations (mid-depth residual norm ~2,000
vs ~120 elsewhere in SmolLM2) that would dominate any average. ``last`` always takes the
last real token. Features (SAE latents, direction projections) are computed per token
before pooling, so ``max`` of an SAE latent is its largest value over the prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch

from interp_agent.core.errors import ValidationError
from interp_agent.core.formats.parquet import write_parquet_dataset
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.formats.records import ActivationRecord, FeatureMeta, write_records
from interp_agent.core.ids import basis_feature_ids, format_sae_latent, parse_hookpoint
from interp_agent.core.models.hookpoints import HookPoint, resolve_hookpoint
from interp_agent.core.models.hooks import StopForward, capture, stop_after
from interp_agent.core.models.loading import LoadedModel
from interp_agent.core.progress import Progress

Pooling = Literal["token", "last", "mean", "max"]
FeatureKind = Literal["dims", "sae", "direction"]
POOLINGS: tuple[str, ...] = ("token", "last", "mean", "max")
Transform = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True, slots=True, eq=False)
class Harvested:
    """Activations at one hookpoint: one row per prompt, or per token with ``pooling='token'``."""

    acts: np.ndarray
    """float32 [n_rows, width]."""
    row_prompt: np.ndarray
    """int64 [n_rows]: index (into the texts given) of the prompt of each row."""
    token_index: np.ndarray | None
    """int64 [n_rows]: token position of each row (token pooling), else None."""
    tokens: list[str] | None
    """The token string of each row (token pooling), else None."""


class SaeParams(NamedTuple):
    """SAE encoder weights in SAE Lens's layout (a plain 5-tuple works too)."""

    W_enc: Any
    """[d_in, d_sae]."""
    b_enc: Any
    """[d_sae]."""
    b_dec: Any
    """[d_in]; subtracted from the input before encoding."""
    threshold: Any = None
    """[d_sae] JumpReLU thresholds, or None."""
    k: int | None = None
    """TopK: keep the k largest pre-activations per token, or None."""


def encode_sae(acts_ND: torch.Tensor, sae: SaeParams | tuple[Any, ...]) -> torch.Tensor:
    """SAE latents of ``acts`` (any leading shape), as SAE Lens encodes them.

    ``pre = (x - b_dec) @ W_enc + b_enc``; ReLU: ``relu(pre)``; JumpReLU:
    ``relu(pre) * (pre > threshold)``; TopK: the k largest ``pre`` per token, ReLU'd, others 0.
    """
    W_enc, b_enc, b_dec, threshold, k = _sae_tuple(sae)
    dev, dt = acts_ND.device, acts_ND.dtype
    pre = (acts_ND - torch.as_tensor(b_dec, device=dev, dtype=dt)) @ torch.as_tensor(W_enc, device=dev, dtype=dt)
    pre = pre + torch.as_tensor(b_enc, device=dev, dtype=dt)
    if threshold is not None:
        return torch.relu(pre) * (pre > torch.as_tensor(threshold, device=dev, dtype=dt))
    if k is not None:
        top = torch.topk(pre, int(k), dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
    return torch.relu(pre)


def _sae_tuple(sae: SaeParams | tuple[Any, ...]) -> SaeParams:
    if len(sae) not in (3, 4, 5):
        raise ValidationError(f"an SAE is (W_enc, b_enc, b_dec, threshold|None, k|None); got a {len(sae)}-tuple")
    params = SaeParams(*sae)
    if params.threshold is not None and params.k is not None:
        raise ValidationError("an SAE has either a JumpReLU threshold or a TopK k, not both")
    return params


# --- harvesting ------------------------------------------------------------------------

ActivationReader = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
"""How the loop reads activations: (input ids [B, T], attention mask [B, T]) -> [B, T, width] per
hookpoint name. ``hook_reader`` reads them with our own hooks; the TransformerLens and nnsight
exporters plug in their own readers (``core/bridges/exporters.py``)."""


@dataclass(slots=True)
class _Batch:
    """Pooled values of one forward batch, per hookpoint (rows in the batch's own order)."""

    values: dict[str, torch.Tensor]
    row_prompt: np.ndarray
    token_index: np.ndarray | None
    token_ids: np.ndarray | None


def check_options(batch_size: int, max_length: int, pooling: str, top_n: int | None = None) -> None:
    """Raise ValidationError for a bad batch size, max length, pooling or top_n."""
    if pooling not in POOLINGS:
        raise ValidationError(f"unknown pooling {pooling!r}", hint=f"use one of {list(POOLINGS)}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(max_length, int) or max_length < 1:
        raise ValidationError(f"max_length must be a positive integer, got {max_length!r}")
    if top_n is not None and (not isinstance(top_n, int) or top_n < 1):
        raise ValidationError(f"top_n must be a positive integer or None, got {top_n!r}")


def resolve_points(model: Any, hookpoints: Sequence[str]) -> list[HookPoint]:
    """The distinct hookpoints named, resolved on ``model``, in the order given."""
    if isinstance(hookpoints, str) or not hookpoints:
        raise ValidationError(
            f"hookpoints must be a non-empty list of names, got {hookpoints!r}",
            hint="e.g. ['blocks.15.hook_resid_post']",
        )
    points: dict[str, HookPoint] = {}
    for name in hookpoints:
        point = resolve_hookpoint(model, name)
        points.setdefault(point.name, point)
    return list(points.values())


def tokenize(
    tokenizer: Any, texts: Sequence[str], max_length: int, pooling: str, exclude_first: bool
) -> list[list[int]]:
    """Token ids of ``texts`` (truncated); ValidationError when a text has nothing to pool."""
    if not texts:
        return []
    ids = tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=max_length)["input_ids"]
    lengths = np.array([len(x) for x in ids])
    need = 2 if exclude_first and pooling in ("mean", "max") else 1
    short = np.flatnonzero(lengths < need)
    if len(short):
        raise ValidationError(
            f"{len(short)} text(s) have fewer than {need} token(s) (first: text {int(short[0])}, {texts[short[0]]!r}); "
            f"{pooling} pooling" + (" without the first position" if need == 2 else "") + " has nothing to pool",
            hint="drop them, or use pooling='last'" + (" or exclude_first=False" if need == 2 else ""),
        )
    return ids


def _pool(
    acts_BTD: torch.Tensor, keep_BT: torch.Tensor, last_B: torch.Tensor, pooling: str, transform: Transform | None
) -> torch.Tensor:
    """Pool one hookpoint's activations: [B, F] (mean/max/last) or [n_kept, F] (token)."""
    acts = acts_BTD.float()
    if pooling == "token":
        rows = acts[keep_BT]
        return transform(rows) if transform else rows
    if pooling == "last":
        rows = acts[torch.arange(acts.shape[0], device=acts.device), last_B]
        return transform(rows) if transform else rows
    feats_BTF = transform(acts) if transform else acts
    keep = keep_BT.unsqueeze(-1)
    if pooling == "mean":
        return (feats_BTF * keep).sum(1) / keep.sum(1).clamp_min(1)
    return feats_BTF.masked_fill(~keep, float("-inf")).amax(1)


def pad_batch(
    ids: list[list[int]], batch: np.ndarray, pad_id: int, device: torch.device, exclude_first: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask`` [B, T] of prompts ``batch``, the mask of
    positions to pool (real tokens, less the first when ``exclude_first``) and each last real position [B]."""
    lengths = [len(ids[i]) for i in batch]
    input_BT = torch.full((len(batch), max(lengths)), pad_id, dtype=torch.long)
    mask_BT = torch.zeros_like(input_BT)
    for row, i in enumerate(batch):
        input_BT[row, : lengths[row]] = torch.tensor(ids[i], dtype=torch.long)
        mask_BT[row, : lengths[row]] = 1
    input_BT, mask_BT = input_BT.to(device), mask_BT.to(device)
    keep_BT = mask_BT.bool()
    if exclude_first:
        keep_BT[:, 0] = False
    return input_BT, mask_BT, keep_BT, torch.as_tensor(lengths, device=device) - 1


def hook_reader(model: Any, points: list[HookPoint]) -> ActivationReader:
    """The default reader: our hooks capture every hookpoint and stop the forward after the deepest."""
    names = [p.name for p in points]

    def read(input_BT: torch.Tensor, mask_BT: torch.Tensor) -> dict[str, torch.Tensor]:
        # hooks live for one batch only: the caller may use the model between batches
        with capture(model, names) as store, stop_after(model, names):
            try:
                model(input_ids=input_BT, attention_mask=mask_BT, use_cache=False)
            except StopForward:
                pass
        return {name: store[name][0] for name in names}

    return read


@dataclass(frozen=True, slots=True)
class Loop:
    """One batched pass: what is read, how it is batched and pooled."""

    reader: ActivationReader
    """Reads the activations of one padded batch."""
    points: list[HookPoint]
    """Hookpoints read, each pooled into ``values``."""
    pad_id: int
    """Token id used for right padding."""
    device: torch.device
    """Where batches are built and pooled."""
    batch_size: int
    """Prompts per forward pass."""
    pooling: str
    """token, last, mean or max."""
    exclude_first: bool
    """Leave the first position out of mean, max and token rows."""


def make_loop(
    reader: ActivationReader, points: list[HookPoint], tokenizer: Any, device: torch.device | str, *,
    batch_size: int, pooling: str, exclude_first: bool,
) -> Loop:
    """A Loop over ``reader``'s activations, padding with the tokenizer's pad id (0 when it has none)."""
    pad_id = tokenizer.pad_token_id
    return Loop(reader, points, 0 if pad_id is None else int(pad_id), torch.device(device), batch_size, pooling,
                exclude_first)


def forward_batches(
    loop: Loop,
    ids: list[list[int]],
    prompt_order: Sequence[int],
    transforms: dict[str, Transform] | None = None,
    *,
    progress: Progress | None = None,
    batches_done: int = 0,
    batches_total: int = 0,
) -> Iterator[_Batch]:
    """Run the prompts in ``prompt_order`` through ``loop.reader`` in batches; yield pooled values."""
    transforms = transforms or {}
    pooling = loop.pooling
    for start in range(0, len(prompt_order), loop.batch_size):
        batch = np.asarray(prompt_order[start : start + loop.batch_size], dtype=np.int64)
        input_BT, mask_BT, keep_BT, last_B = pad_batch(
            ids, batch, loop.pad_id, loop.device, loop.exclude_first and pooling != "last")
        with torch.no_grad():
            acts = loop.reader(input_BT, mask_BT)
            values = {p.name: _pool(acts[p.name].to(loop.device), keep_BT, last_B, pooling, transforms.get(p.name))
                      for p in loop.points}
        if pooling == "token":
            b, t = (x.cpu().numpy() for x in keep_BT.nonzero(as_tuple=True))
            yield _Batch(values, batch[b], t.astype(np.int64), input_BT[keep_BT].cpu().numpy())
        else:
            yield _Batch(values, batch, None, None)
        batches_done += 1
        if progress is not None:
            progress("harvesting", batches_done, batches_total)


def by_length(ids: list[list[int]], prompts: Sequence[int]) -> list[int]:
    """Prompts sorted longest first (stable), so batches carry little padding."""
    return sorted(prompts, key=lambda i: -len(ids[i]))


class TokenText:
    """Decodes token ids one at a time, remembering each."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.cache: dict[int, str] = {}

    def __call__(self, token_id: int) -> str:
        text = self.cache.get(token_id)
        if text is None:
            text = self.cache[token_id] = self.tokenizer.decode([token_id])
        return text


def harvest(
    loaded: LoadedModel,
    texts: list[str],
    hookpoints: list[str],
    *,
    batch_size: int = 16,
    max_length: int = 128,
    pooling: Pooling = "mean",
    exclude_first: bool = True,
    progress: Progress | None = None,
) -> dict[str, Harvested]:
    """Activations of ``texts`` at ``hookpoints``, all captured in one stopped forward pass per batch.

    Args:
        loaded: the model.
        texts: prompts; each is truncated to ``max_length`` tokens.
        hookpoints: TransformerLens names, e.g. ``blocks.15.hook_resid_post``.
        batch_size: prompts per forward pass.
        max_length: tokens kept per prompt.
        pooling: ``mean`` / ``max`` over real tokens, the ``last`` real token, or
            ``token``: one row per real token.
        exclude_first: leave the first position out of mean, max and token rows.
        progress: called with ("harvesting", batches done, batches total) after each batch.

    Returns:
        Per hookpoint name, a Harvested with rows in the order of ``texts`` (token rows by
        prompt, then position).

    Raises:
        ValidationError: bad options, an unknown hookpoint, or a text with nothing to pool.
    """
    check_options(batch_size, max_length, pooling)
    points = resolve_points(loaded.model, hookpoints)
    ids = tokenize(loaded.tokenizer, texts, max_length, pooling, exclude_first)
    device = next(loaded.model.parameters()).device
    loop = make_loop(hook_reader(loaded.model, points), points, loaded.tokenizer, device,
                     batch_size=batch_size, pooling=pooling, exclude_first=exclude_first)
    batches = forward_batches(loop, ids, by_length(ids, range(len(ids))), progress=progress,
                              batches_total=-(-len(ids) // batch_size))
    if pooling != "token":
        return _pooled(batches, points, len(ids))
    return _token_rows(batches, points, loaded.tokenizer)


def _pooled(batches: Iterator[_Batch], points: list[HookPoint], n: int) -> dict[str, Harvested]:
    out = {p.name: np.zeros((n, p.width), dtype=np.float32) for p in points}
    for b in batches:
        for name, values in b.values.items():
            out[name][b.row_prompt] = values.cpu().numpy()
    rows = np.arange(n, dtype=np.int64)
    return {name: Harvested(acts, rows, None, None) for name, acts in out.items()}


def _token_rows(batches: Iterator[_Batch], points: list[HookPoint], tokenizer: Any) -> dict[str, Harvested]:
    parts: dict[str, list[np.ndarray]] = {p.name: [] for p in points}
    prompt_parts, index_parts, id_parts = [], [], []
    for b in batches:
        for name, values in b.values.items():
            parts[name].append(values.cpu().numpy())
        prompt_parts.append(b.row_prompt)
        index_parts.append(b.token_index)
        id_parts.append(b.token_ids)
    if not prompt_parts:
        empty = np.zeros(0, dtype=np.int64)
        return {p.name: Harvested(np.zeros((0, p.width), np.float32), empty, empty, []) for p in points}
    row_prompt, token_index, token_ids = (np.concatenate(x) for x in (prompt_parts, index_parts, id_parts))
    sort = np.lexsort((token_index, row_prompt))
    decode = TokenText(tokenizer)
    tokens = [decode(int(t)) for t in token_ids[sort]]
    return {
        name: Harvested(np.concatenate(chunks)[sort], row_prompt[sort], token_index[sort], tokens)
        for name, chunks in parts.items()
    }


# --- activation records ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PointFeatures:
    """How one hookpoint's activations become named features."""

    ids: list[str]
    """Feature id of each column."""
    layer: int
    """Layer of the hookpoint."""
    transform: Transform | None
    """Per-token map from activations to feature values (SAE encoder, direction projection), or None."""


def feature_ids(point: HookPoint) -> list[str]:
    """Ids of the basis features at a hookpoint (``interp_agent.core.ids``).

    ``L{layer}:D{dim}`` for residual dimensions (``blocks.L.hook_resid_post``),
    ``L{layer}:N{i}`` for MLP neurons (``blocks.L.mlp.hook_post``), and
    ``L{layer}:{resid_pre|attn_out|mlp_out}:D{dim}`` for the other d_model sites.
    """
    return basis_feature_ids(parse_hookpoint(point.name), point.width)


def _feature_plan(
    model: Any,
    points: list[HookPoint],
    features: str,
    sae: dict[str, Any] | None,
    directions: dict[str, Any] | None,
    device: torch.device,
) -> dict[str, PointFeatures]:
    if features == "dims":
        return {p.name: PointFeatures(feature_ids(p), p.layer, None) for p in points}
    if features == "sae":
        return _sae_plan(points, sae, device)
    if features == "direction":
        return _direction_plan(model, points, directions, device)
    raise ValidationError(f"unknown features {features!r}", hint="use 'dims', 'sae' or 'direction'")


def _sae_plan(points: list[HookPoint], sae: dict[str, Any] | None, device: torch.device) -> dict[str, PointFeatures]:
    if not sae:
        raise ValidationError("features='sae' needs sae={hookpoint: (W_enc, b_enc, b_dec, threshold, k)}")
    names = {p.name for p in points}
    extra = sorted(set(sae) - names)
    if extra:
        raise ValidationError(f"SAEs given for hookpoints not harvested: {extra}", hint=f"harvest {sorted(names)}")
    plan: dict[str, PointFeatures] = {}
    layers: dict[int, str] = {}
    for p in points:
        if p.name not in sae:
            raise ValidationError(f"no SAE given for hookpoint {p.name}", hint="give one SAE per hookpoint")
        if p.layer in layers:
            raise ValidationError(
                f"two SAEs at layer {p.layer} ({layers[p.layer]} and {p.name}) would share ids SAE:L{p.layer}:F…",
                hint="harvest SAE latents of one hookpoint per layer at a time",
            )
        layers[p.layer] = p.name
        W_enc, b_enc, b_dec, threshold, k = _sae_tuple(sae[p.name])
        W = torch.as_tensor(np.asarray(W_enc, dtype=np.float32), device=device)
        if W.ndim != 2 or W.shape[0] != p.width:
            raise ValidationError(
                f"SAE for {p.name}: W_enc has shape {tuple(W.shape)}, expected [d_in={p.width}, d_sae]",
                hint="SAE Lens layout: W_enc is [d_in, d_sae]",
            )
        params = SaeParams(
            W,
            torch.as_tensor(np.asarray(b_enc, dtype=np.float32), device=device),
            torch.as_tensor(np.asarray(b_dec, dtype=np.float32), device=device),
            None if threshold is None else torch.as_tensor(np.asarray(threshold, dtype=np.float32), device=device),
            None if k is None else int(k),
        )
        ids = [format_sae_latent(i, layer=p.layer) for i in range(W.shape[1])]
        plan[p.name] = PointFeatures(ids, p.layer, lambda x, params=params: encode_sae(x, params))
    return plan


def _direction_plan(
    model: Any, points: list[HookPoint], directions: dict[str, Any] | None, device: torch.device
) -> dict[str, PointFeatures]:
    if not directions:
        raise ValidationError("features='direction' needs directions={name: vector} or {name: (hookpoint, vector)}")
    by_point: dict[str, list[tuple[str, np.ndarray]]] = {p.name: [] for p in points}
    for name, value in directions.items():
        if isinstance(value, tuple):
            hook, vector = value
            hook = resolve_hookpoint(model, hook).name
        elif len(points) == 1:
            hook, vector = points[0].name, value
        else:
            raise ValidationError(
                f"direction {name!r}: with several hookpoints, give it as (hookpoint, vector)",
                hint=f"one of {sorted(by_point)}",
            )
        if hook not in by_point:
            raise ValidationError(f"direction {name!r} lives at {hook!r}, which is not harvested",
                                  hint="harvest it too")
        vector = np.asarray(vector, dtype=np.float64).reshape(-1)
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(norm) or norm == 0:
            raise ValidationError(f"direction {name!r} has norm {norm}; it must be a finite non-zero vector")
        fid = name if name.startswith("direction:") else f"direction:{name}"
        by_point[hook].append((fid, vector / norm))
    plan: dict[str, PointFeatures] = {}
    for p in points:
        entries = by_point[p.name]
        for fid, vector in entries:
            if len(vector) != p.width:
                raise ValidationError(f"{fid}: vector has {len(vector)} entries, {p.name} has width {p.width}")
        if not entries:
            plan[p.name] = PointFeatures([], p.layer, lambda x: x[..., :0])
            continue
        U_DF = torch.as_tensor(np.stack([v for _, v in entries], axis=1), dtype=torch.float32, device=device)
        plan[p.name] = PointFeatures([f for f, _ in entries], p.layer, lambda x, U=U_DF: x @ U)
    return plan


def harvest_records(
    loaded: LoadedModel,
    prompts: Sequence[ScoredPrompt],
    hookpoints: list[str],
    *,
    features: FeatureKind = "dims",
    sae: dict[str, SaeParams | tuple[Any, ...]] | None = None,
    directions: dict[str, np.ndarray | tuple[str, np.ndarray]] | None = None,
    top_n: int | None = None,
    batch_size: int = 16,
    max_length: int = 128,
    pooling: Pooling = "mean",
    exclude_first: bool = True,
    progress: Progress | None = None,
    feature_metadata: dict[str, FeatureMeta] | None = None,
) -> Iterator[ActivationRecord]:
    """Activation records of scored prompts: one per prompt (or per token with ``pooling='token'``).

    Args:
        loaded, hookpoints, batch_size, max_length, pooling, exclude_first, progress: as in ``harvest``.
        prompts: scored prompts; their id, text, criterion score and split go into each record.
        features: ``dims`` (``L{layer}:D{dim}`` residual dims, ``L{layer}:N{i}`` MLP neurons),
            ``sae`` (``SAE:L{layer}:F{i}``) or ``direction`` (``direction:{name}``, projection
            on the unit-normalised vector).
        sae: per hookpoint, ``(W_enc [d_in, d_sae], b_enc, b_dec, threshold|None, k|None)``.
        directions: ``{name: vector}`` (one hookpoint) or ``{name: (hookpoint, vector)}``.
        top_n: keep the top_n features by |activation| per row; zeros are always left out.
        feature_metadata: filled (when given) with the layer of every feature that can occur,
            before the first record is yielded; pass it on to ``write_records`` or
            ``write_parquet_dataset``.

    Yields:
        Records in prompt order (token rows by position), streamed in windows of
        ``8 * batch_size`` prompts.
    """
    check_options(batch_size, max_length, pooling, top_n)
    points = resolve_points(loaded.model, hookpoints)
    device = next(loaded.model.parameters()).device
    plan = _feature_plan(loaded.model, points, features, sae, directions, device)
    loop = make_loop(hook_reader(loaded.model, points), points, loaded.tokenizer, device, batch_size=batch_size,
                     pooling=pooling, exclude_first=exclude_first)
    return read_records(loop, loaded.tokenizer, prompts, model_name=loaded.name, plan=plan, top_n=top_n,
                        max_length=max_length, progress=progress, feature_metadata=feature_metadata)


def read_records(
    loop: Loop,
    tokenizer: Any,
    prompts: Sequence[ScoredPrompt],
    *,
    model_name: str,
    plan: dict[str, PointFeatures] | None = None,
    top_n: int | None = None,
    max_length: int = 128,
    progress: Progress | None = None,
    feature_metadata: dict[str, FeatureMeta] | None = None,
) -> Iterator[ActivationRecord]:
    """Activation records of ``prompts`` from the activations ``loop.reader`` reads (see ``harvest_records``).

    ``plan`` names each hookpoint's features (basis features, ``feature_ids``, when None). Options
    are checked and ``feature_metadata`` is filled at once; records stream as they are iterated.
    """
    check_options(loop.batch_size, max_length, loop.pooling, top_n)
    plan = plan or {p.name: PointFeatures(feature_ids(p), p.layer, None) for p in loop.points}
    all_ids = [fid for p in loop.points for fid in plan[p.name].ids]
    if len(set(all_ids)) != len(all_ids):
        raise ValidationError("two hookpoints give features the same id", hint="harvest them in separate runs")
    if feature_metadata is not None:
        for p in loop.points:
            for fid in plan[p.name].ids:
                feature_metadata.setdefault(fid, FeatureMeta(layer=p.layer))
    ids = tokenize(tokenizer, [p.text for p in prompts], max_length, loop.pooling, loop.exclude_first)
    transforms = {name: f.transform for name, f in plan.items() if f.transform is not None}
    return _record_windows(loop, ids, prompts, all_ids, transforms, model_name, TokenText(tokenizer), top_n, progress)


def _record_windows(
    loop: Loop, ids: list[list[int]], prompts: Sequence[ScoredPrompt], all_ids: list[str],
    transforms: dict[str, Transform], model_name: str, decode: TokenText, top_n: int | None, progress: Progress | None,
) -> Iterator[ActivationRecord]:
    """Records in windows of ``8 * batch_size`` prompts, each window sorted back into prompt order."""
    window = 8 * loop.batch_size
    n_batches = sum(-(-min(window, len(ids) - s) // loop.batch_size) for s in range(0, len(ids), window))
    done = 0
    for start in range(0, len(ids), window):
        order = by_length(ids, range(start, min(start + window, len(ids))))
        rows: list[tuple[int, int, ActivationRecord]] = []
        for b in forward_batches(loop, ids, order, transforms, progress=progress, batches_done=done,
                                 batches_total=n_batches):
            done += 1
            values_RF = torch.cat([b.values[p.name] for p in loop.points], dim=1)
            for r, (fids, acts) in enumerate(_sparse_rows(values_RF, all_ids, top_n)):
                prompt = prompts[int(b.row_prompt[r])]
                t = None if b.token_index is None else int(b.token_index[r])
                rows.append((int(b.row_prompt[r]), -1 if t is None else t, ActivationRecord(
                    prompt_id=prompt.prompt_id, criterion_score=prompt.criterion_score, feature_ids=fids,
                    activations=acts, text=prompt.text, model=model_name, token_index=t,
                    token=None if b.token_ids is None else decode(int(b.token_ids[r])), split=prompt.split,
                )))
        rows.sort(key=lambda row: (row[0], row[1]))
        for _, _, record in rows:
            yield record


def _sparse_rows(
    values_RF: torch.Tensor, ids: list[str], top_n: int | None
) -> Iterator[tuple[tuple[str, ...], tuple[float, ...]]]:
    """Per row, the non-zero features: in feature order, or the top_n by |activation| (largest first)."""
    if values_RF.shape[1] == 0:
        for _ in range(values_RF.shape[0]):
            yield (), ()
        return
    k = values_RF.shape[1] if top_n is None else min(top_n, values_RF.shape[1])
    if top_n is None:
        idx_RK = torch.arange(k, device=values_RF.device).expand(values_RF.shape[0], k)
        val_RK = values_RF
    else:
        idx_RK = values_RF.abs().topk(k, dim=1).indices
        val_RK = values_RF.gather(1, idx_RK)
    idx = idx_RK.cpu().numpy()
    val = val_RK.cpu().numpy().astype(np.float64)
    for i_row, v_row in zip(idx, val, strict=True):
        nz = v_row != 0
        yield tuple(ids[j] for j in i_row[nz]), tuple(v_row[nz].tolist())


def write_harvested_records(
    out: str | Path,
    loaded: LoadedModel,
    prompts: Sequence[ScoredPrompt],
    hookpoints: list[str],
    *,
    format: Literal["jsonl", "parquet"] = "parquet",
    **options: Any,
) -> Path:
    """Harvest records and write them: ``jsonl`` (a records file) or ``parquet`` (a dataset folder).

    ``options`` are the keyword arguments of ``harvest_records``. Writing is atomic.
    """
    meta: dict[str, FeatureMeta] = {}
    records = harvest_records(loaded, prompts, hookpoints, feature_metadata=meta, **options)
    if format == "jsonl":
        return write_records(out, records, meta)
    if format == "parquet":
        return write_parquet_dataset(out, records, meta)
    raise ValidationError(f"unknown format {format!r}", hint="use 'jsonl' or 'parquet'")
