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


def planted_records(
    model: str = "toy/model-a", criterion: str = "synthetic criterion", config: PlantedConfig | None = None
) -> PlantedSet:
    """Generate a deterministic planted records set for ``model``.

    Scores and prompt-level latents depend only on ``config.seed``; feature ids, layers,
    noise and decoder signatures depend on the model name too, so two toy models share
    concepts under different feature ids.
    """
    cfg = config or PlantedConfig()
    shared = np.random.default_rng(cfg.seed)
    rng = np.random.default_rng(_model_seed(model, cfg.seed))
    n = cfg.n_prompts
    y = (shared.random(n) < cfg.positive_rate).astype(np.float64)
    latent = shared.gamma(4.0, 0.25, size=(n, cfg.n_true))  # prompt-level strength of each concept
    confounder = np.where(y > 0, shared.random(n) < 0.7, shared.random(n) < 0.3).astype(np.float64)
    decoder_dim = cfg.d_decoder + (len(model) % 3) * 4  # toy models differ in width

    columns: dict[str, np.ndarray] = {}
    families: dict[str, list[str]] = {k: [] for k in ("true", "always_on", "rare", "confounded", "noise")}
    meta: dict[str, FeatureMeta] = {}
    concept_of: dict[str, int] = {}
    total = cfg.n_true + cfg.n_always_on + cfg.n_rare + cfg.n_confounded + cfg.n_noise
    slots = rng.permutation(total)  # feature numbers are shuffled so ids reveal nothing
    layer_of = rng.integers(2, 24, size=total)

    def add(family: str, values: np.ndarray, label: str) -> str:
        k = len(columns)
        fid = format_dictionary_feature(int(layer_of[k]), int(slots[k]))
        columns[fid] = values
        families[family].append(fid)
        meta[fid] = FeatureMeta(
            label=label, layer=int(layer_of[k]),
            decoder_signature=tuple(np.round(rng.normal(size=decoder_dim), 4).tolist())
        )
        return fid

    for j in range(cfg.n_true):
        promotes = j < cfg.n_true - 1 or cfg.n_true == 1
        target = y if promotes else 1.0 - y
        values = np.maximum(0.0, cfg.signal * target * latent[:, j] * 2.0 + rng.normal(0, 0.25, n))
        fid = add("true", values, f"{'marks' if promotes else 'absence of'} {criterion} (concept {j})")
        concept_of[fid] = j
    for j in range(cfg.n_always_on):
        add("always_on", rng.normal(5.0, 3.0, n) + rng.normal(0, 0.1), f"always-on distractor {j}")
    positives = np.nonzero(y > 0)[0]
    for j in range(cfg.n_rare):
        values = np.zeros(n)
        hits = rng.choice(positives, size=int(rng.integers(2, 5)), replace=False)
        values[hits] = rng.uniform(5.0, 15.0, size=len(hits))
        add("rare", values, f"rare distractor {j}")
    for j in range(cfg.n_confounded):
        values = np.maximum(0.0, confounder * rng.uniform(1.0, 3.0) + rng.normal(0, 0.6, n))
        add("confounded", values, f"confounder-tied distractor {j} (tracks prompt length)")
    for j in range(cfg.n_noise):
        fires = rng.random(n) < rng.uniform(0.02, 0.2)
        add("noise", np.where(fires, rng.exponential(1.0, n), 0.0), f"sparse noise distractor {j}")

    ids = list(columns)
    matrix = np.column_stack([columns[f] for f in ids])  # [prompts, features]
    records = []
    for i in range(n):
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
    return PlantedSet(records=records, feature_metadata=meta, families=families, concept_of=concept_of)


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
