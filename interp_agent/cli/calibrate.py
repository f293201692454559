"""The ``calibrate`` subcommand: run the ranking on planted worlds and hold it to the documented thresholds."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from interp_agent.cli.options import Subparsers, add_json_flag, add_out_folder
from interp_agent.cli.output import TerminalProgress, emit, path_strings
from interp_agent.core.errors import ValidationError

if TYPE_CHECKING:
    from interp_agent.core.calibrate import CalibrationResult

EXIT_FAILED = 1
"""Exit code when a calibration check fails (bad input exits 2, like every command)."""


def parse_seeds(text: str) -> tuple[int, ...]:
    """``3`` -> seeds 0, 1, 2; ``4,7`` -> those seeds; ``5-8`` -> 5 to 8 inclusive.

    Raises:
        ValidationError: not one of those forms, or no seed at all.
    """
    spec = text.strip()
    try:
        if "," in spec:
            seeds = tuple(int(s) for s in spec.split(",") if s.strip())
        elif "-" in spec.lstrip("-"):
            low, high = (int(s) for s in spec.split("-", 1))
            seeds = tuple(range(low, high + 1))
        else:
            seeds = tuple(range(int(spec)))
    except ValueError:
        raise ValidationError(f"`seeds={text}` is not a count (3), a list (4,7) or a range (5-8)") from None
    if not seeds:
        raise ValidationError(f"`seeds={text}` gives no seed; use a count of at least 1, e.g. 3")
    return seeds


def parse_ints(text: str, name: str) -> tuple[int, ...]:
    """A comma-separated list of integers, e.g. ``4,8,16``."""
    try:
        values = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValidationError(f"`{name}={text}` must be comma-separated integers, e.g. 4,8,16") from None
    if not values:
        raise ValidationError(f"`{name}={text}` is empty; give at least one integer")
    return values


def calibration_text(result: CalibrationResult) -> str:
    """The terminal table: per level the aggregates and each seed's row, then the verdict and the files."""
    from interp_agent.core.calibrate.report import SEED_COLUMNS, aggregate_rows, seed_rows

    lines = ["SYNTHETIC calibration: planted worlds, no model was measured"]
    for level in result.levels:
        lv = level.level
        lines += ["", f"{lv.name}: signal {lv.signal}, absent {lv.absent_rate:.0%}, effect noise {lv.effect_noise}, "
                      f"seeds {[w.seed for w in level.worlds]} (mean ± sd [min, max])"]
        lines += [f"  {metric:<30} {value}" for metric, value in aggregate_rows(level)]
        widths = [max(len(c), 6) for c in SEED_COLUMNS]
        lines.append("  " + " ".join(c.rjust(w) for c, w in zip(SEED_COLUMNS, widths, strict=True)))
        lines += ["  " + " ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in seed_rows(level)]
    lines.append("")
    n = len(result.checks)
    lines.append(f"passed: {n}/{n} checks" if result.passed else f"FAILED: {len(result.failed)} of {n} checks")
    lines += [f"  failed {c.describe()}" for c in result.failed]
    if result.paths:
        lines.append("written: " + ", ".join(str(p) for p in result.paths.values()))
    return "\n".join(lines)


def cmd_calibrate(args: argparse.Namespace) -> int:
    """``calibrate``: plant worlds, rank them with ``inspect --backend records``, check the thresholds.

    Returns 0 when every check passes, ``EXIT_FAILED`` (1) otherwise, naming the failed checks on stderr.
    """
    from interp_agent.core.calibrate import LEVELS, CalibrationConfig, run_calibration

    names = [s.strip() for s in args.levels.split(",") if s.strip()]
    unknown = [n for n in names if n not in LEVELS]
    if unknown or not names:
        raise ValidationError(f"`levels={args.levels}`: unknown level(s) {unknown}; use some of {', '.join(LEVELS)}")
    config = CalibrationConfig(
        seeds=parse_seeds(args.seeds), levels=tuple(LEVELS[n] for n in names),
        ks=None if args.k is None else parse_ints(args.k, "k"), n_prompts=args.prompts)
    progress = TerminalProgress()
    try:
        result = run_calibration(config, args.out, keep_worlds=args.keep_worlds, progress=progress)
    finally:
        progress.close()
    emit(args, result.to_json() | {"paths": path_strings(result.paths)}, calibration_text(result))
    if not result.passed:
        print("interp-agent: calibration failed: " + "; ".join(c.describe() for c in result.failed), file=sys.stderr)
        return EXIT_FAILED
    return 0


def add_calibrate_parsers(sub: Subparsers) -> None:
    """Register ``calibrate`` on the subparsers action ``sub``."""
    p = sub.add_parser("calibrate", help="run the ranking on planted synthetic worlds (true features, decoys, "
                                         "absent rows, interventions with controls) and check precision@k, decoy "
                                         "rates, effect rank correlation and held-out use against documented "
                                         "thresholds; writes calibration.json and calibration.md; exits 1 when a "
                                         "check fails")
    p.add_argument("--seeds", default="3", help="a count (3: seeds 0-2, default), a list (4,7) or a range (5-8)")
    p.add_argument("--levels", default="easy,hard", help="comma-separated difficulty levels: easy, hard (checked, "
                                                          "default), edge (past where the ranking holds; reported)")
    p.add_argument("--k", help="comma-separated k of precision/recall@k (default: half, all and twice the 8 true "
                               "features); the number of true features is always included")
    p.add_argument("--prompts", type=int, default=400, help="prompts per planted world (default 400)")
    p.add_argument("--keep-worlds", action="store_true", help="keep each world's records and interventions JSONL "
                                                              "under OUT/worlds")
    add_out_folder(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_calibrate)
