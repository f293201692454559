"""Calibration: does the ranking find what is planted?

Planted worlds (``worlds``) hold true features with known, distinct causal effects among
decoy families (always-on, rare, confounder-tied, sparse noise), absent activations and
control interventions, at several difficulty levels (``config``). ``run_calibration``
runs the real ``inspect --backend records`` pipeline on each world and seed, measures
precision/recall@k, decoy shares, the rank correlation of planted and estimated effects,
verdicts and held-out use (``metrics``), applies each level's documented thresholds
(``result``) and writes calibration.json / calibration.md (``report``). Every number is
labelled synthetic: it checks the pipeline on known truth, not a model.
"""

from __future__ import annotations

from pathlib import Path

from interp_agent.core.calibrate.config import (
    DEFAULT_LEVELS,
    EASY,
    EDGE,
    HARD,
    LEVELS,
    CalibrationConfig,
    CalibrationLevel,
    Thresholds,
)
from interp_agent.core.calibrate.report import write_calibration
from interp_agent.core.calibrate.result import SCHEMA_VERSION, CalibrationResult, Check, judge
from interp_agent.core.calibrate.run import Ranker, inspect_records, measure
from interp_agent.core.errors import ValidationError
from interp_agent.core.progress import Progress

__all__ = [
    "DEFAULT_LEVELS", "EASY", "EDGE", "HARD", "LEVELS", "SCHEMA_VERSION", "CalibrationConfig", "CalibrationLevel",
    "CalibrationResult", "Check", "Ranker", "Thresholds", "inspect_records", "run_calibration",
]


def run_calibration(
    config: CalibrationConfig | None = None, out: str | Path | None = None, *, ranker: Ranker = inspect_records,
    keep_worlds: bool = False, progress: Progress | None = None,
) -> CalibrationResult:
    """Plant every world of ``config``, rank each with ``ranker``, measure, and check the thresholds.

    Args:
        config: what to plant (default ``CalibrationConfig()``: levels easy and hard, seeds 0-2).
        out: folder for calibration.json and calibration.md; None writes nothing.
        ranker: the pipeline under test; the default is ``inspect`` with the records backend.
            Tests pass a broken one to see the checks fail.
        keep_worlds: also keep each world's records and interventions under ``out/worlds``.
        progress: ``progress(phase, done, total)`` after each world.

    Returns:
        The measurements, checks (``passed``, ``failed``) and the written paths.

    Raises:
        ValidationError: ``keep_worlds`` without ``out``.
    """
    cfg = config or CalibrationConfig()
    if keep_worlds and out is None:
        raise ValidationError("keep_worlds needs an output folder (`out`) to keep the worlds in")
    worlds = Path(out) / "worlds" if keep_worlds and out is not None else None
    result = judge(cfg, measure(cfg, ranker, worlds, progress))
    if out is None:
        return result
    paths = write_calibration(result, out) | ({"worlds": worlds} if worlds is not None else {})
    return CalibrationResult(result.config, result.levels, result.checks, paths)
