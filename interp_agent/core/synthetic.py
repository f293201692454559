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

Absent rows: records are sparse (a feature that does not fire is left out of the row,
which the ranking reads as activation 0). ``PlantedConfig.absent_rate`` also makes each
true feature miss a share of the prompts it should fire on, and
``PlantedConfig.explicit_zero_rate`` writes the true features' zeros out explicitly on a
share of rows, so omitted and written zeros mix in one file.

Interventions: ``planted_interventions`` gives every true feature the same ablation effect
(the toy backend's default); ``planted_effects`` and ``planted_effect_interventions`` plant
known, distinct effects (and zero-effect decoys) for checking the estimated effects
against the planted ones (``interp_agent.core.calibrate``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    absent_rate: float = 0.0
    """Share of the prompts a true feature should fire on where it is absent instead (left out of the row)."""
    explicit_zero_rate: float = 0.0
    """Share of rows that list the true features absent from them with an explicit activation 0.0."""

    def __post_init__(self) -> None:
        if self.n_prompts < 10:
            raise ValidationError(f"n_prompts must be at least 10, got {self.n_prompts}")
        if not 0.05 <= self.positive_rate <= 0.95:
            raise ValidationError(f"positive_rate must be in [0.05, 0.95], got {self.positive_rate}")
        if not 0.0 <= self.absent_rate < 1.0:
            raise ValidationError(f"absent_rate must be in [0, 1), got {self.absent_rate}; 0.2 is a hard world")
        if not 0.0 <= self.explicit_zero_rate <= 1.0:
            raise ValidationError(f"explicit_zero_rate must be in [0, 1], got {self.explicit_zero_rate}")


@dataclass(slots=True)
class PlantedSet:
    """Records plus the ground truth of which features are which."""

    records: list[ActivationRecord]
    feature_metadata: dict[str, FeatureMeta]
    families: dict[str, list[str]] = field(default_factory=dict)
    """Feature ids per family (true, always_on, rare, confounded, noise)."""
    concept_of: dict[str, int] = field(default_factory=dict)
    """For true features: which planted concept (shared across models) they express."""
    promotes: dict[str, bool] = field(default_factory=dict)
    """For true features: whether the feature promotes the criterion (False: it suppresses it)."""


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
        self.promotes: dict[str, bool] = {}

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
    explicit = _explicit_zero_rows(cfg, model)
    records = _planted_rows(table.columns, prompts.y, model, explicit, table.families["true"])
    return PlantedSet(records=records, feature_metadata=table.meta, families=table.families,
                      concept_of=table.concept_of, promotes=table.promotes)


def _plant_true(table: _FeatureTable, cfg: PlantedConfig, prompts: _SharedPrompts, criterion: str) -> None:
    """Add the true features: each tracks one concept, promoting the criterion (the last one suppresses it)."""
    n, y = cfg.n_prompts, prompts.y
    for j in range(cfg.n_true):
        promotes = j < cfg.n_true - 1 or cfg.n_true == 1
        target = y if promotes else 1.0 - y
        values = np.maximum(0.0, cfg.signal * target * prompts.latent[:, j] * 2.0 + table.rng.normal(0, 0.25, n))
        if cfg.absent_rate > 0:  # drawn only when asked for, so worlds without absences keep their numbers
            values = np.where((target > 0) & (table.rng.random(n) < cfg.absent_rate), 0.0, values)
        fid = table.add("true", values, f"{'marks' if promotes else 'absence of'} {criterion} (concept {j})")
        table.concept_of[fid] = j
        table.promotes[fid] = promotes


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


def _explicit_zero_rows(cfg: PlantedConfig, model: str) -> np.ndarray:
    """Which rows write their absent true features as explicit zeros (own generator: other draws stay put)."""
    if cfg.explicit_zero_rate == 0:
        return np.zeros(cfg.n_prompts, dtype=bool)
    rng = np.random.default_rng([_model_seed(model, cfg.seed), 1])
    return rng.random(cfg.n_prompts) < cfg.explicit_zero_rate


def _planted_rows(
    columns: dict[str, np.ndarray], y: np.ndarray, model: str, explicit: np.ndarray, true_ids: Sequence[str]
) -> list[ActivationRecord]:
    """One synthetic record per prompt, holding its nonzero activations (rounded to 6 decimals).

    Rows marked in ``explicit`` also list the true features they lack, with activation 0.0.
    """
    ids = list(columns)
    true_columns = np.array([ids.index(f) for f in true_ids], dtype=np.int64)
    matrix = np.column_stack([columns[f] for f in ids])  # [prompts, features]
    records = []
    for i in range(len(y)):
        nz = np.nonzero(np.round(matrix[i], 6))[0]
        if explicit[i]:
            nz = np.concatenate([nz, np.setdiff1d(true_columns, nz)])
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


MAX_PLANTED_EFFECT = 0.45
"""Largest |effect| ``planted_effect_interventions`` keeps unclipped: its baselines lie in [0.45, 0.55]."""


def planted_effects(
    planted: PlantedSet, *, effect_range: tuple[float, float] = (0.1, 0.4), n_null: int = 4, seed: int = 0
) -> dict[str, float]:
    """Known signed ablation effects: distinct sizes for the true features, 0 for some confounder-tied decoys.

    The true features' sizes are evenly spaced over ``effect_range`` and dealt out in a
    random order (so size says nothing about a feature's place in the file), signed
    negative for the suppressing one; the first ``n_null`` confounder-tied decoys get 0:
    they track the criterion in the records but do nothing when ablated.

    Raises:
        ValidationError: an empty effect range or one past ``MAX_PLANTED_EFFECT``, or more null decoys than planted.
    """
    low, high = effect_range
    if not 0.0 < low < high <= MAX_PLANTED_EFFECT:
        raise ValidationError(f"effect_range must satisfy 0 < low < high <= {MAX_PLANTED_EFFECT} (scores stay in "
                              f"0..1), got {effect_range}; (0.1, 0.4) works")
    decoys = planted.families["confounded"]
    if not 0 <= n_null <= len(decoys):
        raise ValidationError(f"n_null must be in [0, {len(decoys)}] (the confounder-tied decoys), got {n_null}")
    true_ids = planted.families["true"]
    sizes = np.linspace(low, high, len(true_ids)) if len(true_ids) > 1 else np.array([high])
    sizes = np.random.default_rng(seed).permutation(sizes)
    effects = {fid: float(size if planted.promotes[fid] else -size) for fid, size in zip(true_ids, sizes, strict=True)}
    return effects | {fid: 0.0 for fid in decoys[:n_null]}


def planted_effect_interventions(
    planted: PlantedSet, criterion: str, effects: Mapping[str, float], *, prompt_ids: Sequence[str],
    prompts_per_feature: int = 8, noise_sd: float = 0.05, n_controls: int = 4, split: str | None = None,
    seed: int = 0,
) -> list[InterventionRecord]:
    """Synthetic ablation rows with the given signed effects (positive: the feature promotes), plus controls.

    Each feature in ``effects`` is ablated on ``prompts_per_feature`` prompts drawn from
    ``prompt_ids``; a row's score moves by the feature's effect plus N(0, ``noise_sd``)
    measurement noise (baselines in [0.45, 0.55], so effects up to ``MAX_PLANTED_EFFECT``
    stay inside the 0..1 score; noise beyond it is clipped). ``n_controls`` sparse-noise
    features, never in ``effects``, get ``random_feature`` control rows with noise only.
    Rows carry ``metadata.split`` when ``split`` is given; no row says what was planted.

    Raises:
        ValidationError: fewer prompts than ``prompts_per_feature``, a negative noise, or too few noise features.
    """
    if len(prompt_ids) < max(prompts_per_feature, 2) or prompts_per_feature < 2:
        raise ValidationError(f"prompts_per_feature must be in [2, {len(prompt_ids)}] (the prompts given), "
                              f"got {prompts_per_feature}")
    if noise_sd < 0:
        raise ValidationError(f"noise_sd must be >= 0, got {noise_sd}")
    pool = [f for f in planted.families["noise"] if f not in effects]
    if not 0 <= n_controls <= len(pool):
        raise ValidationError(f"n_controls must be in [0, {len(pool)}] (noise features not intervened on), "
                              f"got {n_controls}")
    rng = np.random.default_rng(seed)
    model = planted.records[0].model
    base_meta: dict[str, Any] = {"synthetic": True, **({"split": split} if split else {})}
    plan = [(fid, effect, base_meta) for fid, effect in effects.items()]
    plan += [(fid, 0.0, base_meta | {"control_type": "random_feature"}) for fid in pool[:n_controls]]
    rows: list[InterventionRecord] = []
    for fid, effect, meta in plan:
        for pid in rng.choice(np.asarray(prompt_ids), size=prompts_per_feature, replace=False):
            base = float(rng.uniform(0.45, 0.55))
            after = base - effect + float(rng.normal(0.0, noise_sd))  # ablating a promoting feature lowers the score
            rows.append(InterventionRecord(
                feature_id=fid, intervention="ablate", baseline_score=base,
                intervention_score=float(np.clip(after, 0.0, 1.0)), model=model, criterion=criterion,
                prompt_id=str(pid), side_effect_score=float(abs(rng.normal(0.01, 0.005))), metadata=dict(meta),
            ))
    return rows
