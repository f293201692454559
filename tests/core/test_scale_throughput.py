"""plan_scale's measured prediction: a calibration of this machine, the scaling rules, and a prediction
checked against a measured run on the embedded model."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.scale import ScalePlanInput, plan_scale, render_plan
from interp_agent.core.scale.throughput import (
    THROUGHPUT_SCHEMA,
    _harvest_rate,
    _training_rate,
    calibrate,
    load_calibration,
    plan_with_calibration,
    predict,
)

PREDICTION_FACTOR = 2.0
"""A prediction from the calibration must be within this factor of the measured run (either way)."""


def _calibration(harvest_tps: float = 1000.0, train_tps: float = 10_000.0) -> dict[str, Any]:
    """A hand-written calibration (numbers chosen for the arithmetic tests, not measured)."""
    return {
        "schema_version": THROUGHPUT_SCHEMA, "provenance": "synthetic (test arithmetic)", "device": "cpu",
        "torch_threads": 1, "model": {"name": "m", "params": 100_000_000, "d_model": 512, "n_layers": 10},
        "harvest": {"tokens_per_s": harvest_tps, "depth_fraction": 1.0},
        "sae_training": {"tokens_per_s": train_tps, "d_in": 512, "d_sae": 4096, "k": 32},
    }


def _plan(**sizes: Any) -> ScalePlanInput:
    base: dict[str, Any] = {"model_params": "100M", "tokens": "10M", "d_model": 512, "selected_layers": 1,
                            "latent_dim": 4096, "k": 32}
    return ScalePlanInput.from_sizes(**(base | sizes))


def test_the_same_shape_as_the_calibration_takes_tokens_over_the_measured_rates() -> None:
    got = predict(_plan(), _calibration())
    assert got["harvest"]["seconds"] == pytest.approx(10e6 / 1000.0)
    assert got["sae_training"]["seconds"] == pytest.approx(10e6 / 10_000.0)
    assert got["total_seconds"] == pytest.approx(got["harvest"]["seconds"] + got["sae_training"]["seconds"])
    assert "ideal" in got["basis"][-1]


def test_workers_ranks_model_size_width_layers_and_efficiency_scale_the_prediction() -> None:
    one = predict(_plan(), _calibration())
    assert predict(_plan(), _calibration(), workers=4)["harvest"]["seconds"] == pytest.approx(
        one["harvest"]["seconds"] / 4)
    assert predict(_plan(), _calibration(), ranks=2)["sae_training"]["seconds"] == pytest.approx(
        one["sae_training"]["seconds"] / 2)
    assert predict(_plan(model_params="1B"), _calibration())["harvest"]["seconds"] == pytest.approx(
        one["harvest"]["seconds"] * 10)
    assert predict(_plan(latent_dim=16384), _calibration())["sae_training"]["seconds"] == pytest.approx(
        one["sae_training"]["seconds"] * 4)
    assert predict(_plan(selected_layers=3), _calibration())["sae_training"]["seconds"] == pytest.approx(
        one["sae_training"]["seconds"] * 3)
    half = predict(_plan(), _calibration(), workers=2, ranks=2, efficiency=0.5)
    assert half["harvest"]["seconds"] == pytest.approx(one["harvest"]["seconds"])
    assert "0.5 (measured)" in half["basis"][-1]


def test_the_launch_commands_carry_the_workers_ranks_and_shard_size() -> None:
    inp = _plan(tokens="1B", target_shard_size="10GB", gpus_per_node=8)
    got = predict(inp, _calibration(), workers=8, ranks=16)
    shards = got["shards"]
    per_token = 512 * 2  # bfloat16 d_model values of one layer
    assert shards["count"] == -(-1_000_000_000 * per_token // 10_000_000_000) and shards["count"] >= 8
    cmd = got["commands"]
    assert cmd["harvest"].startswith("ray job submit ") and "--workers 8" in cmd["harvest"]
    assert f"--shard-size {shards['tokens_each']}" in cmd["harvest"]
    assert "torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d" in cmd["sae_training"]
    assert "train-sae --distributed" in cmd["sae_training"] and "--latent-dim 4096" in cmd["sae_training"]
    single = predict(_plan(), _calibration(), ranks=2)["commands"]["sae_training"]
    assert "--nnodes 1 --nproc-per-node 2 --standalone" in single


def test_plan_scale_holds_the_prediction_only_with_a_calibration_and_renders_it() -> None:
    assert "measured" not in plan_scale(_plan()) and "measured" not in plan_with_calibration(_plan())
    plan = plan_with_calibration(_plan(), calibration=_calibration(), workers=2, ranks=2)
    assert plan["measured"]["harvest"]["workers"] == 2
    text = render_plan(plan)
    assert "measured on this machine" in text and "launch training: torchrun" in text


def test_bad_calibrations_and_options_are_refused_saying_how_to_make_one(tmp_path: Path) -> None:
    broken = copy.deepcopy(_calibration())
    broken["harvest"]["tokens_per_s"] = 0
    with pytest.raises(ValidationError, match="plan-scale --calibrate"):
        predict(_plan(), broken)
    with pytest.raises(ValidationError, match="workers and ranks"):
        predict(_plan(), _calibration(), workers=0)
    with pytest.raises(ValidationError, match="efficiency"):
        predict(_plan(), _calibration(), efficiency=1.5)
    path = tmp_path / "cal.json"
    path.write_text("{not json")
    with pytest.raises(InputFileError, match="not valid JSON") as info:
        load_calibration(path)
    assert str(path) in str(info.value)
    path.write_text(json.dumps({"schema_version": "something.else"}))
    with pytest.raises(InputFileError, match="not a calibration"):
        load_calibration(path)
    with pytest.raises(InputFileError, match="cannot read"):
        load_calibration(tmp_path / "missing.json")


@pytest.mark.slow
def test_a_calibration_predicts_a_measured_harvest_and_training_run_within_a_factor_of_two(
    one_torch_thread: None,
) -> None:
    """Calibrate on ~1k tokens, predict a run 4x larger, run it for real and compare (embedded model)."""
    cal = calibrate(harvest_tokens=1024, max_length=64, d_sae=2048, k=32, train_steps=20, batch_size=256)
    assert cal["provenance"] == "measured" and cal["harvest"]["tokens"] >= 1024
    from interp_agent.core.models.loading import load_model

    loaded = load_model("smollm2-135m", device="cpu")
    start = time.perf_counter()
    rows, measured_harvest = _harvest_rate(loaded, cal["harvest"]["hookpoint"], 4096, 64)
    harvest_s = time.perf_counter() - start  # with the warm-up and the tokenisation: what a user waits
    training = _training_rate(rows.astype(np.float32), 2048, 32, 64, 256, "cpu")
    inp = ScalePlanInput.from_sizes(
        model_params=cal["model"]["params"], tokens=measured_harvest["tokens"], d_model=576, selected_layers=1,
        latent_dim=2048, k=32, harvest_depth_fraction=cal["harvest"]["depth_fraction"],
        sae_training_passes=64 * 256 / measured_harvest["tokens"],
    )
    got = predict(inp, cal)
    ratios = {"harvest": got["harvest"]["seconds"] / harvest_s,
              "training": got["sae_training"]["seconds"] / training["seconds"]}
    print("predicted / measured:", ratios)
    for name, ratio in ratios.items():
        assert 1 / PREDICTION_FACTOR <= ratio <= PREDICTION_FACTOR, (name, ratios)
