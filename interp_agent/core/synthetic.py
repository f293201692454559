"""Synthetic activation records with planted features, for the toy backend, tests, demos and benchmarks.

Nothing here measures a model. Every record carries ``"synthetic": true`` and reports
built from it are labelled synthetic throughout.

A planted set has a criterion score per prompt (binary) and these feature families:

- ``true``: fire in proportion to the criterion (promoting) or against it (suppressing),
  with prompt-level variation shared across models, so the same concept in two toy
  models correlates beyond the label;
- ``always_on``: active on every row with high variance, unrelated to the criterion;
- ``rare``: fire strongly on a handful of criterion-positive prompts only;
- ``confounded``: track a confounder (think: prompt length) that co-occurs with the criterion;
- ``noise``: sparse random firing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from interp_agent.core.errors import ValidationError
from interp_agent.core.formats.interventions import InterventionRecord
from interp_agent.core.formats.records import ActivationRecord, FeatureMeta
from interp_agent.core.ids import format_dictionary_feature


@dataclass(frozen=True, slots=True)
class PlantedConfig:
    """Shape of a synthetic records set."""

    n_prompts: int = 400
    """Number of prompts (one prompt-level row each)."""
    n_true: int = 5
    """Features that truly track the criterion (the last one suppresses it)."""
    n_always_on: int = 100
    """Always-on, high-variance distractors."""
    n_rare: int = 100
    """Distractors firing on 2-4 positive prompts each."""
    n_confounded: int = 50
    """Distractors tied to a confounder correlated with the criterion."""
    n_noise: int = 250
    """Sparse random distractors."""
    positive_rate: float = 0.5
    """Share of prompts where the criterion holds."""
    signal: float = 1.0
    """Strength of the true features' dependence on the criterion."""
    d_decoder: int = 16
    """Length of the synthetic decoder signatures."""
    seed: int = 0
    """Seed of everything shared across models (scores, prompt-level latents)."""

    def __post_init__(self) -> None:
        if self.n_prompts < 10:
            raise ValidationError(f"n_prompts must be at least 10, got {self.n_prompts}")
        if not 0.05 <= self.positive_rate <= 0.95:
            raise ValidationError(f"positive_rate must be in [0.05, 0.95], got {self.positive_rate}")


@dataclass(slots=True)
class PlantedSet:
    """Records plus the ground truth of which features are which."""

    records: list[ActivationRecord]
    feature_metadata: dict[str, FeatureMeta]
    families: dict[str, list[str]] = field(default_factory=dict)
    """Feature ids per family (true, always_on, rare, confounded, noise)."""
    concept_of: dict[str, int] = field(default_factory=dict)
    """For true features: which planted concept (shared across models) they express."""


def _model_seed(model: str, seed: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{model}|{seed}".encode(), digest_size=4).digest(), "little")


@dataclass(frozen=True, slots=True)
class _SharedPrompts:
    """The prompt-level draws every model of a planted set shares (they depend on ``config.seed`` only)."""

    y: np.ndarray
    """Criterion score per prompt, 0 or 1 [n_prompts]."""
    latent: np.ndarray
    """Prompt-level strength of each planted concept [n_prompts, n_true]."""
    confounder: np.ndarray
    """The confounder (think: prompt length), 0 or 1, co-occurring with the criterion [n_prompts]."""

    @classmethod
    def draw(cls, cfg: PlantedConfig) -> _SharedPrompts:
        """Draw scores, latents and the confounder, in that order, from a generator seeded with ``cfg.seed``."""
        shared = np.random.default_rng(cfg.seed)
        n = cfg.n_prompts
        y = (shared.random(n) < cfg.positive_rate).astype(np.float64)
        latent = shared.gamma(4.0, 0.25, size=(n, cfg.n_true))  # prompt-level strength of each concept
        confounder = np.where(y > 0, shared.random(n) < 0.7, shared.random(n) < 0.3).astype(np.float64)
        return cls(y=y, latent=latent, confounder=confounder)


class _FeatureTable:
    """Planted feature columns under shuffled ids, with each feature's family, metadata and (true ones) concept."""

    def __init__(self, rng: np.random.Generator, total: int, decoder_dim: int) -> None:
        self.rng, self.decoder_dim = rng, decoder_dim
        self.slots = rng.permutation(total)  # feature numbers are shuffled so ids reveal nothing
        self.layer_of = rng.integers(2, 24, size=total)
        self.columns: dict[str, np.ndarray] = {}
        self.families: dict[str, list[str]] = {k: [] for k in ("true", "always_on", "rare", "confounded", "noise")}
        self.meta: dict[str, FeatureMeta] = {}
        self.concept_of: dict[str, int] = {}

    def add(self, family: str, values: np.ndarray, label: str) -> str:
        """Add the next feature's column (drawing its decoder signature); returns its id."""
        k = len(self.columns)
        fid = format_dictionary_feature(int(self.layer_of[k]), int(self.slots[k]))
        self.columns[fid] = values
        self.families[family].append(fid)
        self.meta[fid] = FeatureMeta(
            label=label, layer=int(self.layer_of[k]),
            decoder_signature=tuple(np.round(self.rng.normal(size=self.decoder_dim), 4).tolist())
        )
        return fid


def planted_records(
    model: str = "toy/model-a", criterion: str = "synthetic criterion", config: PlantedConfig | None = None
) -> PlantedSet:
    """Generate a deterministic planted records set for ``model``.

    Scores and prompt-level latents depend only on ``config.seed``; feature ids, layers,
    noise and decoder signatures depend on the model name too, so two toy models share
    concepts under different feature ids.
    """
    cfg = config or PlantedConfig()
    prompts = _SharedPrompts.draw(cfg)
    rng = np.random.default_rng(_model_seed(model, cfg.seed))
    decoder_dim = cfg.d_decoder + (len(model) % 3) * 4  # toy models differ in width
    total = cfg.n_true + cfg.n_always_on + cfg.n_rare + cfg.n_confounded + cfg.n_noise
    table = _FeatureTable(rng, total, decoder_dim)
    _plant_true(table, cfg, prompts, criterion)
    _plant_distractors(table, cfg, prompts)
    records = _planted_rows(table.columns, prompts.y, model)
    return PlantedSet(records=records, feature_metadata=table.meta, families=table.families,
                      concept_of=table.concept_of)


def _plant_true(table: _FeatureTable, cfg: PlantedConfig, prompts: _SharedPrompts, criterion: str) -> None:
    """Add the true features: each tracks one concept, promoting the criterion (the last one suppresses it)."""
    n, y = cfg.n_prompts, prompts.y
    for j in range(cfg.n_true):
        promotes = j < cfg.n_true - 1 or cfg.n_true == 1
        target = y if promotes else 1.0 - y
        values = np.maximum(0.0, cfg.signal * target * prompts.latent[:, j] * 2.0 + table.rng.normal(0, 0.25, n))
        fid = table.add("true", values, f"{'marks' if promotes else 'absence of'} {criterion} (concept {j})")
        table.concept_of[fid] = j


def _plant_distractors(table: _FeatureTable, cfg: PlantedConfig, prompts: _SharedPrompts) -> None:
    """Add the distractor families in order: always-on, rare, confounder-tied, sparse noise."""
    n, rng = cfg.n_prompts, table.rng
    for j in range(cfg.n_always_on):
        table.add("always_on", rng.normal(5.0, 3.0, n) + rng.normal(0, 0.1), f"always-on distractor {j}")
    positives = np.nonzero(prompts.y > 0)[0]
    for j in range(cfg.n_rare):
        values = np.zeros(n)
        hits = rng.choice(positives, size=int(rng.integers(2, 5)), replace=False)
        values[hits] = rng.uniform(5.0, 15.0, size=len(hits))
        table.add("rare", values, f"rare distractor {j}")
    for j in range(cfg.n_confounded):
        values = np.maximum(0.0, prompts.confounder * rng.uniform(1.0, 3.0) + rng.normal(0, 0.6, n))
        table.add("confounded", values, f"confounder-tied distractor {j} (tracks prompt length)")
    for j in range(cfg.n_noise):
        fires = rng.random(n) < rng.uniform(0.02, 0.2)
        table.add("noise", np.where(fires, rng.exponential(1.0, n), 0.0), f"sparse noise distractor {j}")


def _planted_rows(columns: dict[str, np.ndarray], y: np.ndarray, model: str) -> list[ActivationRecord]:
    """One synthetic record per prompt, holding its nonzero activations (rounded to 6 decimals)."""
    ids = list(columns)
    matrix = np.column_stack([columns[f] for f in ids])  # [prompts, features]
    records = []
    for i in range(len(y)):
        nz = np.nonzero(np.round(matrix[i], 6))[0]
        records.append(
            ActivationRecord(
                prompt_id=f"synthetic-{i}",
                criterion_score=float(y[i]),
                feature_ids=tuple(ids[k] for k in nz),
                activations=tuple(float(np.round(matrix[i, k], 6)) for k in nz),
                text=f"synthetic prompt {i} ({'criterion holds' if y[i] else 'criterion absent'})",
                model=model,
                extra={"synthetic": True},
            )
        )
    return records


def planted_interventions(
    planted: PlantedSet, criterion: str, *, seed: int = 0, prompts_per_feature: int = 8
) -> list[InterventionRecord]:
    """Synthetic ablation rows for the true features, one random-feature control set, all marked synthetic.

    True promoting features drop the score when ablated; the suppressing one raises it;
    controls (random noise features) move it by chance only.
    """
    rng = np.random.default_rng(seed)
    positives = [r.prompt_id for r in planted.records if r.criterion_score > 0]
    rows: list[InterventionRecord] = []
    model = planted.records[0].model
    for fid in planted.families["true"]:
        label = planted.feature_metadata[fid].label
        assert label is not None, f"planted feature {fid} has no label"
        promotes = not label.startswith("absence")
        for pid in rng.choice(positives, size=prompts_per_feature, replace=False):
            base = float(rng.uniform(0.6, 0.9))
            delta = rng.normal(0.35, 0.05) * (-1 if promotes else 1)
            rows.append(
                InterventionRecord(
                    feature_id=fid, intervention="ablate", baseline_score=base,
                    intervention_score=float(np.clip(base + delta, 0, 1)), model=model, criterion=criterion,
                    prompt_id=str(pid), side_effect_score=float(abs(rng.normal(0.03, 0.01))),
                    metadata={"synthetic": True},
                )
            )
    for fid in planted.families["noise"][:4]:
        for pid in rng.choice(positives, size=prompts_per_feature, replace=False):
            base = float(rng.uniform(0.6, 0.9))
            rows.append(
                InterventionRecord(
                    feature_id=fid, intervention="ablate", baseline_score=base,
                    intervention_score=float(np.clip(base + rng.normal(0, 0.03), 0, 1)), model=model,
                    criterion=criterion, prompt_id=str(pid), side_effect_score=float(abs(rng.normal(0.03, 0.01))),
                    metadata={"synthetic": True, "control_type": "random_feature"},
                )
            )
    return rows
