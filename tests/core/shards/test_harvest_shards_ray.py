"""The Ray engine of sharded harvesting: the same shard files as the local engine, and a killed worker resumed."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from interp_agent.core.shards import HarvestInputs, ShardWorkerError, harvest_shards, open_manifest

HOOK = "blocks.1.hook_resid_post"
PACK = "measurement_unit"
pytestmark = pytest.mark.ray


def _files(folder: Path) -> dict[str, dict]:
    return {s.name: s.files for s in open_manifest(folder).shards}


def test_ray_workers_write_the_same_shard_files_as_the_local_engine(ray_address: str, tmp_path: Path,
                                                                    one_torch_thread) -> None:
    from interp_agent.core.models import load_model

    inputs = HarvestInputs("pack", PACK)
    harvest_shards(load_model("smollm2-135m", device="cpu"), HOOK, inputs, tmp_path / "local", shard_size=16)
    manifest = harvest_shards("smollm2-135m", HOOK, inputs, tmp_path / "ray", shard_size=16, workers=2, engine="ray",
                              ray_address=ray_address)
    assert manifest.complete and len({s.worker for s in manifest.shards}) == 2  # both actors took shards
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")
    for s in manifest.shards:
        for rel in s.files:
            local = tmp_path / "local" / "shards" / s.name / rel
            assert (tmp_path / "ray" / "shards" / s.name / rel).read_bytes() == local.read_bytes()


def test_a_killed_ray_worker_fails_the_harvest_and_a_rerun_keeps_the_finished_shards(ray_address: str,
                                                                                    tmp_path: Path) -> None:
    out = tmp_path / "h"
    inputs = HarvestInputs("pack", PACK)
    killed: list[int] = []

    def kill_one_worker(phase: str, done: int, total: int | None) -> None:
        if killed:
            return
        worker = json.loads((out / "manifest.json").read_text())["shards"][0]["worker"]  # "ray pid N"
        killed.append(int(worker.rsplit(" ", 1)[1]))
        os.kill(killed[0], signal.SIGKILL)  # it is harvesting its next shard by now

    with pytest.raises(ShardWorkerError, match=r"Ray worker died while harvesting shard-.*re-run the same harvest"):
        harvest_shards("smollm2-135m", HOOK, inputs, out, shard_size=8, workers=2, engine="ray",
                       ray_address=ray_address, progress=kill_one_worker)
    before = json.loads((out / "manifest.json").read_text())
    assert 1 <= len(before["shards"]) < before["n_shards"] and not before["complete"]
    finished = {s["name"]: s for s in before["shards"]}
    manifest = harvest_shards("smollm2-135m", HOOK, inputs, out, shard_size=8, workers=1, engine="ray",
                              ray_address=ray_address)
    assert manifest.complete
    after = {s.name: s.to_json() for s in manifest.shards}
    assert all(after[name] == entry for name, entry in finished.items())  # kept, not redone
    assert all(f"pid {killed[0]}" not in after[n]["worker"] for n in after if n not in finished)
