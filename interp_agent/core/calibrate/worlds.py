"""Planted worlds: synthetic records and intervention rows with known truth, written blind for the pipeline.

A world is one seed of one level. Its records hold every decoy family of
``core.synthetic`` (always-on, rare, confounder-tied, sparse noise) around the true
features, with absences (true features missing from prompts they should fire on;
zeros omitted from most rows, written out on others). Its intervention rows give each
true feature a distinct known effect, some confounder-tied decoys a zero effect, and
sparse-noise features ``random_feature`` control rows, all on held-out prompts. The
files the pipeline reads say nothing of the truth: labels are dropped and every
feature id is shuffled; the truth lives on the ``PlantedWorld`` object only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from interp_agent.core.calibrate.config import CalibrationConfig, CalibrationLevel
from interp_agent.core.errors import ValidationError
from interp_agent.core.formats.interventions import InterventionRecord, write_interventions
from interp_agent.core.formats.records import FeatureMeta, write_records
from interp_agent.core.ranking.config import RankingConfig
from interp_agent.core.ranking.splits import HELD_OUT, assign_splits, prompt_hashes
from interp_agent.core.synthetic import (
    PlantedConfig,
    PlantedSet,
    planted_effect_interventions,
    planted_effects,
    planted_records,
)

MODEL = "planted/calibration"
"""The model name the planted records carry."""
CRITERION = "the planted synthetic behaviour"
"""The criterion the planted records and intervention rows are scored against."""
DECOY_FAMILIES = ("always_on", "rare", "confounded", "noise")
"""The decoy families of ``core.synthetic``, in the order tables show them."""


@dataclass(frozen=True, slots=True)
class PlantedWorld:
    """One seed of one level: the planted records and interventions, and the truth behind them."""

    level: CalibrationLevel
    """The difficulty it was built at."""
    seed: int
    """Seed of every draw in it."""
    planted: PlantedSet
    """Records, metadata and each feature's family."""
    effects: dict[str, float]
    """Planted signed effect of each intervened feature (true: distinct sizes; null decoys: 0)."""
    interventions: tuple[InterventionRecord, ...]
    """Ablation rows of the intervened features and the control rows."""
    held_out_prompts: frozenset[str]
    """Prompts the ranking's hash split holds out (the interventions ran on these)."""

    @property
    def family_of(self) -> dict[str, str]:
        """Feature id -> family (true, always_on, rare, confounded, noise)."""
        return {fid: fam for fam, ids in self.planted.families.items() for fid in ids}

    @property
    def true_ids(self) -> list[str]:
        """The true features."""
        return self.planted.families["true"]


def held_out_prompts(planted: PlantedSet, ranking: RankingConfig) -> frozenset[str]:
    """The prompts the ranking will hold out, by the same salted hash split it uses."""
    ids = [r.prompt_id for r in planted.records]
    groups = assign_splits(prompt_hashes(ids, ranking.split_salt), ranking.held_out_fraction)
    return frozenset(pid for pid, g in zip(ids, groups, strict=True) if g == HELD_OUT)


def build_world(config: CalibrationConfig, level: CalibrationLevel, seed: int, ranking: RankingConfig) -> PlantedWorld:
    """Plant one world: records at ``level``'s signal and absences, then interventions on held-out positive prompts.

    Raises:
        ValidationError: fewer held-out positive prompts than ``config.prompts_per_feature``.
    """
    planted = planted_records(MODEL, CRITERION, PlantedConfig(
        n_prompts=config.n_prompts, n_true=config.n_true, n_always_on=config.n_always_on, n_rare=config.n_rare,
        n_confounded=config.n_confounded, n_noise=config.n_noise, signal=level.signal, seed=seed,
        absent_rate=level.absent_rate, explicit_zero_rate=config.explicit_zero_rate,
    ))
    held = held_out_prompts(planted, ranking)
    positives = [r.prompt_id for r in planted.records if r.criterion_score > 0 and r.prompt_id in held]
    if len(positives) < config.prompts_per_feature:
        raise ValidationError(
            f"seed {seed}: only {len(positives)} held-out positive prompts of n_prompts={config.n_prompts}, fewer "
            f"than prompts_per_feature={config.prompts_per_feature}; raise n_prompts (400 is the default)")
    effects = planted_effects(planted, effect_range=config.effect_range, n_null=config.n_null, seed=seed)
    rows = planted_effect_interventions(
        planted, CRITERION, effects, prompt_ids=positives, prompts_per_feature=config.prompts_per_feature,
        noise_sd=level.effect_noise, n_controls=config.n_controls, split="held_out", seed=seed,
    )
    return PlantedWorld(level=level, seed=seed, planted=planted, effects=effects, interventions=tuple(rows),
                        held_out_prompts=held)


def write_world(world: PlantedWorld, folder: Path, *, flip_held_out: bool = False) -> tuple[Path, Path]:
    """Write the world's records and interventions into ``folder`` without labels; returns both paths.

    With ``flip_held_out`` the held-out rows' criterion scores are flipped (1 - score): a
    ranking chosen on the training rows only cannot change.
    """
    records = world.planted.records
    if flip_held_out:
        records = [replace(r, criterion_score=1.0 - r.criterion_score) if r.prompt_id in world.held_out_prompts
                   else r for r in records]
    blind = {fid: FeatureMeta(layer=m.layer, decoder_signature=m.decoder_signature)
             for fid, m in world.planted.feature_metadata.items()}
    stem = "records-flipped" if flip_held_out else "records"
    records_path = write_records(folder / f"{stem}.jsonl", records, blind)
    interventions_path = write_interventions(folder / "interventions.jsonl", world.interventions)
    return Path(records_path), Path(interventions_path)
