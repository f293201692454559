"""Calibration: the real ranking finds what is planted, its thresholds hold, and a broken pipeline fails them.

The default calibration (levels easy and hard, seeds 0-2) runs once per module, on the
real ``inspect --backend records`` pipeline: a few seconds per seed on a CPU. Broken
pipelines are stand-in rankers wrapped around the real one (a shuffled ranking, the
true features removed, a split that holds nothing out, loud controls); each runs one
easy seed without the leakage re-rank to stay fast.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from interp_agent.cli.calibrate import add_calibrate_parsers, cmd_calibrate, parse_seeds
from interp_agent.core import calibrate as calibrate_module
from interp_agent.core.calibrate import (
    EASY,
    SCHEMA_VERSION,
    CalibrationConfig,
    CalibrationLevel,
    CalibrationResult,
    Thresholds,
    inspect_records,
    run_calibration,
)
from interp_agent.core.calibrate.metrics import average_ranks, spearman, spread, top_k, wilson_interval
from interp_agent.core.calibrate.run import ranking_config
from interp_agent.core.calibrate.worlds import build_world
from interp_agent.core.errors import ValidationError
from interp_agent.core.formats.interventions import read_interventions, write_interventions
from interp_agent.core.formats.records import RecordReader, record_to_json, write_records
from interp_agent.core.ranking import RankingConfig, RecordsSource, rank_records, summarise_interventions
from interp_agent.core.ranking.config import HELD_OUT_FRACTION
from interp_agent.core.synthetic import (
    PlantedConfig,
    planted_effect_interventions,
    planted_effects,
    planted_interventions,
    planted_records,
)

QUICK = CalibrationConfig(seeds=(0,), levels=(EASY,), leakage_check=False)
"""One easy world, ranked once: enough to see a broken pipeline fail."""


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[CalibrationResult, Path]:
    out = tmp_path_factory.mktemp("calibration")
    return run_calibration(CalibrationConfig(), out), out


# -- the real pipeline on the default worlds ----------------------------------------------------
def test_the_default_calibration_passes_every_documented_threshold(default_run) -> None:
    result, _ = default_run
    assert result.passed, [c.describe() for c in result.failed]
    names = {(c.level, c.name) for c in result.checks}
    assert {("easy", "precision_at_8"), ("easy", "always_on_rate_at_8"), ("easy", "spearman"),
            ("easy", "held_out_used"), ("easy", "controls_present_and_quiet"), ("hard", "precision_at_8")} <= names


def test_easy_worlds_are_found_and_hard_ones_are_not_trivially_perfect(default_run) -> None:
    result, _ = default_run
    easy, hard = (result.level(n).aggregate() for n in ("easy", "hard"))
    assert easy["precision_at_k"]["8"]["mean"] == 1.0 and easy["recall_at_k"]["16"]["mean"] == 1.0
    assert easy["spearman"]["mean"] >= 0.95
    assert hard["precision_at_k"]["8"]["mean"] < 0.9  # a level where the ranking can be seen to struggle
    assert hard["precision_at_k"]["8"]["sd"] > 0  # and the spread across seeds is reported, not hidden
    assert hard["decoy_rate_at_k"]["8"]["confounded"]["max"] > 0  # the confounder-tied decoys are what win there
    for level in (easy, hard):
        assert level["decoy_rate_at_k"]["8"]["always_on"]["max"] == 0.0
        assert level["false_causal"]["max"] == 0.0


def test_each_world_is_ranked_on_training_rows_and_measured_on_held_out_ones(default_run) -> None:
    result, _ = default_run
    for level in result.levels:
        for world in level.worlds:
            held = world.held_out
            assert held["ranking_unchanged_by_held_out_scores"] is True
            assert held["split_matches_world"] and held["held_out_reported"] and held["used"]
            assert 0.2 < held["n_held_out_prompts"] / 400 < 0.4
            assert world.controls["present"] and world.controls["n"] == 8 * 8 and world.controls["quiet"]


def test_planted_effects_are_estimated_for_every_intervened_feature(default_run) -> None:
    result, _ = default_run
    for world in result.level("easy").worlds:
        assert len(world.effects) == 8 + 4
        assert all(r.estimated is not None and r.rank is not None for r in world.effects)
        for r in world.effects:
            assert abs(r.estimated - r.planted) < 0.06, r  # noise sd 0.05 over 8 prompts
        assert {r.verdict for r in world.effects if r.family == "true"} == {"causal"}
        assert all(r.verdict in ("no_effect", "weak") for r in world.effects if r.family != "true")


def test_calibration_json_and_md_are_written_whole_with_the_schema_version(default_run) -> None:
    result, out = default_run
    assert sorted(p.name for p in out.iterdir()) == ["calibration.json", "calibration.md"]  # no temporary files left
    data = json.loads((out / "calibration.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION == "interp-agent.calibration.v1"
    assert data["synthetic"] is True and data["passed"] is True and data["failed"] == []
    assert set(data["levels"]) == {"easy", "hard"}
    assert len(data["levels"]["hard"]["seeds"]) == 3
    assert data["config"]["ks"] == [4, 8, 16]
    assert result.paths == {"json": out / "calibration.json", "md": out / "calibration.md"}
    md = (out / "calibration.md").read_text()
    assert "SYNTHETIC" in md and "## hard" in md and "P(true | verdict)" in md and "Verdict: **passed**" in md


def _numbers_without_provenance(node: Any, path: str = "") -> list[str]:
    """Paths of dicts that hold a number but no ``provenance: synthetic``."""
    bad: list[str] = []
    if isinstance(node, dict):
        holds_number = any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in node.values())
        if holds_number and node.get("provenance") != "synthetic":
            bad.append(path)
        for k, v in node.items():
            bad += _numbers_without_provenance(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            bad += _numbers_without_provenance(v, f"{path}[{i}]")
    return bad


def test_every_measured_number_in_calibration_json_is_labelled_synthetic(default_run) -> None:
    _, out = default_run
    data = json.loads((out / "calibration.json").read_text())
    assert data["provenance"] == "synthetic"
    measured = {k: v for k, v in data.items() if k not in ("config", "run")}  # settings and tool version, not numbers
    assert _numbers_without_provenance(measured) == []


# -- broken pipelines fail -------------------------------------------------------------------
def _shuffled(records: Path, interventions: Path, ranking: RankingConfig) -> dict[str, Any]:
    """The real report of every candidate, in a random order."""
    report = inspect_records(records, interventions, replace(ranking, top_k=ranking.candidates))
    order = np.random.default_rng(0).permutation(len(report["features"]))
    features = [report["features"][i] for i in order]
    for rank, f in enumerate(features, start=1):
        f["rank"] = rank
    return report | {"features": features[: ranking.top_k]}


def test_a_shuffled_ranking_fails_precision(tmp_path: Path) -> None:
    result = run_calibration(QUICK, tmp_path, ranker=_shuffled)
    assert not result.passed
    failed = {c.name for c in result.failed}
    assert "precision_at_8" in failed
    assert result.level("easy").worlds[0].at(8).precision <= 0.25
    assert "easy: precision_at_8" in json.loads((tmp_path / "calibration.json").read_text())["failed"][0]
    assert "Verdict: **FAILED**" in (tmp_path / "calibration.md").read_text()


def test_removing_the_true_features_gives_precision_zero_and_fails(tmp_path: Path) -> None:
    world = build_world(QUICK, EASY, 0, ranking_config(QUICK))
    true = set(world.true_ids)

    def without_true(records: Path, interventions: Path, ranking: RankingConfig) -> dict[str, Any]:
        reader = RecordReader(records)
        rows = [replace(r, feature_ids=tuple(f for f in r.feature_ids if f not in true),
                        activations=tuple(a for f, a in zip(r.feature_ids, r.activations, strict=True)
                                          if f not in true)) for r in reader]
        meta = {f: m for f, m in reader.feature_metadata.items() if f not in true}
        stripped = write_records(records.with_name("stripped.jsonl"), rows, meta)
        return inspect_records(Path(stripped), interventions, ranking)

    result = run_calibration(QUICK, ranker=without_true)
    top = result.level("easy").worlds[0]
    assert [t.precision for t in top.top] == [0.0, 0.0, 0.0] and top.at(8).recall == 0.0
    assert top.effect_summary["spearman"] is None  # no true feature left to estimate an effect for
    assert not result.passed
    assert {"precision_at_8", "spearman", "causal_recovery"} <= {c.name for c in result.failed}


def test_a_ranking_that_trains_on_the_held_out_prompts_fails_the_held_out_check() -> None:
    def leaky(records: Path, interventions: Path, ranking: RankingConfig) -> dict[str, Any]:
        return inspect_records(records, interventions, replace(ranking, held_out_fraction=0.001))

    result = run_calibration(replace(QUICK, leakage_check=True), ranker=leaky)
    world = result.level("easy").worlds[0]
    assert world.held_out["ranking_unchanged_by_held_out_scores"] is False
    assert [c.name for c in result.failed] == ["held_out_used"]


def test_controls_that_move_the_score_fail_the_controls_check() -> None:
    def loud_controls(records: Path, interventions: Path, ranking: RankingConfig) -> dict[str, Any]:
        rows = [replace(r, intervention_score=r.intervention_score - 0.2) if r.control_type else r
                for r in read_interventions(interventions)]
        return inspect_records(records, write_interventions(interventions.with_name("loud.jsonl"), rows), ranking)

    result = run_calibration(QUICK, ranker=loud_controls)
    controls = result.level("easy").worlds[0].controls
    assert controls["present"] and controls["mean_effect"] > 0.15 and not controls["quiet"]
    assert "controls_present_and_quiet" in {c.name for c in result.failed}


def test_a_level_without_thresholds_checks_only_held_out_use_and_controls() -> None:
    bare = CalibrationLevel(name="bare", signal=1.0)
    result = run_calibration(replace(QUICK, levels=(bare,)), ranker=_shuffled)
    assert result.passed and [c.name for c in result.checks] == ["held_out_used", "controls_present_and_quiet"]


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"seeds": ()}, "seeds is empty"),
    ({"seeds": (1, 1)}, "repeats a seed"),
    ({"levels": ()}, "levels is empty"),
    ({"levels": (EASY, EASY)}, "repeats a name"),
    ({"ks": (319,)}, r"k=319 must be in \[1, 318\]"),
    ({"ks": (0,)}, r"k=0 must be in \[1, 318\]"),
    ({"ks": ()}, "ks is empty"),
    ({"n_true": 2}, "n_true must be at least 3"),
    ({"n_controls": 0}, "controls must be present"),
    ({"n_null": 41}, "n_null must be in"),
    ({"prompts_per_feature": 1}, "prompts_per_feature must be at least 2"),
    ({"effect_range": (0.3, 0.1)}, "effect_range must satisfy"),
    ({"effect_range": (0.1, 0.6)}, "effect_range must satisfy"),
])
def test_bad_calibration_configs_are_refused_with_the_field_and_the_fix(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CalibrationConfig(**kwargs)


def test_the_config_round_trips_through_calibration_json(default_run) -> None:
    result, out = default_run
    written = json.loads((out / "calibration.json").read_text())["config"]
    again = CalibrationConfig.from_json(written)
    assert again.to_json() == result.config.to_json() and again.levels == result.config.levels


def test_bad_levels_thresholds_and_output_requests_are_refused() -> None:
    with pytest.raises(ValidationError, match="signal must be > 0"):
        CalibrationLevel(name="x", signal=0.0)
    with pytest.raises(ValidationError, match="absent_rate"):
        CalibrationLevel(name="x", signal=1.0, absent_rate=1.0)
    with pytest.raises(ValidationError, match="name must be a short word"):
        CalibrationLevel(name="two words", signal=1.0)
    with pytest.raises(ValidationError, match="min_precision must be in"):
        Thresholds(min_precision=1.5)
    with pytest.raises(ValidationError, match="min_spearman"):
        Thresholds(min_spearman=-2.0)
    with pytest.raises(ValidationError, match="keep_worlds needs an output folder"):
        run_calibration(QUICK, keep_worlds=True)


def test_too_few_held_out_prompts_for_the_interventions_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match=r"held-out positive prompts of n_prompts=20, fewer than "
                                              r"prompts_per_feature=8; raise n_prompts"):
        run_calibration(replace(QUICK, n_prompts=20, prompts_per_feature=8))


def test_kept_worlds_are_written_beside_the_calibration(tmp_path: Path) -> None:
    result = run_calibration(replace(QUICK, leakage_check=True), tmp_path, keep_worlds=True)
    folder = tmp_path / "worlds" / "easy-seed0"
    assert sorted(p.name for p in folder.iterdir()) == ["interventions.jsonl", "records-flipped.jsonl", "records.jsonl"]
    assert result.paths["worlds"] == tmp_path / "worlds"
    rows = read_interventions(folder / "interventions.jsonl")  # the truth stays off the files
    assert {k for r in rows for k in r.metadata} == {"synthetic", "split", "control_type"}
    first = json.loads((folder / "records.jsonl").read_text().splitlines()[0])
    assert all("label" not in m for m in first["feature_metadata"].values())


# -- metrics -------------------------------------------------------------------------------------
def test_spearman_and_wilson_agree_with_scipy() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        x, y = rng.integers(0, 4, size=9).astype(float), rng.normal(size=9)  # ties in x
        np.testing.assert_allclose(average_ranks(x), stats.rankdata(x))
        if np.ptp(x) > 0:
            expected = np.corrcoef(stats.rankdata(x), stats.rankdata(y))[0, 1]  # scipy's ranks, Pearson's r
            assert spearman(list(x), list(y)) == pytest.approx(float(expected), abs=1e-12)
    for hits, n in [(0, 5), (3, 5), (5, 5), (2, 13)]:
        ci = stats.binomtest(hits, n).proportion_ci(method="wilson")
        assert wilson_interval(hits, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_spearman_needs_three_estimates_and_variation() -> None:
    assert spearman([0.1, 0.2, 0.3], [0.1, None, 0.3]) is None
    assert spearman([0.1, 0.2, 0.3], [0.5, 0.5, 0.5]) is None
    assert spearman([0.1, 0.2, 0.3], [0.3, 0.2, 0.1]) == pytest.approx(-1.0)


def test_spread_is_mean_sample_sd_min_max_and_counts_missing_seeds() -> None:
    s = spread([0.5, 1.0, None])
    assert (s["mean"], s["sd"], s["min"], s["max"], s["n"], s["n_missing"]) == (
        0.75, pytest.approx(np.std([0.5, 1.0], ddof=1)), 0.5, 1.0, 2, 1)
    assert spread([None])["mean"] is None


def test_top_k_counts_true_hits_and_each_decoy_family() -> None:
    world = build_world(QUICK, EASY, 0, ranking_config(QUICK))
    fam = world.planted.families
    ranking = [*fam["true"][:3], fam["always_on"][0], fam["rare"][0], fam["confounded"][0], *fam["true"][3:]]
    t = top_k(ranking, world, 4)
    assert (t.precision, t.recall) == (0.75, 3 / 8)
    assert t.decoy_rates == {"always_on": 0.25, "rare": 0.0, "confounded": 0.0, "noise": 0.0}
    assert top_k(ranking, world, 8).decoy_rates["confounded"] == 0.125


# -- the synthetic generator ---------------------------------------------------------------------
def test_default_planted_records_and_interventions_keep_their_numbers() -> None:
    """Pinned from the generator before absences and planted effects were added: current callers (the toy
    backend, the examples) get the same records. A numpy release that changes Generator streams would move
    it too (NEP 19); check the toy backend's report before re-pinning."""
    ps = planted_records("toy/model-a", "c", PlantedConfig(n_prompts=60, seed=3))
    payload = [[record_to_json(r) for r in ps.records], [r.to_json() for r in planted_interventions(ps, "c")],
               ps.families]
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    assert digest == "ad4b9ac75e2f5684c4ae306fb6ddb9c81c36191791089199d218495663a33556"


def test_absent_rate_removes_true_features_from_that_share_of_their_prompts() -> None:
    ps = planted_records("m", "c", PlantedConfig(n_prompts=400, absent_rate=0.3, seed=1))
    positives = [r for r in ps.records if r.criterion_score > 0]
    promoting = [f for f in ps.families["true"] if ps.promotes[f]]
    absent = np.mean([f not in r.feature_ids for r in positives for f in promoting])
    assert 0.25 < absent < 0.36
    with pytest.raises(ValidationError, match="absent_rate"):
        PlantedConfig(absent_rate=1.0)


def test_absent_features_rank_the_same_whether_omitted_or_written_as_zeros(tmp_path: Path) -> None:
    sparse = planted_records("m", "c", PlantedConfig(n_prompts=200, absent_rate=0.2, seed=2))
    written = planted_records("m", "c", PlantedConfig(n_prompts=200, absent_rate=0.2, seed=2, explicit_zero_rate=1.0))
    true = set(written.families["true"])
    zeros = [(r, f) for r in written.records for f, a in zip(r.feature_ids, r.activations, strict=True) if a == 0.0]
    assert zeros and all(f in true for _, f in zeros)
    orders = []
    for name, ps in (("sparse", sparse), ("written", written)):
        path = write_records(tmp_path / f"{name}.jsonl", ps.records, ps.feature_metadata)
        body = rank_records(RecordsSource(path), RankingConfig(top_k=10))
        orders.append([(f["feature_id"], round(f["importance"], 12)) for f in body["features"]])
    assert orders[0] == orders[1]


def test_planted_effects_are_distinct_signed_and_zero_for_null_decoys() -> None:
    ps = planted_records("m", "c", PlantedConfig(n_prompts=100, n_true=6))
    effects = planted_effects(ps, effect_range=(0.1, 0.35), n_null=3, seed=4)
    true = ps.families["true"]
    sizes = sorted(abs(effects[f]) for f in true)
    assert sizes == pytest.approx(list(np.linspace(0.1, 0.35, 6)))
    assert all((effects[f] > 0) == ps.promotes[f] for f in true)
    assert [effects[f] for f in ps.families["confounded"][:3]] == [0.0, 0.0, 0.0]
    with pytest.raises(ValidationError, match="effect_range"):
        planted_effects(ps, effect_range=(0.4, 0.1))
    with pytest.raises(ValidationError, match="n_null"):
        planted_effects(ps, n_null=1000)


def test_planted_effect_interventions_carry_the_effects_and_quiet_controls() -> None:
    ps = planted_records("m", "c", PlantedConfig(n_prompts=200))
    effects = planted_effects(ps, n_null=2)
    prompts = [r.prompt_id for r in ps.records if r.criterion_score > 0]
    rows = planted_effect_interventions(ps, "c", effects, prompt_ids=prompts, prompts_per_feature=10, noise_sd=0.02,
                                        n_controls=3, split="held_out")
    evidence = summarise_interventions(rows, "c")
    assert evidence.controls is not None and evidence.controls["n"] == 30
    assert abs(evidence.controls["mean_effect"]) < 0.02
    for fid, planted in effects.items():
        assert evidence.features[fid].effect.mean_effect == pytest.approx(planted, abs=0.02)
        assert evidence.features[fid].held_out
    assert all(r.metadata["synthetic"] is True and "planted" not in r.metadata for r in rows)
    with pytest.raises(ValidationError, match="prompts_per_feature"):
        planted_effect_interventions(ps, "c", effects, prompt_ids=prompts[:3], prompts_per_feature=8)
    with pytest.raises(ValidationError, match="n_controls"):
        planted_effect_interventions(ps, "c", effects, prompt_ids=prompts, n_controls=10_000)


def test_worlds_intervene_on_the_held_out_prompts_the_ranking_holds_out() -> None:
    world = build_world(QUICK, EASY, 0, ranking_config(QUICK))
    assert {r.prompt_id for r in world.interventions} <= world.held_out_prompts
    assert abs(len(world.held_out_prompts) / QUICK.n_prompts - HELD_OUT_FRACTION) < 0.08


# -- the command line ----------------------------------------------------------------------------
def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="interp-agent")
    add_calibrate_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["calibrate", *argv])


def test_the_calibrate_command_prints_a_table_writes_the_files_and_exits_zero(tmp_path: Path, capsys) -> None:
    code = cmd_calibrate(_parse(["--out", str(tmp_path), "--seeds", "1", "--levels", "easy"]))
    text = capsys.readouterr().out
    assert code == 0
    assert "SYNTHETIC" in text and "precision@8" in text and "passed: 7/7 checks" in text
    assert (tmp_path / "calibration.json").is_file() and (tmp_path / "calibration.md").is_file()


def test_the_calibrate_command_prints_json_and_exits_one_naming_the_failed_check(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = calibrate_module.run_calibration

    def broken(config: CalibrationConfig, out: Any = None, *, keep_worlds: bool = False,
               progress: Any = None) -> CalibrationResult:
        return real(replace(config, leakage_check=False), out, ranker=_shuffled, keep_worlds=keep_worlds,
                    progress=progress)

    monkeypatch.setattr(calibrate_module, "run_calibration", broken)
    code = cmd_calibrate(_parse(["--out", str(tmp_path), "--seeds", "0,", "--levels", "easy", "--json"]))
    captured = capsys.readouterr()
    assert code == 1
    payload = json.loads(captured.out)
    assert payload["schema_version"] == SCHEMA_VERSION and payload["passed"] is False
    assert payload["paths"]["json"] == str(tmp_path / "calibration.json")
    assert "calibration failed: easy: precision_at_8 (mean over seeds)" in captured.err


def test_the_calibrate_command_refuses_bad_seeds_levels_and_k(tmp_path: Path) -> None:
    assert parse_seeds("3") == (0, 1, 2) and parse_seeds("4,7") == (4, 7) and parse_seeds("5-7") == (5, 6, 7)
    assert parse_seeds("7,") == (7,)
    for bad, message in (("0", "gives no seed"), ("x", "is not a count"), ("", "is not a count")):
        with pytest.raises(ValidationError, match=message):
            parse_seeds(bad)
    with pytest.raises(ValidationError, match="unknown level"):
        cmd_calibrate(_parse(["--out", str(tmp_path), "--levels", "easy,impossible"]))
    with pytest.raises(ValidationError, match=r"k=999 must be in \[1, 318\]"):
        cmd_calibrate(_parse(["--out", str(tmp_path), "--k", "4,999"]))
    with pytest.raises(ValidationError, match="comma-separated integers"):
        cmd_calibrate(_parse(["--out", str(tmp_path), "--k", "four"]))
    assert not (tmp_path / "calibration.json").exists()


def test_core_calibrate_imports_no_server_job_runner_cli_or_scipy() -> None:
    code = ("import sys, interp_agent.core.calibrate; "
            "bad = [m for m in ('mcp', 'scipy', 'interp_agent.server', 'interp_agent.jobs', 'interp_agent.cli') "
            "if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
