"""What a corpus harvest keeps per feature: the evidence an explanation is written from and scored on.

An :class:`EvidenceSet` is one harvest of one hookpoint's features over a tokenized corpus
(:class:`Contexts`, fixed-length token windows). Every context belongs to one split, fixed
before any activation is seen: ``explain`` contexts are what an explainer is shown,
``held_out`` contexts are what its explanation is scored on. Nothing is scored on the
contexts that wrote it.

Per feature (:class:`FeatureEvidence`) it keeps the SAEDashboard/delphi layout:

- ``top`` examples: the contexts with the largest maximum activation, per-token activations;
- ``quantile`` examples: activating contexts drawn uniformly, then stratified by their maximum
  activation into quantile bins, per-token activations;
- ``random`` examples: contexts where the feature does not fire, drawn uniformly (no
  per-token activations: they are all at or below the firing threshold);
- firing density over tokens, the largest and mean firing activation, and a histogram of the
  per-context maximum activation of firing contexts;
- the output side: the tokens its decoder row (or direction) promotes and suppresses
  through the unembedding (the logit-lens view Neuronpedia shows).

A feature *fires* at a token when its activation exceeds ``active_threshold``: 0 for SAE
latents, and for dense features (residual dimensions, MLP neurons of gated or GELU MLPs,
directions) the 99th percentile of its token activations on the first contexts
harvested (``harvest.CALIBRATION_CONTEXTS``), recorded per feature. The first position of
every context is never counted: it carries massive activations in SmolLM2-like models.

On disk (:func:`write_evidence` / :func:`read_evidence`) a folder holds ``manifest.json``,
``contexts.parquet``, ``features.parquet`` and ``examples.parquet``, written to a temporary
folder and renamed into place.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from interp_agent.core.artifacts import schema_version
from interp_agent.core.errors import InputFileError, ValidationError, arg

EVIDENCE_SCHEMA = schema_version("explain-evidence")
Role = Literal["top", "quantile", "random"]
Split = Literal["explain", "held_out"]
FeatureKind = Literal["sae_latent", "neuron", "residual_dim", "direction"]
ROLES: tuple[Role, ...] = ("top", "quantile", "random")
SPLITS: tuple[Split, ...] = ("explain", "held_out")
_FILES = ("manifest.json", "contexts.parquet", "features.parquet", "examples.parquet")


@dataclass(frozen=True, slots=True)
class Contexts:
    """A corpus tokenized into fixed-length windows, each in one split."""

    token_ids: np.ndarray
    """int32 [n_contexts, context_length]."""
    tokens: list[list[str]]
    """Each context's tokens as text (decoded one by one), so a context renders without a tokenizer."""
    held_out: np.ndarray
    """bool [n_contexts]: True for held-out (scoring) contexts, False for explain contexts."""
    passage: np.ndarray
    """int32 [n_contexts]: index of the corpus passage each window was cut from."""

    def __len__(self) -> int:
        return int(self.token_ids.shape[0])

    @property
    def length(self) -> int:
        """Tokens per context."""
        return int(self.token_ids.shape[1])

    def text(self, index: int) -> str:
        """Context ``index`` as one string (its tokens joined)."""
        return "".join(self.tokens[index])

    def split_of(self, index: int) -> Split:
        """``held_out`` or ``explain``."""
        return "held_out" if bool(self.held_out[index]) else "explain"


@dataclass(frozen=True, slots=True)
class Example:
    """One context chosen for a feature."""

    context: int
    """Index into the evidence set's :class:`Contexts`."""
    role: Role
    """``top``, ``quantile`` or ``random`` (not firing)."""
    split: Split
    """The context's split (copied from the contexts, for filtering)."""
    max_activation: float
    """The feature's largest activation in the context (first position excluded)."""
    acts: np.ndarray | None = None
    """float32 [context_length]: the activation at each token where the feature fires, 0 elsewhere (and at
    position 0); None for ``random``."""
    quantile: int | None = None
    """Quantile bin (0 = lowest) of a ``quantile`` example."""


@dataclass(frozen=True, slots=True)
class FeatureEvidence:
    """Everything a harvest keeps about one feature."""

    feature_id: str
    """Our id (``SAE:L15:F12``, ``L15:D3``, ``L15:N7``, ``direction:…``)."""
    kind: FeatureKind
    """sae_latent, neuron, residual_dim or direction."""
    density: float
    """Fraction of counted tokens (every position but the first) where it fires."""
    max_activation: float
    """Largest activation seen."""
    mean_activation: float
    """Mean activation over the tokens where it fires (0 when it never fires)."""
    active_threshold: float
    """An activation above this counts as firing."""
    n_active_contexts: int
    """Contexts with at least one firing token."""
    hist_edges: np.ndarray
    """float64 [n_bins + 1]: edges of the histogram of per-context maximum activations."""
    hist_counts: np.ndarray
    """int64 [n_bins]: firing contexts per bin."""
    examples: tuple[Example, ...]
    """Chosen contexts, top first, then quantile (low to high), then random."""
    promoted: tuple[tuple[str, float], ...] = ()
    """Tokens its output direction raises most through the unembedding, with the logit change per unit."""
    suppressed: tuple[tuple[str, float], ...] = ()
    """Tokens it lowers most."""

    def select(self, role: Role | Iterable[Role] | None = None, split: Split | None = None) -> list[Example]:
        """Examples of ``role`` (one or several) in ``split``; None means any."""
        roles = {role} if isinstance(role, str) else (set(role) if role is not None else set(ROLES))
        return [e for e in self.examples if e.role in roles and (split is None or e.split == split)]

    @property
    def activating(self) -> list[Example]:
        """Top and quantile examples (both splits)."""
        return self.select(("top", "quantile"))


@dataclass(frozen=True, slots=True)
class EvidenceManifest:
    """Where an evidence set came from and how it was cut."""

    model: str
    hookpoint: str
    feature_source: dict[str, Any]
    """``{"kind": "sae", "path": ..., "sha256": ..., "d_sae": ...}``, ``{"kind": "dims"}``, …"""
    corpus: dict[str, Any]
    """``{"name", "sha256", "n_passages", "synthetic", "note"}``."""
    context_length: int
    n_contexts: int
    held_out_fraction: float
    seed: int
    n_tokens: int
    """Tokens counted (every position but the first of each context)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Harvest settings: n_top, n_quantile_bins, per_bin, n_random, batch size."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """Tool version, creation time, timings."""
    schema_version: str = EVIDENCE_SCHEMA


@dataclass(frozen=True, slots=True)
class EvidenceSet:
    """One harvest: its manifest, the contexts and every feature's evidence."""

    manifest: EvidenceManifest
    contexts: Contexts
    features: dict[str, FeatureEvidence]

    def feature(self, feature_id: str) -> FeatureEvidence:
        """The evidence of ``feature_id``; a ValidationError names close ids when it is absent."""
        try:
            return self.features[feature_id]
        except KeyError:
            raise ValidationError(unknown_feature_message(feature_id, self.features, self.manifest.hookpoint),
                                  hint=unknown_feature_hint(feature_id, self.features)) from None


def unknown_feature_message(feature_id: str, known: Mapping[str, Any], where: str) -> str:
    """The message for a feature id an evidence set does not have."""
    return f"{arg('feature_id', feature_id)} is not in the evidence harvested at {where} ({len(known)} features)"


def unknown_feature_hint(feature_id: str, known: Mapping[str, Any]) -> str:
    """Close ids, or the first few, to put in a hint."""
    close = difflib.get_close_matches(feature_id, list(known), n=3, cutoff=0.6)
    shown = close or list(known)[:5]
    return f"use one of the harvested ids, e.g. {', '.join(shown)}" if shown else "harvest the feature first"


# --- disk -----------------------------------------------------------------------------------


def write_evidence(folder: str | Path, evidence: EvidenceSet) -> Path:
    """Write ``evidence`` to ``folder`` atomically (a temporary sibling folder, then a rename)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        (tmp / "manifest.json").write_text(json.dumps(asdict(evidence.manifest), indent=1, default=_json_default))
        pq.write_table(_contexts_table(evidence.contexts), tmp / "contexts.parquet")
        pq.write_table(_features_table(evidence.features.values()), tmp / "features.parquet")
        pq.write_table(_examples_table(evidence.features.values()), tmp / "examples.parquet")
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old{os.getpid()}")
            folder.rename(old)
            tmp.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _contexts_table(contexts: Contexts) -> pa.Table:
    return pa.table({
        "context": pa.array(np.arange(len(contexts), dtype=np.int32)),
        "passage": pa.array(contexts.passage.astype(np.int32)),
        "held_out": pa.array(contexts.held_out.astype(bool)),
        "token_ids": pa.array([row.tolist() for row in contexts.token_ids.astype(np.int32)],
                              type=pa.list_(pa.int32())),
        "tokens": pa.array(contexts.tokens, type=pa.list_(pa.string())),
    })


def _features_table(features: Iterable[FeatureEvidence]) -> pa.Table:
    rows = list(features)
    return pa.table({
        "feature_id": [f.feature_id for f in rows],
        "kind": [f.kind for f in rows],
        "density": pa.array([f.density for f in rows], type=pa.float64()),
        "max_activation": pa.array([f.max_activation for f in rows], type=pa.float64()),
        "mean_activation": pa.array([f.mean_activation for f in rows], type=pa.float64()),
        "active_threshold": pa.array([f.active_threshold for f in rows], type=pa.float64()),
        "n_active_contexts": pa.array([f.n_active_contexts for f in rows], type=pa.int64()),
        "hist_edges": pa.array([f.hist_edges.tolist() for f in rows], type=pa.list_(pa.float64())),
        "hist_counts": pa.array([f.hist_counts.tolist() for f in rows], type=pa.list_(pa.int64())),
        "promoted_tokens": pa.array([[t for t, _ in f.promoted] for f in rows], type=pa.list_(pa.string())),
        "promoted_values": pa.array([[v for _, v in f.promoted] for f in rows], type=pa.list_(pa.float64())),
        "suppressed_tokens": pa.array([[t for t, _ in f.suppressed] for f in rows], type=pa.list_(pa.string())),
        "suppressed_values": pa.array([[v for _, v in f.suppressed] for f in rows], type=pa.list_(pa.float64())),
    })


def _examples_table(features: Iterable[FeatureEvidence]) -> pa.Table:
    cols: dict[str, list[Any]] = {k: [] for k in
                                  ("feature_id", "context", "role", "split", "max_activation", "quantile", "acts")}
    for f in features:
        for e in f.examples:
            cols["feature_id"].append(f.feature_id)
            cols["context"].append(e.context)
            cols["role"].append(e.role)
            cols["split"].append(e.split)
            cols["max_activation"].append(float(e.max_activation))
            cols["quantile"].append(e.quantile)
            cols["acts"].append(None if e.acts is None else e.acts.astype(np.float32).tolist())
    return pa.table({
        "feature_id": pa.array(cols["feature_id"], type=pa.string()),
        "context": pa.array(cols["context"], type=pa.int32()),
        "role": pa.array(cols["role"], type=pa.string()),
        "split": pa.array(cols["split"], type=pa.string()),
        "max_activation": pa.array(cols["max_activation"], type=pa.float64()),
        "quantile": pa.array(cols["quantile"], type=pa.int32()),
        "acts": pa.array(cols["acts"], type=pa.list_(pa.float32())),
    })


def is_evidence_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder :func:`write_evidence` wrote."""
    path = Path(path)
    return path.is_dir() and all((path / name).is_file() for name in _FILES)


def read_evidence(folder: str | Path, *, feature_ids: Iterable[str] | None = None) -> EvidenceSet:
    """Read an evidence folder (only ``feature_ids``, when given).

    Raises:
        InputFileError: the folder is missing a file, or a file does not parse or has the wrong schema.
    """
    folder = Path(folder)
    for name in _FILES:
        if not (folder / name).is_file():
            raise InputFileError(folder / name, "missing: this is not an evidence folder written by explain",
                                 hint="point at the evidence/ folder of an explain run, or run explain to make one")
    manifest = _read_manifest(folder / "manifest.json")
    wanted = None if feature_ids is None else set(feature_ids)
    try:
        contexts = _read_contexts(pq.read_table(folder / "contexts.parquet"))
        features = _read_features(pq.read_table(folder / "features.parquet"), wanted)
        examples = _read_examples(pq.read_table(folder / "examples.parquet"), wanted, contexts)
    except (pa.ArrowException, OSError, KeyError) as exc:
        raise InputFileError(folder, f"could not read the evidence tables: {exc}",
                             hint="run explain again to rewrite the evidence folder") from exc
    merged = {fid: _with_examples(f, examples.get(fid, ())) for fid, f in features.items()}
    return EvidenceSet(manifest, contexts, merged)


def _read_manifest(path: Path) -> EvidenceManifest:
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputFileError(path, f"not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("schema_version") != EVIDENCE_SCHEMA:
        got = raw.get("schema_version") if isinstance(raw, dict) else type(raw).__name__
        raise InputFileError(path, f"schema_version is {got!r}, expected {EVIDENCE_SCHEMA!r}",
                             hint="run explain with this version of interp-agent to rewrite it")
    known = {f for f in EvidenceManifest.__dataclass_fields__}
    return EvidenceManifest(**{k: v for k, v in raw.items() if k in known})


def _read_contexts(table: pa.Table) -> Contexts:
    data = table.to_pydict()
    order = np.argsort(np.asarray(data["context"], dtype=np.int64))
    ids = np.asarray(data["token_ids"], dtype=np.int32)[order] if data["token_ids"] else np.zeros((0, 0), np.int32)
    return Contexts(ids, [data["tokens"][i] for i in order], np.asarray(data["held_out"], dtype=bool)[order],
                    np.asarray(data["passage"], dtype=np.int32)[order])


def _read_features(table: pa.Table, wanted: set[str] | None) -> dict[str, FeatureEvidence]:
    out: dict[str, FeatureEvidence] = {}
    for row in table.to_pylist():
        if wanted is not None and row["feature_id"] not in wanted:
            continue
        out[row["feature_id"]] = FeatureEvidence(
            row["feature_id"], row["kind"], row["density"], row["max_activation"], row["mean_activation"],
            row["active_threshold"], row["n_active_contexts"], np.asarray(row["hist_edges"], dtype=np.float64),
            np.asarray(row["hist_counts"], dtype=np.int64), (),
            tuple(zip(row["promoted_tokens"], row["promoted_values"], strict=True)),
            tuple(zip(row["suppressed_tokens"], row["suppressed_values"], strict=True)))
    return out


def _read_examples(table: pa.Table, wanted: set[str] | None, contexts: Contexts) -> dict[str, list[Example]]:
    out: dict[str, list[Example]] = {}
    for row in table.to_pylist():
        if wanted is not None and row["feature_id"] not in wanted:
            continue
        acts = None if row["acts"] is None else np.asarray(row["acts"], dtype=np.float32)
        out.setdefault(row["feature_id"], []).append(
            Example(row["context"], row["role"], row["split"], row["max_activation"], acts, row["quantile"]))
    return out


def _with_examples(feature: FeatureEvidence, examples: Iterable[Example]) -> FeatureEvidence:
    from dataclasses import replace

    return replace(feature, examples=tuple(examples))
