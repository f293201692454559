"""The train_sae job: a worker killed mid-training resumes from its checkpoint and ends with
the same SAE, bit for bit, as an uninterrupted run (CPU, same seed)."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from interp_agent.core.errors import ValidationError
from interp_agent.core.sae.train import TrainSettings
from interp_agent.core.workflows.trained_latents import train_sae
from interp_agent.jobs import JobRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "sae"))
from sae_planted import planted  # noqa: E402

SETTINGS = {"steps": 200, "batch_size": 256, "latent_dim": 256, "k": 8, "lr": 3e-3, "checkpoint_every": 20}


def _pid(runner: JobRunner, job_id: str) -> int | None:
    with sqlite3.connect(runner.db_path, timeout=10) as db:
        (pid,) = db.execute("SELECT pid FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return pid


def test_a_killed_training_job_resumes_to_the_same_sae(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    x, _ = planted(n=12_000, d=32, n_atoms=128)
    np.save(ws / "acts.npy", x)
    runner = JobRunner(ws)
    params = {"activations": ["acts.npy"], "hookpoint": "blocks.1.hook_resid_post", **SETTINGS}
    job = runner.submit("train_sae", params)
    run_dir = Path(job.run_dir)
    deadline = time.monotonic() + 120
    while not list((run_dir / "checkpoints").glob("step-*.pt")):
        assert runner.get(job.job_id).state == "working", runner.get(job.job_id).error
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.05)
    os.kill(_pid(runner, job.job_id), signal.SIGKILL)
    failed = runner.wait(job.job_id, 20)
    assert failed.state == "failed", failed
    assert not (run_dir / "metrics.json").exists()

    runner.resume(job.job_id)
    done = runner.wait(job.job_id, 300)
    assert done.state == "completed", done.error
    result = runner.result(job.job_id)
    assert result["training"]["resumed_from_step"] >= 20
    assert "attempt 2" in runner.log_path(job.job_id).read_text()

    direct = train_sae(out=tmp_path / "direct", activations=ws / "acts.npy", hookpoint="blocks.1.hook_resid_post",
                       settings=TrainSettings(**SETTINGS))
    assert direct.metrics["training"]["resumed_from_step"] is None
    resumed_w = load_file(str(run_dir / "sae_weights.safetensors"))
    direct_w = load_file(str(tmp_path / "direct" / "sae_weights.safetensors"))
    for name in direct_w:
        np.testing.assert_array_equal(resumed_w[name], direct_w[name], err_msg=name)
    assert result["held_out"]["fvu"] == direct.metrics["held_out"]["fvu"]
    runner.close()


def test_bad_train_sae_params_fail_at_submission(tmp_path: Path) -> None:
    runner = JobRunner(tmp_path / "ws")
    with pytest.raises(ValidationError, match="exactly one source"):
        runner.submit("train_sae", {"steps": 10})
    with pytest.raises(ValidationError, match="hookpoint"):
        runner.submit("train_sae", {"model": "smollm2-135m", "pack": "french"})
    with pytest.raises(ValidationError, match="unknown preset"):
        runner.submit("train_sae", {"activations": ["a.npy"], "preset": "huge"})
    with pytest.raises(ValidationError, match="unknown parameter"):
        runner.submit("train_sae", {"activations": ["a.npy"], "lr_schedule": "cosine"})
    runner.close()
