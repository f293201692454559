"""Scale-out end to end on the embedded model, through the commands a user types: a sharded harvest on Ray
workers, data-parallel SAE training under torchrun on two gloo ranks, and inspect ranking the trained
latents (and the harvest's own records) against the criterion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

HOOKPOINT = "blocks.15.hook_resid_post"


def _cli(*argv: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "interp_agent", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_a_ray_harvest_feeds_torchrun_training_and_inspect_ranks_the_trained_latents(
    ray_address: str, tmp_path: Path, torchrun_two_ranks: Callable[..., list[str]]
) -> None:
    harvested = json.loads(_cli("harvest", "--model", "smollm2-135m", "--hookpoint", HOOKPOINT, "--pack",
                                "measurement_unit", "--out", "h", "--engine", "ray", "--workers", "2",
                                "--ray-address", ray_address, "--shard-size", "32", "--json", cwd=tmp_path).stdout)
    manifest = json.loads((tmp_path / "h" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["n_shards"] == 3 and harvested["totals"]["n_units"] == 88
    assert len({s["worker"] for s in manifest["shards"]}) == 2  # both replicas took shards

    env = os.environ | {"OMP_NUM_THREADS": "1"}
    train = subprocess.run(
        torchrun_two_ranks("-m", "interp_agent", "train-sae", "--distributed", "--device", "cpu", "--activations", "h",
                           "--hookpoint", HOOKPOINT, "--latent-dim", "1024", "--k", "16", "--batch-size", "256",
                           "--steps", "120", "--out", "sae", "--json"),
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr[-3000:]
    metrics = json.loads((tmp_path / "sae" / "metrics.json").read_text())
    assert metrics["distributed"]["world_size"] == 2 and metrics["distributed"]["mode"] == "data_parallel"
    assert metrics["held_out"]["fvu"] < 0.6  # it learned something from the harvested rows

    _cli("inspect", "--model", "smollm2-135m", "--pack", "measurement_unit", "--hookpoint", HOOKPOINT, "--sae", "sae",
         "--out", "insp", cwd=tmp_path)
    report = json.loads((tmp_path / "insp" / "report.json").read_text())
    assert report["summary"]["n_features_tested"] > 576  # the residual dims and the trained SAE's live latents
    _cli("inspect", "--model", "smollm2-135m", "--criterion", "the next token should be a physical measurement unit",
         "--records", "h", "--out", "from_records", cwd=tmp_path)
    from_records = json.loads((tmp_path / "from_records" / "report.json").read_text())
    assert from_records["summary"]["n_prompts"] == 88
