"""Distributed SAE training under torchrun on 2 gloo CPU ranks, against single-process runs on the same
synthetic activations (a planted dictionary, labelled synthetic): data parallel and latent-sharded
training end equal to one process, and a rank killed mid-run leaves a checkpoint the rerun resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from sae_planted import planted
from safetensors.numpy import load_file

from interp_agent.core.errors import ValidationError
from interp_agent.core.sae.distributed import DistContext, check_divisible
from interp_agent.core.sae.train import TrainSettings, fit_sae

Torchrun = Callable[..., list[str]]
"""The ``torchrun_two_ranks`` fixture: a torchrun command of 2 local ranks."""
HERE = Path(__file__).resolve().parent
HOOK = "blocks.1.hook_resid_post"


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}


def _train_args(out: Path, *extra: str, steps: int, checkpoint_every: int = 0) -> list[str]:
    return ["--activations", "acts.npy", "--hookpoint", HOOK, "--steps", str(steps), "--batch-size", "256",
            "--latent-dim", "256", "--k", "8", "--lr", "3e-3", "--seed", "0", "--device", "cpu",
            "--checkpoint-every", str(checkpoint_every), "--out", str(out), *extra]


def _single_process(tmp_path: Path, steps: int) -> dict[str, np.ndarray]:
    """The weights of the same run in this process, without --distributed."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank runs; restored, so later tests keep the default
    try:
        fit_sae(out=tmp_path / "single", activations=tmp_path / "acts.npy", hookpoint=HOOK,
                settings=TrainSettings(steps=steps, batch_size=256, latent_dim=256, k=8, lr=3e-3, seed=0,
                                       device="cpu"))
    finally:
        torch.set_num_threads(before)
    return load_file(str(tmp_path / "single" / "sae_weights.safetensors"))


def _assert_same_weights(ours: dict[str, np.ndarray], ref: dict[str, np.ndarray], atol: float) -> None:
    assert ours.keys() == ref.keys()
    for name in ref:
        np.testing.assert_allclose(ours[name], ref[name], rtol=0, atol=atol, err_msg=name)


def test_distributed_outside_torchrun_says_how_to_launch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    np.save(tmp_path / "acts.npy", planted(n=500)[0])
    with pytest.raises(ValidationError, match="torchrun") as err:
        fit_sae(out=tmp_path / "sae", activations=tmp_path / "acts.npy", settings=TrainSettings(distributed=True))
    assert "torchrun --nproc-per-node N -m interp_agent train-sae --distributed" in str(err.value.hint)
    with pytest.raises(ValidationError, match="shard_latents"):
        fit_sae(out=tmp_path / "sae", activations=tmp_path / "acts.npy", settings=TrainSettings(shard_latents=True))


def test_a_batch_or_latent_dim_that_does_not_split_over_the_ranks_is_refused() -> None:
    ctx = DistContext(0, 3, 0, "gloo", torch.device("cpu"), "data")
    check_divisible(255, 100, ctx)  # 255 rows over 3 ranks: fine
    with pytest.raises(ValidationError, match="batch size 256 does not split evenly over 3 ranks"):
        check_divisible(256, 99, ctx)
    with pytest.raises(ValidationError, match="latent dim 100 does not split evenly over 3 ranks"):
        check_divisible(256, 100, DistContext(1, 3, 1, "gloo", torch.device("cpu"), "latent"))


def test_two_gloo_ranks_train_the_single_process_sae(tmp_path: Path, torchrun_two_ranks: Torchrun) -> None:
    """Data parallel (topk, batchtopk, relu) and latents sharded (topk, batchtopk), 20 Adam steps with AuxK on."""
    out = tmp_path / "results.json"
    proc = subprocess.run(torchrun_two_ranks(str(HERE / "test_distributed_worker.py"), str(out)),
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    r = json.loads(out.read_text())
    for arch in ("topk", "batchtopk"):  # one forward and backward, same weights
        assert r[f"step/{arch}/same_selection"] == 1.0 and r[f"step/{arch}/n_selected"] == 24 * 5
        assert r[f"step/{arch}/recon"] < 1e-5 and r[f"step/{arch}/grad"] < 1e-5
    for case in ("data/topk", "data/batchtopk", "data/relu", "latent/topk", "latent/batchtopk"):
        atol = 1e-5 if case.startswith("data") else 3e-5
        assert max(r[case].values()) < atol, (case, r[case])
        assert r[f"{case}/final_loss"] < 1e-6
        if not case.endswith("relu"):
            assert r[f"{case}/aux_steps"] > 10  # AuxK's dead mask was in play
    assert max(r["latent/resumed"].values()) < 3e-5, r["latent/resumed"]  # a sharded run resumed from a checkpoint


def test_latent_sharded_train_sae_saves_the_single_process_sae(tmp_path: Path, torchrun_two_ranks: Torchrun) -> None:
    """``train-sae --distributed --shard-latents``: rank 0 gathers the shards into the ordinary SAE folder."""
    from interp_agent.core.sae import load_sae

    np.save(tmp_path / "acts.npy", planted(n=12_000)[0])
    out = tmp_path / "sharded"
    cmd = torchrun_two_ranks("-m", "interp_agent", "train-sae", "--distributed", "--shard-latents",
                             *_train_args(out, "--json", steps=30, checkpoint_every=10))
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    payload = json.loads(proc.stdout)  # one JSON document: rank 1 printed nothing
    m = payload["metrics"]
    assert m["distributed"] == {"world_size": 2, "backend": "gloo", "mode": "latent_sharded"}
    assert m["provenance"]["distributed"] == m["distributed"] and m["training"]["steps"] == 30
    assert not (out / "checkpoints").exists()
    sae = load_sae(out)
    assert sae.W_enc.shape == (32, 256) and sae.k == 8 and sae.hookpoint == HOOK
    ours = load_file(str(out / "sae_weights.safetensors"))
    _assert_same_weights(ours, _single_process(tmp_path, 30), atol=2e-5)


def _workers(torchrun_pid: int) -> dict[int, int]:
    """``{RANK: pid}`` of torchrun's worker processes, found through /proc."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0") if ppid == torchrun_pid else []
        except (OSError, IndexError, ValueError):
            continue
        for var in environ:
            if var.startswith(b"RANK="):
                found[int(var[5:])] = int(entry.name)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_rank_killed_under_torchrun_stops_the_run_and_the_rerun_resumes(
    tmp_path: Path, torchrun_two_ranks: Torchrun
) -> None:
    np.save(tmp_path / "acts.npy", planted(n=12_000)[0])
    out = tmp_path / "dp"

    def command() -> list[str]:
        return torchrun_two_ranks("-m", "interp_agent", "train-sae", "--distributed",
                                  *_train_args(out, "--json", steps=200, checkpoint_every=10))

    proc = subprocess.Popen(command(), cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 180
        while not list((out / "checkpoints").glob("step-*.pt")):
            assert proc.poll() is None, f"torchrun ended before a checkpoint: {proc.communicate()[1][-3000:]}"
            assert time.monotonic() < deadline, "no checkpoint within 180 s"
            time.sleep(0.02)
        workers = _workers(proc.pid)
        assert sorted(workers) == [0, 1], workers
        os.kill(workers[1], signal.SIGKILL)
        killed_at = time.monotonic()
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and time.monotonic() - killed_at < 60
    assert not any(_alive(pid) for pid in workers.values()), "a worker outlived torchrun"
    assert not (out / "metrics.json").exists(), "the killed run must not look finished"
    newest = sorted((out / "checkpoints").glob("step-*.pt"))[-1]
    state = torch.load(newest, weights_only=False)
    assert 0 < state["step"] < 200 and state["step"] % 10 == 0

    rerun = subprocess.run(command(), cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert json.loads(rerun.stdout)["metrics"]["training"]["resumed_from_step"] == state["step"]
    training = json.loads((out / "metrics.json").read_text())["training"]
    assert training["resumed_from_step"] == state["step"] and training["steps"] == 200
    assert training["history"][-1]["step"] == 200
    assert training["history"][0]["step"] == 1  # the checkpoint's history carried on
    _assert_same_weights(load_file(str(out / "sae_weights.safetensors")), _single_process(tmp_path, 200), atol=1e-5)
