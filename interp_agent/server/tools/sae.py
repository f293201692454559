"""train_sae and harvest: start an SAE training or a sharded harvest job, wait up to wait_seconds, return a handle
or the result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations

from interp_agent.server.models import HarvestInput, HarvestOutput, TrainSaeInput, TrainSaeOutput, TrainSaeResult
from interp_agent.server.next_steps import for_job
from interp_agent.server.registry import ToolSpec
from interp_agent.server.state import ServerState, job_view
from interp_agent.server.tools.analysis import wait_for

_SETTINGS = ("preset", "architecture", "latent_dim", "expansion_factor", "k", "batch_size", "steps", "lr",
             "sparsity_coefficient", "seed", "device", "max_records", "held_out_fraction", "checkpoint_every")


def specs(state: ServerState) -> list[ToolSpec]:
    """The SAE tools."""
    runner = state.runner

    def path(value: str | None, field: str) -> str | None:
        return None if value is None else str(state.path(value, field))

    async def train_tool(inp: TrainSaeInput, ctx: Context) -> TrainSaeOutput:
        params: dict[str, Any] = {
            "model": inp.model, "dataset": path(inp.dataset, "dataset"), "pack": inp.pack, "criterion": inp.criterion,
            "hookpoint": inp.hookpoint, "records": path(inp.records, "records"),
            "activations": [path(a, "activations") for a in inp.activations] if inp.activations else None,
            "causal": inp.causal, **{k: getattr(inp, k) for k in _SETTINGS},
        }
        params = {k: v for k, v in params.items() if v is not None}
        record = await wait_for(state, runner.submit("train_sae", params).job_id, inp.wait_seconds, ctx)
        raw = runner.result(record.job_id) if record.state == "completed" else None
        result = None
        if raw is not None:
            files = {Path(p).name: state.uri(record.run_id, Path(p).name) for name, p in raw["paths"].items()
                     if Path(p).parent == state.run_dir(record.run_id)}
            result = TrainSaeResult(sae=raw["sae"], held_out=raw["held_out"], splice=raw["splice"],
                                    training=raw["training"],
                                    causal=raw["causal"], files=files)
        return TrainSaeOutput(job=job_view(record), result=result, resources=state.run_uris(record.run_id),
                              next_actions=for_job(state, record))

    # a model given by hub id is downloaded
    starts_job = ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
    )
    return [
        ToolSpec(
            "train_sae",
            "Train a sparse autoencoder (TopK by default; BatchTopK, ReLU+L1, JumpReLU) on one hookpoint's "
            "activations when no existing SAE fits. Sources: a live model harvested over a dataset or pack, stored "
            "activations (safetensors/npy/parquet) or activation records. Starts a background job (preset 'minimal': "
            "under a minute on a CPU; 'production': hours on a GPU) whose progress carries step, loss and FVU; it "
            "checkpoints, and job_resume continues a killed job. Writes an SAE Lens folder (cfg.json + "
            "sae_weights.safetensors), metrics.json (held-out MSE, FVU, L0, dead/dense latents; from a model also "
            "next-token loss and KL with the SAE spliced in) and, for scored prompts, records.jsonl of the latents. "
            "Next: inspect the records, intervene on SAE:L<layer>:F<i> with sae=<run folder>.",
            TrainSaeInput, TrainSaeOutput, train_tool, starts_job, "Train a sparse autoencoder",
        ),
        _harvest_spec(state),
    ]


def _harvest_spec(state: ServerState) -> ToolSpec:
    """The harvest tool: a sharded harvest as a background job."""
    runner = state.runner

    def path(value: str | None, field: str) -> str | None:
        return None if value is None else str(state.path(value, field))

    async def harvest_tool(inp: HarvestInput, ctx: Context) -> HarvestOutput:
        corpus = inp.corpus if inp.corpus in (None, "builtin") else path(inp.corpus, "corpus")
        params: dict[str, Any] = {
            "model": inp.model, "hookpoint": inp.hookpoint, "dataset": path(inp.dataset, "dataset"), "pack": inp.pack,
            "corpus": corpus, "shard_size": inp.shard_size, "engine": inp.engine, "workers": inp.workers,
            "ray_address": inp.ray_address, "torch_threads": inp.torch_threads, "max_length": inp.max_length,
            "pooling": inp.pooling, "context_length": inp.context_length, "max_contexts": inp.max_contexts,
        }
        params = {k: v for k, v in params.items() if v is not None}
        record = await wait_for(state, runner.submit("harvest", params).job_id, inp.wait_seconds, ctx)
        result = runner.result(record.job_id) if record.state == "completed" else None
        return HarvestOutput(job=job_view(record), result=result, resources=state.run_uris(record.run_id),
                             next_actions=for_job(state, record))

    starts_job = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                                 open_world_hint=True)
    return ToolSpec(
        "harvest",
        "Harvest a model's activations at one hookpoint over a prompt set (dataset or pack) or a corpus into "
        "shards, in the job's worker (engine local) or on Ray actors, one model replica each (engine ray, "
        "workers N, ray_address). Each shard holds dense token activations (safetensors) and, for scored "
        "prompts, per-prompt records of the hookpoint's features (Parquet); manifest.json lists every shard "
        "with its sha256 and token counts. A background job; job_resume redoes only unfinished shards. Next: "
        "train_sae with activations=[<run>/harvest], inspect with backend records and records=<run>/harvest, "
        "or explain with corpus=<run>/harvest (a corpus harvest).",
        HarvestInput, HarvestOutput, harvest_tool, starts_job, "Harvest activations into shards",
    )
