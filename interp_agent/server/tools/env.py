"""profile_env, capabilities and plan_scale: size the work before starting it. Instant, no jobs."""

from __future__ import annotations

from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations

from interp_agent.core.capabilities import capabilities
from interp_agent.core.runs import RUN_COMMANDS
from interp_agent.core.scale import ScalePlanInput, load_profile, profile_env, save_profile
from interp_agent.core.scale.throughput import calibrate, load_calibration, plan_with_calibration
from interp_agent.server.models import (
    BackendCapability,
    CapabilitiesInput,
    CapabilitiesOutput,
    PlanScaleInput,
    PlanScaleOutput,
    ProfileEnvInput,
    ProfileEnvOutput,
)
from interp_agent.server.next_steps import call
from interp_agent.server.registry import ToolSpec
from interp_agent.server.state import ServerState


def _profile_spec(state: ServerState) -> ToolSpec:
    """The profile_env tool: this machine's cores, memory, disk, accelerators and the route to run on."""

    async def profile(inp: ProfileEnvInput, ctx: Context) -> ProfileEnvOutput:
        target = state.output_path(inp.save_to, "save_to") if inp.save_to else None
        # nvidia-smi and the disk are asked in a subprocess and syscalls: keep the event loop free
        prof = await anyio.to_thread.run_sync(lambda: profile_env(state.workspace))
        if target is not None:
            save_profile(prof, target)
        advice = prof["advice"]
        return ProfileEnvOutput(
            route=advice["route"], advice=advice["why"],
            cpu_cores=prof["cpu"].get("logical_cores"), ram_gib=prof["memory"].get("total_gib"),
            disk_free_gib=prof["disk"].get("free_gib"), accelerators=prof["accelerators"],
            credentials=prof["credentials"], profile=prof, saved_to=str(target) if target else None,
            route_advice=advice["next_actions"],
            next_actions=[
                call("inspect", "rank the embedded model's features against a built-in criterion (about a minute "
                     "on a CPU; give positives/negatives or a dataset for a criterion of your own)",
                     model="smollm2-135m", pack="question", wait_seconds=45),
                call("plan_scale", "size a larger run against this machine before starting it",
                     model_params="135M", tokens="10M", d_model=576, from_env=True),
            ],
        )

    return ToolSpec(
        "profile_env",
        "Profile this machine: CPU cores, RAM (GiB), free workspace disk (GiB), CUDA accelerators, installed "
        "optional packages, which credentials are set (present/absent only, never values), and the route to "
        "run on (local_cpu, single_gpu, multi_gpu, cluster). Call it first. Well under a second (GPUs are "
        "listed by nvidia-smi; torch is not imported). Writes a file only when save_to is given.",
        ProfileEnvInput, ProfileEnvOutput, profile,
        ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False),
        "Profile the environment",
    )


def _capabilities_spec(state: ServerState) -> ToolSpec:
    """The capabilities tool: what this installation and this server can do, in one call."""

    async def caps(inp: CapabilitiesInput, ctx: Context) -> CapabilitiesOutput:
        served = [tool.name for tool in await ctx.mcp_server.list_tools()]
        hidden = {name: why for name, why in state.hidden_tools.items() if name not in served}
        found = await anyio.to_thread.run_sync(lambda: capabilities(
            cli_commands=(*RUN_COMMANDS, "run"), mcp_tools=served, workspace=state.workspace,
            probe_accelerators=inp.probe_accelerators))
        found |= {"read_only": bool(hidden), "hidden_tools": hidden}
        works = [b["name"] for b in found["backends"] if b["works"]]
        return CapabilitiesOutput(
            interp_agent=found["interp_agent"], read_only=bool(hidden),
            backends=[BackendCapability(**b) for b in found["backends"]], extras=found["extras"], gpu=found["gpu"],
            credentials=found["credentials"], executors=found["executors"], models=found["models"],
            mcp_tools=served, hidden_tools=hidden, cli_commands=found["cli_commands"], capabilities=found,
            next_actions=[
                call("inspect", "rank features with a backend that works here",
                     **({"model": "smollm2-135m", "pack": "question", "wait_seconds": 45} if "hf" in works
                        else {"model": "toy/model-a", "backend": "toy", "criterion": "mentions a unit"})),
                call("profile_env", "cores, memory, disk and the route to run on"),
            ],
        )

    return ToolSpec(
        "capabilities",
        "What this installation can do, in one call: each inspect backend and whether it works here (with the pip "
        "command when not), the extras and package versions, CUDA devices and whether torch can use them, which "
        "credentials are set (names only, never values), the job executors (local, ray, torchrun), whether the "
        "embedded model smollm2-135m and the sentence encoder are installed, and the tools this server serves "
        "(read_only and hidden_tools say what serve --read-only hid). Loads nothing, well under a second, writes "
        "nothing; the network is not probed. Call it first to choose a backend; profile_env adds the resources.",
        CapabilitiesInput, CapabilitiesOutput, caps,
        ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False),
        "What this installation can do",
    )


def _headline(result: dict[str, Any]) -> dict[str, Any]:
    """The few numbers of a scale plan worth reading first: storage, shards, SAE size, GPU-hours, fit."""
    compute = result["compute"]
    return {
        "recommended_storage": result["storage"]["recommended"],
        "storage_bytes": result["storage"]["recommended_bytes"],
        "dense_bytes": result["storage"]["dense_bytes"],
        "sparse_bytes": result["storage"]["sparse_bytes"],
        "shards": result["shards"],
        "sae_params_total": result["sae"]["params_total"],
        "total_gpu_hours": compute["total_gpu_hours"],
        "wall_hours_on_available": compute["wall_hours_on_available"],
        "weights_fit_one_accelerator": result["weights"]["fits_one_accelerator"],
    } | ({"measured_total_seconds": result["measured"]["total_seconds"]} if "measured" in result else {})


def _plan_spec(state: ServerState) -> ToolSpec:
    """The plan_scale tool: storage, memory, compute and the route of a large run, from human sizes."""

    async def plan(inp: PlanScaleInput, ctx: Context) -> PlanScaleOutput:
        env = None
        if inp.env_profile is not None:
            env = load_profile(state.path(inp.env_profile, "env_profile"))
        elif inp.from_env:
            env = await anyio.to_thread.run_sync(lambda: profile_env(state.workspace))
        sizes = ScalePlanInput.from_sizes(
            model_params=inp.model_params, tokens=inp.tokens, d_model=inp.d_model, selected_layers=inp.selected_layers,
            latent_dim=inp.latent_dim, k=inp.k, dtype=inp.dtype, accelerator=inp.accelerator,
            n_accelerators=inp.n_accelerators, target_shard_size=inp.target_shard_size,
            causal_prompts=inp.causal_prompts, causal_features=inp.causal_features,
            interventions_per_feature=inp.interventions_per_feature, prompt_tokens=inp.prompt_tokens, mfu=inp.mfu,
            max_wall_hours=inp.max_wall_hours, cpu_peak_tflops=inp.cpu_peak_tflops,
            usable_memory_fraction=inp.usable_memory_fraction, gpus_per_node=inp.gpus_per_node,
            local_storage_limit=inp.local_storage_limit, sparse_preferred_above=inp.sparse_preferred_above,
            optimizer_bytes_per_param=inp.optimizer_bytes_per_param, sae_training_passes=inp.sae_training_passes,
            harvest_depth_fraction=inp.harvest_depth_fraction,
        )
        calibration = None
        if inp.calibration is not None:
            calibration = load_calibration(state.path(inp.calibration, "calibration"))
        elif inp.calibrate:
            calibration = await anyio.to_thread.run_sync(calibrate)
        result = plan_with_calibration(sizes, env, calibration=calibration, workers=inp.workers, ranks=inp.ranks,
                                       efficiency=inp.scaling_efficiency)
        return PlanScaleOutput(
            route=result["route"], headline=_headline(result), risk_flags=result["risks"], notes=result["notes"],
            plan=result,
            route_reasons=result["route_reasons"],
            next_actions=[call("inspect", "check the criterion on a small prompt set before the large run",
                               model="smollm2-135m", pack="question", wait_seconds=45)],
        )

    return ToolSpec(
        "plan_scale",
        "Estimate a large run before starting it, from human sizes (model_params '70B', tokens '1B', d_model "
        "'8192', latent_dim '1M'): dense and sparse activation storage in bytes, SAE parameter and optimizer "
        "memory, harvest / causal-validation / SAE-training FLOPs and GPU-hours on the named accelerator, shard "
        "count, risk flags, and the route (local_cpu on a machine without a CUDA device, single_gpu, multi_gpu, or "
        "a cluster on Ray / torchrun). Every assumption (causal prompts/features/interventions, MFU, CPU TFLOP/s, "
        "optimizer bytes, training passes, ...) is an argument; notes give the formulas and the values used. "
        "Instant and read-only; from_env profiles this machine first. With a calibration (or calibrate=true, "
        "about 30 s) it also predicts wall-clock seconds from measured tokens/s and gives the ray job submit / "
        "torchrun commands with shard counts (plan.measured). Next: follow the route.",
        PlanScaleInput, PlanScaleOutput, plan,
        ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False),
        "Plan a large run",
    )


def specs(state: ServerState) -> list[ToolSpec]:
    """The environment tools."""
    return [_profile_spec(state), _capabilities_spec(state), _plan_spec(state)]
