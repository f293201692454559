"""Sharded harvesting: cut the input into shards, run them in-process or on Ray actors, record each in the manifest.

``engine="local"`` runs the shards one after another on one model; ``engine="ray"`` starts
``workers`` Ray actors (one model replica each, torch on ``torch_threads`` threads) that pull
shards from the driver's queue and write them straight into the output folder, so that folder
must be a path every worker sees (a shared filesystem). Only the driver writes the manifest,
atomically after every finished shard. Both engines run the same code on the same shards and
write byte-identical shard files (at the same torch thread count).

Run again on the same folder, a harvest keeps every shard whose files match their recorded
hashes and redoes the rest; a folder harvested from other inputs, model or settings is refused.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from interp_agent.core.errors import InterpAgentError, ValidationError, arg
from interp_agent.core.formats.harvest import (
    MANIFEST,
    SHARDS_DIR,
    Manifest,
    ShardEntry,
    read_manifest,
    shard_problem,
)
from interp_agent.core.progress import Progress
from interp_agent.core.shards.inputs import HarvestInputs, Units, resolve_contexts, resolve_prompts
from interp_agent.core.shards.worker import BATCH_SIZE, ShardPlan, ShardTask, harvest_shard

Engine = Literal["local", "ray"]


class ShardWorkerError(InterpAgentError):
    """A harvest worker died (killed, out of memory) before finishing its shard."""

    code = "shard_worker_failed"


def _identity(inputs: HarvestInputs, units: Units, model: str, hookpoint: str, d_in: int,
              shard_size: int) -> dict[str, Any]:
    prompts = inputs.mode == "prompts"
    return {"model": model, "hookpoint": hookpoint, "d_in": d_in, "dtype": "float32", "mode": inputs.mode,
            "pooling": inputs.pooling if prompts else None, "max_length": inputs.max_length if prompts else None,
            "context_length": None if prompts else inputs.context_length, "shard_size": shard_size,
            "records": prompts, "source": units.source, "positions": "all but the first"}


def _tasks(units: Units, shard_size: int) -> list[ShardTask]:
    out = []
    for index, start in enumerate(range(0, len(units), shard_size)):
        stop = min(start + shard_size, len(units))
        out.append(ShardTask(f"shard-{index:05d}", index, start, stop,
                             None if units.prompts is None else units.prompts[start:stop],
                             None if units.token_ids is None else units.token_ids[start:stop],
                             None if units.passage is None else units.passage[start:stop]))
    return out


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    import json

    return [k for k in new if json.dumps(old.get(k), sort_keys=True) != json.dumps(new[k], sort_keys=True)]


def _start_manifest(out: Path, identity: dict[str, Any], n_shards: int) -> Manifest:
    """The manifest to continue: the folder's own (its valid shards kept), or a new one."""
    shards_dir = out / SHARDS_DIR
    if not (out / MANIFEST).is_file():
        if shards_dir.is_dir() and any(shards_dir.iterdir()):
            raise ValidationError(f"{arg('out', str(out))} holds {SHARDS_DIR}/ but no {MANIFEST}",
                                  hint="harvest into a new folder, or delete this one")
        manifest = Manifest(out, identity, n_shards, [])
        manifest.write()
        return manifest
    old = read_manifest(out)
    diff = _differences(old.identity, identity)
    if diff or old.n_shards != n_shards:
        raise ValidationError(
            f"{arg('out', str(out))} holds a harvest of other inputs or settings (differs in {diff or ['n_shards']}); "
            "its shards are not mixed with these",
            hint="harvest into a new folder, or delete this one to start over")
    kept = [s for s in old.shards if shard_problem(old, s) is None]
    for stale in shards_dir.glob(".shard-*"):  # temporary folders of shards a killed worker did not finish
        shutil.rmtree(stale, ignore_errors=True)
    manifest = Manifest(out, identity, n_shards, kept)
    manifest.write()
    return manifest


def _record(manifest: Manifest, entry: ShardEntry) -> Manifest:
    shards = sorted([s for s in manifest.shards if s.index != entry.index] + [entry], key=lambda s: s.index)
    updated = Manifest(manifest.folder, manifest.identity, manifest.n_shards, shards)
    updated.write()
    return updated


def harvest_shards(
    model: Any,
    hookpoint: str,
    inputs: HarvestInputs,
    out: str | Path,
    *,
    shard_size: int,
    workers: int = 1,
    engine: Engine = "local",
    ray_address: str | None = None,
    torch_threads: int = 1,
    progress: Progress | None = None,
) -> Manifest:
    """Harvest ``inputs`` at ``hookpoint`` into shards under ``out`` with a manifest; resume what is there.

    Args:
        model: a model name (the embedded ``smollm2-135m``, a folder, a hub id); the local engine also takes
            a ``LoadedModel``.
        hookpoint: TransformerLens name, e.g. ``blocks.3.hook_resid_post``.
        inputs: the prompts or corpus (``HarvestInputs``).
        out: the harvest folder (with Ray, a shared path every worker sees).
        shard_size: prompts (or contexts) per shard.
        workers: Ray actors (one model replica each); the local engine runs one.
        engine: ``local`` (in-process) or ``ray``.
        ray_address: the Ray cluster (``host:port``); None: ``RAY_ADDRESS`` or a local cluster Ray starts.
        torch_threads: torch threads of each Ray actor (the local engine leaves the process's setting alone).
        progress: called with ("shards", done, total) after every finished shard.

    Returns:
        The manifest of the finished harvest.

    Raises:
        ValidationError: bad options, or ``out`` holds a harvest of other inputs.
        ShardWorkerError: a Ray worker died; the shards finished so far are kept for a rerun.
    """
    if not isinstance(shard_size, int) or shard_size < 1:
        raise ValidationError(f"{arg('shard_size', shard_size)} must be a positive integer")
    if not isinstance(workers, int) or workers < 1:
        raise ValidationError(f"{arg('workers', workers)} must be a positive integer")
    if engine not in ("local", "ray"):
        raise ValidationError(f"{arg('engine', engine)} is unknown", hint="use local or ray")
    if engine == "local" and workers != 1:
        raise ValidationError(f"the local engine runs one worker, got {arg('workers', workers)}",
                              hint="use engine='ray' for several workers")
    out = Path(out).resolve()  # Ray workers run in other working folders
    out.mkdir(parents=True, exist_ok=True)
    if inputs.kind != "pack" and Path(inputs.spec).exists():
        inputs = replace(inputs, spec=str(Path(inputs.spec).resolve()))
    if engine == "local":
        return _local(model, hookpoint, inputs, out, shard_size, progress)
    if not isinstance(model, str):
        raise ValidationError("the Ray engine loads the model in each worker: give the model by name",
                              hint="e.g. model='smollm2-135m'")
    return _ray(model, hookpoint, inputs, out, shard_size, workers, ray_address, torch_threads, progress)


def _units(inputs: HarvestInputs, tokenizer: Callable[[], Any]) -> Units:
    return resolve_prompts(inputs) if inputs.mode == "prompts" else resolve_contexts(inputs, tokenizer())


def _plan(inputs: HarvestInputs, hookpoint: str, out: Path) -> ShardPlan:
    return ShardPlan(hookpoint, inputs.mode, inputs.pooling, inputs.max_length, inputs.mode == "prompts",
                     str(out / SHARDS_DIR), BATCH_SIZE)


def _local(model: Any, hookpoint: str, inputs: HarvestInputs, out: Path, shard_size: int,
           progress: Progress | None) -> Manifest:
    from interp_agent.core.models import load_model
    from interp_agent.core.models.hookpoints import resolve_hookpoint

    loaded = load_model(model) if isinstance(model, str) else model
    point = resolve_hookpoint(loaded.model, hookpoint)
    units = _units(inputs, lambda: loaded.tokenizer)
    tasks = _tasks(units, shard_size)
    manifest = _start_manifest(out, _identity(inputs, units, loaded.name, point.name, point.width, shard_size),
                               len(tasks))
    plan = _plan(inputs, point.name, out)
    done = {s.index for s in manifest.shards}
    for task in tasks:
        if task.index in done:
            continue
        manifest = _record(manifest, harvest_shard(loaded, plan, task))
        if progress is not None:
            progress("shards", len(manifest.shards), manifest.n_shards)
    return manifest


class ShardActor:
    """A Ray actor holding one model replica; harvests the shards it is handed."""

    def __init__(self, model: str, torch_threads: int) -> None:
        import torch

        from interp_agent.core.models import load_model

        torch.set_num_threads(torch_threads)
        self.loaded = load_model(model, device="cpu")
        self.name = f"ray pid {os.getpid()}"

    def describe(self, hookpoint: str, inputs: HarvestInputs) -> tuple[str, str, int, Units | None]:
        """The model's name, the canonical hookpoint and its width, and (corpus inputs) the contexts."""
        from interp_agent.core.models.hookpoints import resolve_hookpoint

        point = resolve_hookpoint(self.loaded.model, hookpoint)
        units = resolve_contexts(inputs, self.loaded.tokenizer) if inputs.mode == "contexts" else None
        return self.loaded.name, point.name, point.width, units

    def run(self, plan: ShardPlan, task: ShardTask) -> ShardEntry:
        """Harvest one shard."""
        return harvest_shard(self.loaded, plan, task, worker=self.name)


def _ray(model: str, hookpoint: str, inputs: HarvestInputs, out: Path, shard_size: int, workers: int,
         ray_address: str | None, torch_threads: int, progress: Progress | None) -> Manifest:
    try:
        import ray
    except ImportError as exc:
        from interp_agent.core.errors import MissingDependencyError

        raise MissingDependencyError("ray", "scale", "the Ray harvest engine") from exc
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=ray_address, log_to_driver=False)
    actors: list[Any] = []
    try:
        actor_cls = ray.remote(num_cpus=1)(ShardActor)
        actors = [actor_cls.remote(model, torch_threads) for _ in range(workers)]
        name, point, width, contexts = ray.get(actors[0].describe.remote(hookpoint, inputs))
        units = contexts if contexts is not None else resolve_prompts(inputs)
        tasks = _tasks(units, shard_size)
        manifest = _start_manifest(out, _identity(inputs, units, name, point, width, shard_size), len(tasks))
        done = {s.index for s in manifest.shards}
        return _drive(ray, actors, _plan(inputs, point, out), [t for t in tasks if t.index not in done], manifest,
                      progress)
    finally:
        for actor in actors:
            ray.kill(actor)
        if started_here:
            ray.shutdown()


def _drive(ray: Any, actors: Sequence[Any], plan: ShardPlan, queue: list[ShardTask], manifest: Manifest,
           progress: Progress | None) -> Manifest:
    """Hand shards to idle actors until the queue is empty; after a worker dies, finish what runs, then raise."""
    from ray.exceptions import RayActorError

    queue = list(queue)
    running: dict[Any, tuple[Any, ShardTask]] = {}
    for actor in actors:
        if queue:
            task = queue.pop(0)
            running[actor.run.remote(plan, task)] = (actor, task)
    failure: str | None = None
    while running:
        ready, _ = ray.wait(list(running), num_returns=1)
        actor, task = running.pop(ready[0])
        try:
            entry = ray.get(ready[0])
        except RayActorError as exc:
            failure = failure or f"a Ray worker died while harvesting {task.name}: {type(exc).__name__}"
            continue
        manifest = _record(manifest, entry)
        if queue and failure is None:
            nxt = queue.pop(0)
            running[actor.run.remote(plan, nxt)] = (actor, nxt)
        if progress is not None:
            progress("shards", len(manifest.shards), manifest.n_shards)
    if failure is not None:
        raise ShardWorkerError(
            f"{failure}; {len(manifest.shards)} of {manifest.n_shards} shards are finished and recorded in "
            f"{manifest.folder / MANIFEST}",
            hint="re-run the same harvest on the same folder: it keeps the finished shards and redoes the rest")
    return manifest
