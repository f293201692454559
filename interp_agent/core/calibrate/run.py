"""Run the real ranking on every planted world and measure it against the truth."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp_agent.core.calibrate.config import CalibrationConfig, CalibrationLevel
from interp_agent.core.calibrate.metrics import (
    EffectRow,
    TopK,
    controls_block,
    effect_block,
    effect_rows,
    held_out_block,
    spread,
    top_k,
    verdict_table,
)
from interp_agent.core.calibrate.worlds import CRITERION, DECOY_FAMILIES, MODEL, PlantedWorld, build_world, write_world
from interp_agent.core.progress import Progress
from interp_agent.core.ranking.config import RankingConfig

Ranker = Callable[[Path, Path, RankingConfig], dict[str, Any]]
"""``ranker(records, interventions, ranking) -> report``: the pipeline under test, returning report.json v1."""


def inspect_records(records: Path, interventions: Path, ranking: RankingConfig) -> dict[str, Any]:
    """The pipeline under test: ``inspect`` with the records backend, the code ``inspect --backend records`` runs."""
    from interp_agent.core.inspection import inspect

    return inspect(MODEL, CRITERION, backend="records", records=records, interventions=interventions,
                   config=ranking).report


def ranking_config(config: CalibrationConfig) -> RankingConfig:
    """The ranking's default settings, reporting enough features for the largest k."""
    k = max(config.cutoffs)
    return RankingConfig(top_k=k, candidates=max(RankingConfig().candidates, k))


@dataclass(frozen=True, slots=True)
class WorldResult:
    """What the ranking of one world got right."""

    seed: int
    """The world's seed."""
    top: tuple[TopK, ...]
    """Precision, recall and decoy shares per k."""
    effects: tuple[EffectRow, ...]
    """Planted against estimated effect of each intervened feature."""
    effect_summary: dict[str, Any]
    """Rank correlations, verdict recovery and false claims (``metrics.effect_block``)."""
    controls: dict[str, Any]
    """The control rows as the report summarised them (``metrics.controls_block``)."""
    held_out: dict[str, Any]
    """Held-out use (``metrics.held_out_block``)."""
    ranking: tuple[tuple[str, str], ...]
    """The reported ranking: (feature id, family) in rank order."""

    def at(self, k: int) -> TopK:
        """The block of cut-off ``k``."""
        return next(t for t in self.top if t.k == k)

    def to_json(self) -> dict[str, Any]:
        """The world's block of calibration.json."""
        return {"seed": self.seed, "provenance": "synthetic", "top_k": [t.to_json() for t in self.top],
                "effects": self.effect_summary, "controls": self.controls, "held_out": self.held_out,
                "intervened": [r.to_json() for r in self.effects],
                "ranking": [{"feature_id": f, "family": fam} for f, fam in self.ranking]}


def measure_world(world: PlantedWorld, config: CalibrationConfig, ranker: Ranker, folder: Path) -> WorldResult:
    """Write the world, rank it (and, with ``leakage_check``, rank it again with flipped held-out scores), measure."""
    ranking = ranking_config(config)
    records, interventions = write_world(world, folder)
    report = ranker(records, interventions, ranking)
    ids = [f["feature_id"] for f in report["features"]]
    unchanged = None
    if config.leakage_check:
        flipped, _ = write_world(world, folder, flip_held_out=True)
        unchanged = ids == [f["feature_id"] for f in ranker(flipped, interventions, ranking)["features"]]
    rows = effect_rows(report, world)
    family = world.family_of
    return WorldResult(
        seed=world.seed, top=tuple(top_k(ids, world, k) for k in config.cutoffs), effects=tuple(rows),
        effect_summary=effect_block(rows), controls=controls_block(report),
        held_out=held_out_block(report, world, config.n_true, unchanged),
        ranking=tuple((fid, family.get(fid, "unknown")) for fid in ids),
    )


@dataclass(frozen=True, slots=True)
class LevelResult:
    """Every seed of one level, and the spread across them."""

    level: CalibrationLevel
    """The level."""
    worlds: tuple[WorldResult, ...]
    """One per seed, in seed order."""
    n_true: int
    """True features per world (the main k)."""

    def aggregate(self) -> dict[str, Any]:
        """Mean, sd, min and max across seeds of every per-seed number."""
        ks = [t.k for t in self.worlds[0].top]
        return {
            "precision_at_k": {str(k): spread([w.at(k).precision for w in self.worlds]) for k in ks},
            "recall_at_k": {str(k): spread([w.at(k).recall for w in self.worlds]) for k in ks},
            "decoy_rate_at_k": {str(k): {fam: spread([w.at(k).decoy_rates[fam] for w in self.worlds])
                                         for fam in DECOY_FAMILIES} for k in ks},
            **{name: spread([w.effect_summary[name] for w in self.worlds])
               for name in ("spearman", "spearman_all", "causal_recovery", "false_causal", "mean_abs_error")},
            "true_held_out_supported": spread([w.held_out["true_supported"] for w in self.worlds]),
            "held_out_supported_precision": spread([w.held_out["supported_precision"] for w in self.worlds]),
            "control_mean_effect": spread([w.controls["mean_effect"] for w in self.worlds]),
            "provenance": "synthetic",
        }

    def to_json(self) -> dict[str, Any]:
        """The level's block of calibration.json."""
        return {"level": {"name": self.level.name, "signal": self.level.signal,
                          "absent_rate": self.level.absent_rate, "effect_noise": self.level.effect_noise,
                          "provenance": "synthetic"},
                "provenance": "synthetic", "aggregate": self.aggregate(),
                "verdicts": verdict_table([r for w in self.worlds for r in w.effects]),
                "seeds": [w.to_json() for w in self.worlds]}


def measure(
    config: CalibrationConfig, ranker: Ranker, folder: Path | None, progress: Progress | None
) -> tuple[LevelResult, ...]:
    """Build, write and rank every world, writing the inputs into ``folder`` (a temporary folder when None)."""
    with tempfile.TemporaryDirectory(prefix="interp-agent-calibration-") as scratch:
        base = folder if folder is not None else Path(scratch)
        levels, done, total = [], 0, len(config.levels) * len(config.seeds)
        ranking = ranking_config(config)
        for level in config.levels:
            worlds = []
            for seed in config.seeds:
                world = build_world(config, level, seed, ranking)
                worlds.append(measure_world(world, config, ranker, base / f"{level.name}-seed{seed}"))
                done += 1
                if progress is not None:
                    progress("calibration worlds", done, total)
            levels.append(LevelResult(level, tuple(worlds), config.n_true))
    return tuple(levels)
