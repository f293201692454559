"""The ``harvest`` job kind: a sharded harvest (``core.shards``) into ``<run_dir>/harvest``.

It is resumable: the harvest keeps every finished shard whose files match the manifest, so a failed or
cancelled job resumed in its run folder redoes only the shards it had not finished. With
``engine: "ray"`` the job only drives the harvest; the model replicas run as Ray actors that reserve
their own CPUs.
"""

from __future__ import annotations

from typing import Any

from interp_agent.core.errors import ValidationError, arg
from interp_agent.jobs.context import JobContext
from interp_agent.jobs.kinds import GIB, Resources, check_keys, register

HARVEST_PARAMS: tuple[str, ...] = (
    "model", "hookpoint", "dataset", "pack", "corpus", "shard_size", "workers", "engine", "ray_address",
    "torch_threads", "max_length", "pooling", "context_length", "max_contexts",
)
HARVEST_DIR = "harvest"
"""The harvest folder inside the job's run folder."""


def _inputs(params: dict[str, Any]) -> Any:
    from interp_agent.core.shards.request import harvest_inputs

    options = {k: params[k] for k in ("max_length", "pooling", "context_length", "max_contexts") if k in params}
    return harvest_inputs(dataset=params.get("dataset"), pack=params.get("pack"), corpus=params.get("corpus"),
                          **options)


def _harvest_check(params: dict[str, Any]) -> None:
    check_keys("harvest", params, HARVEST_PARAMS, ("hookpoint",))
    _inputs(params)  # exactly one input, options in range
    if params.get("engine", "local") == "local" and params.get("workers", 1) != 1:
        raise ValidationError(f"the local engine runs one worker, got {arg('workers', params['workers'])}",
                              hint="give engine='ray' (and a cluster) for several workers")


@register("harvest", check=_harvest_check, resumable=True, resources=Resources(cpus=1.0, memory_bytes=3 * GIB))
def harvest_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Harvest into ``<run_dir>/harvest``; the result is the manifest's summary."""
    from interp_agent.core.shards.request import run_harvest

    def on_progress(phase: str, done: int, total: int | None) -> None:
        ctx.progress(done / total if total else 0.0, f"{phase}: {done}/{total}")

    if ctx.attempt > 1:
        ctx.log(f"attempt {ctx.attempt}: finished shards in {HARVEST_DIR}/ are kept, the rest are redone")
    return run_harvest(params.get("model", "smollm2-135m"), params["hookpoint"], _inputs(params),
                       ctx.run_dir / HARVEST_DIR, shard_size=params.get("shard_size", 256),
                       workers=params.get("workers", 1), engine=params.get("engine", "local"),
                       ray_address=params.get("ray_address"), torch_threads=params.get("torch_threads", 1),
                       progress=on_progress)
