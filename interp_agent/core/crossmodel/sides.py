"""The two sides of an activation match: what each side measures, and its activations on shared probes.

A :class:`Side` names a model, a hookpoint and a kind of feature there: residual ``dims``,
MLP ``neurons`` (``blocks.L.mlp.hook_post``), the latents of an ``sae`` (an SAE Lens or
sparsify folder) or projections on named ``direction`` vectors. :func:`harvest_sides`
turns sides into :class:`FeatureActivations`, a dense float32 matrix over rows that are the
same on every side:

- ``pooling="token"``: one row per real token (the first position left out, as
  ``core.models.harvest`` does), rows ordered by prompt then position. Rows line up across
  sides only when both models tokenize the probes identically, which is checked.
- ``pooling="mean"`` / ``"max"``: one row per prompt, pooled over its tokens *after* the
  features are computed per token (so ``max`` of an SAE latent is its largest value on the
  prompt). This works across tokenizers.

Sides that name the same model share one loaded model and one harvest pass, which
captures every hookpoint any of them reads (two layers, two SAEs of one layer, dims and
neurons of one block: one forward pass per batch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from interp_agent.core.errors import InterpAgentError, ValidationError
from interp_agent.core.ids import basis_feature_ids, format_direction, format_sae_latent, match_hookpoint

FeatureKind = Literal["dims", "neurons", "sae", "direction"]
FEATURE_KINDS: tuple[str, ...] = ("dims", "neurons", "sae", "direction")
RowPooling = Literal["token", "mean", "max"]
ROW_POOLINGS: tuple[str, ...] = ("token", "mean", "max")
SIDE_KEYS: tuple[str, ...] = ("model", "hookpoint", "features", "sae", "directions", "feature_ids", "label")
_ENCODE_ROWS = 4096  # token rows encoded per SAE call: bounds the dense [rows, d_sae] temporary
MASSIVE_NORM_FACTOR = 10.0
"""Token rows whose activation norm exceeds this multiple of the median row norm are dropped (see ``massive_rows``)."""


@dataclass(frozen=True, slots=True, eq=False)
class Side:
    """One side of an activation match: a model, a hookpoint and the features read there."""

    model: str
    """``smollm2-135m`` (embedded), a model folder or a hub id."""
    hookpoint: str
    """TransformerLens hookpoint, e.g. ``blocks.15.hook_resid_post``."""
    features: FeatureKind = "dims"
    """``dims``, ``neurons`` (needs ``blocks.L.mlp.hook_post``), ``sae`` or ``direction``."""
    sae: str | None = None
    """SAE Lens or sparsify folder (``features='sae'`` only)."""
    directions: Mapping[str, Sequence[float]] | None = None
    """Name → vector of the hookpoint's width (``features='direction'`` only); unit-normalised."""
    feature_ids: tuple[str, ...] | None = None
    """Keep only these features (ids as this side names them); None keeps all."""
    label: str = ""
    """How reports name this side; empty means ``model@hookpoint:features``."""

    def __post_init__(self) -> None:
        if self.features not in FEATURE_KINDS:
            raise ValidationError(f"Side.features = {self.features!r}", hint=f"use one of {list(FEATURE_KINDS)}")
        if (self.features == "sae") != (self.sae is not None):
            raise ValidationError(f"Side.sae = {self.sae!r} with features={self.features!r}",
                                  hint="give sae (an SAE folder) exactly when features='sae'")
        if (self.features == "direction") != bool(self.directions):
            raise ValidationError(f"Side.directions given={self.directions is not None} with "
                                  f"features={self.features!r}",
                                  hint="give directions ({name: vector}) exactly when features='direction'")

    @property
    def name(self) -> str:
        """The label, or ``model@hookpoint:features``."""
        return self.label or f"{self.model}@{self.hookpoint}:{self.features}"

    def describe(self) -> dict[str, Any]:
        """JSON-ready spec of this side (direction vectors summarised by name and width)."""
        out = asdict(self)
        out["label"] = self.name
        if self.directions:
            out["directions"] = {k: {"width": len(v)} for k, v in self.directions.items()}
        if self.feature_ids is not None:
            out["feature_ids"] = list(self.feature_ids)
        return out


def side_from_dict(d: Mapping[str, Any], which: str = "left") -> Side:
    """Build and check a :class:`Side` from a dict (a JSON spec, CLI options).

    Raises:
        ValidationError: unknown keys, a missing model or hookpoint, a bad hookpoint or feature
            kind; the message names ``which`` side.
    """
    if not isinstance(d, Mapping):
        raise ValidationError(f"{which} side must be a dict, got {type(d).__name__}", hint=f"keys: {list(SIDE_KEYS)}")
    unknown = sorted(set(d) - set(SIDE_KEYS))
    if unknown:
        raise ValidationError(f"{which} side has unknown key(s) {unknown}", hint=f"known keys: {list(SIDE_KEYS)}")
    for key in ("model", "hookpoint"):
        if not isinstance(d.get(key), str) or not d[key].strip():
            raise ValidationError(f"{which} side needs a string {key!r}, got {d.get(key)!r}",
                                  hint="e.g. {'model': 'smollm2-135m', 'hookpoint': 'blocks.15.hook_resid_post'}")
    ids = d.get("feature_ids")
    if ids is not None and (isinstance(ids, str) or not all(isinstance(f, str) for f in ids)):
        raise ValidationError(f"{which} side: feature_ids must be a list of strings, got {ids!r}")
    try:
        side = Side(model=d["model"].strip(), hookpoint=d["hookpoint"].strip(), features=d.get("features", "dims"),
                    sae=d.get("sae"), directions=d.get("directions"),
                    feature_ids=None if ids is None else tuple(ids), label=d.get("label") or "")
    except InterpAgentError as exc:
        raise ValidationError(f"{which} side: {exc.message}", hint=exc.hint) from exc
    check_side(side, which)
    return side


def check_side(side: Side, which: str) -> None:
    """Check what can be checked without loading the model: the hookpoint form and its site.

    Raises:
        ValidationError: naming ``which`` side.
    """
    point = match_hookpoint(side.hookpoint)
    if point is None:
        raise ValidationError(f"{which} side: unknown hookpoint {side.hookpoint!r}",
                              hint="e.g. blocks.15.hook_resid_post or blocks.15.mlp.hook_post")
    if side.features == "neurons" and point.site != "mlp.hook_post":
        raise ValidationError(f"{which} side: features='neurons' reads MLP neurons, but {side.hookpoint!r} is "
                              f"not an MLP hidden site",
                              hint=f"use hookpoint blocks.{point.layer}.mlp.hook_post, or features='dims'")


@dataclass(frozen=True, slots=True, eq=False)
class FeatureActivations:
    """Activations of one side's features on the probe rows."""

    feature_ids: tuple[str, ...]
    """Id of each column."""
    acts_RF: np.ndarray
    """float32 [n_rows, n_features]."""
    row_prompt: np.ndarray
    """int64 [n_rows]: probe prompt of each row (rows sorted by prompt, then position)."""
    token_index: np.ndarray | None
    """int64 [n_rows]: token position of each row (token pooling), else None."""
    tokens: tuple[str, ...] | None
    """Token text of each row (token pooling), else None."""
    pooling: RowPooling
    """``token``, ``mean`` or ``max``."""
    side: dict[str, Any]
    """What this side is (``Side.describe()``, or a description of in-memory features)."""
    synthetic: bool = False
    """True when the activations do not come from a real model (tests, toy data)."""
    decoder_FD: np.ndarray | None = None
    """Decoder direction of each feature [n_features, d_in] (SAE latents), when known."""

    def __post_init__(self) -> None:
        n, f = self.acts_RF.shape if self.acts_RF.ndim == 2 else (-1, -1)
        if f != len(self.feature_ids) or len(self.row_prompt) != n:
            raise ValidationError(f"FeatureActivations of {self.side.get('label')!r}: acts_RF has shape "
                                  f"{self.acts_RF.shape}, with {len(self.feature_ids)} feature ids and "
                                  f"{len(self.row_prompt)} row prompts")
        if self.pooling not in ROW_POOLINGS:
            raise ValidationError(f"FeatureActivations.pooling = {self.pooling!r}", hint=f"one of {ROW_POOLINGS}")

    @property
    def label(self) -> str:
        """The side's label."""
        return str(self.side.get("label", "?"))

    def select(self, keep: np.ndarray) -> FeatureActivations:
        """The same rows with only the columns ``keep`` (indices or a boolean mask)."""
        idx = np.flatnonzero(keep) if keep.dtype == bool else np.asarray(keep)
        dec = None if self.decoder_FD is None else self.decoder_FD[idx]
        return FeatureActivations(tuple(self.feature_ids[i] for i in idx), self.acts_RF[:, idx], self.row_prompt,
                                  self.token_index, self.tokens, self.pooling, self.side, self.synthetic, dec)


# --- features from token activations ---------------------------------------------------------------------------


def sae_features(acts_ND: np.ndarray, weights: Any, *, layer: int) -> tuple[list[str], np.ndarray]:
    """SAE latent ids and activations [N, d_sae] of token activations, encoded in chunks of rows.

    ``weights`` is a ``core.sae.lens.SaeWeights``.
    """
    import torch

    from interp_agent.core.models.harvest import SaeParams, encode_sae

    params = SaeParams(*(None if v is None else torch.as_tensor(np.asarray(v, dtype=np.float32))
                         for v in (weights.W_enc, weights.b_enc, weights.b_dec, weights.threshold)), k=weights.k)
    d_sae = weights.W_enc.shape[1]
    out = np.empty((len(acts_ND), d_sae), dtype=np.float32)
    with torch.no_grad():
        for s in range(0, len(acts_ND), _ENCODE_ROWS):
            out[s:s + _ENCODE_ROWS] = encode_sae(torch.from_numpy(acts_ND[s:s + _ENCODE_ROWS]), params).numpy()
    return [format_sae_latent(i, layer=layer) for i in range(d_sae)], out


def _side_features(side: Side, acts_ND: np.ndarray, which: str) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Feature ids, values [N, F] and decoder rows (SAE only) of one side, from its token activations."""
    point = match_hookpoint(side.hookpoint)
    assert point is not None  # check_side ran
    width = acts_ND.shape[1]
    if side.features in ("dims", "neurons"):
        return basis_feature_ids(point, width), acts_ND, None
    if side.features == "sae":
        from interp_agent.core.sae.lens import load_sae

        assert side.sae is not None
        try:
            weights = load_sae(side.sae, hookpoint=side.hookpoint)
        except InterpAgentError as exc:
            raise ValidationError(f"{which} side: {exc.message}", hint=exc.hint) from exc
        if weights.W_enc.shape[0] != width:
            raise ValidationError(f"{which} side: the SAE {side.sae} reads d_in={weights.W_enc.shape[0]}, but "
                                  f"{side.hookpoint} of {side.model} has width {width}",
                                  hint="give an SAE trained on this model and hookpoint")
        ids, values = sae_features(acts_ND, weights, layer=point.layer)
        return ids, values, np.asarray(weights.W_dec, dtype=np.float32)
    assert side.directions is not None
    ids, cols = [], []
    for name, vector in side.directions.items():
        v = np.asarray(vector, dtype=np.float64).reshape(-1)
        norm = float(np.linalg.norm(v)) if len(v) == width else 0.0
        if len(v) != width or not np.isfinite(norm) or norm == 0:
            raise ValidationError(f"{which} side: direction {name!r} has {len(v)} entries (norm {norm:.3g}); "
                                  f"{side.hookpoint} of {side.model} has width {width}",
                                  hint=f"give a finite non-zero vector of {width} numbers")
        ids.append(format_direction(name, point))
        cols.append(v / norm)
    return ids, (acts_ND @ np.stack(cols, axis=1).astype(np.float32)).astype(np.float32), None


def _subset(ids: list[str], side: Side, which: str) -> np.ndarray | None:
    """Column indices of ``side.feature_ids`` (None: all)."""
    if side.feature_ids is None:
        return None
    where = {f: i for i, f in enumerate(ids)}
    missing = [f for f in side.feature_ids if f not in where]
    if missing:
        raise ValidationError(f"{which} side ({side.name}) has no feature(s) {missing[:5]}"
                              + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""),
                              hint=f"its features are named like {ids[0]} … {ids[-1]}")
    return np.array([where[f] for f in side.feature_ids], dtype=np.int64)


def pool_rows(fa: FeatureActivations, pooling: RowPooling) -> FeatureActivations:
    """Token rows pooled into one row per prompt (``mean`` or ``max``); ``token`` returns ``fa``."""
    if pooling == "token":
        return fa
    if fa.pooling != "token":
        raise ValidationError(f"{fa.label}: rows are already pooled ({fa.pooling}); pool token rows only")
    prompts, starts, counts = np.unique(fa.row_prompt, return_index=True, return_counts=True)
    if pooling == "mean":
        acts = np.add.reduceat(fa.acts_RF.astype(np.float64), starts, axis=0) / counts[:, None]
    else:
        acts = np.maximum.reduceat(fa.acts_RF, starts, axis=0)
    return FeatureActivations(fa.feature_ids, acts.astype(np.float32), prompts.astype(np.int64), None, None,
                              pooling, fa.side, fa.synthetic, fa.decoder_FD)


def massive_rows(acts_ND: np.ndarray, factor: float = MASSIVE_NORM_FACTOR) -> np.ndarray:
    """Boolean mask of rows with a massive activation: norm above ``factor`` × the median row norm.

    Beyond the first position (which harvesting already leaves out), SmolLM2 puts an attention-sink
    activation of norm ~20,000 (median ~170) on an occasional early token: measured, one token in
    3,715 of the built-in corpus at layer 15. A single such row carries almost all the variance, so
    every Pearson correlation and FVU over rows would be about that one token. The rule is fixed in
    advance and looks at norms only, never at how features match.
    """
    norms = np.linalg.norm(acts_ND, axis=1)
    return norms > factor * float(np.median(norms)) if len(norms) else np.zeros(0, dtype=bool)


def take_rows(harvested: Any, keep: np.ndarray) -> Any:
    """A ``Harvested`` with only the rows ``keep`` (boolean mask)."""
    from interp_agent.core.models.harvest import Harvested

    tokens = None if harvested.tokens is None else [t for t, k in zip(harvested.tokens, keep, strict=True) if k]
    index = None if harvested.token_index is None else harvested.token_index[keep]
    return Harvested(harvested.acts[keep], harvested.row_prompt[keep], index, tokens)


def side_activations(side: Side, harvested: Any, which: str, *, synthetic: bool = False) -> FeatureActivations:
    """One side's FeatureActivations (token rows) from the ``core.models.harvest.Harvested`` of its hookpoint."""
    ids, values, decoder = _side_features(side, harvested.acts, which)
    keep = _subset(ids, side, which)
    if keep is not None:
        ids, values = [ids[i] for i in keep], values[:, keep]
        decoder = None if decoder is None else decoder[keep]
    return FeatureActivations(tuple(ids), np.ascontiguousarray(values, dtype=np.float32), harvested.row_prompt,
                              harvested.token_index, tuple(harvested.tokens), "token", side.describe(), synthetic,
                              decoder)
