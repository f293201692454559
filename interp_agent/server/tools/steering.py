"""The steering tools: export_steering (a feature's chosen steering edit as a file) and apply_steering."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations

from interp_agent.core.errors import ValidationError, arg
from interp_agent.server.next_steps import call, workspace_path
from interp_agent.server.registry import ToolSpec
from interp_agent.server.state import ServerState
from interp_agent.server.steering_models import (
    ApplySteeringInput,
    ApplySteeringOutput,
    ExportSteeringInput,
    ExportSteeringOutput,
    SteeredPrompt,
)
from interp_agent.server.tools.analysis import report_path

_WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
_READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
_MAX_PROMPT_CHARS = 2000


def _run_or_path(state: ServerState, value: str, field: str, marker: str) -> Path:
    """A run_id whose folder holds ``marker``, else a path inside the workspace or a read root."""
    if "/" not in value and (state.workspace / "runs" / value / marker).is_file():
        return state.run_dir(value)
    return state.path(value, field)


def _out_path(state: ServerState, inp: ExportSteeringInput, interventions: Path) -> Path:
    """Where to write: ``out`` (inside the workspace), else beside the run's interventions.jsonl."""
    if inp.out is not None:
        return state.output_path(inp.out, "out")
    folder = interventions if interventions.is_dir() else interventions.parent
    if not folder.resolve().is_relative_to(state.workspace.resolve()):
        raise ValidationError(f"the interventions lie in a read root ({folder}), which is read-only, so the vector "
                              f"cannot be written beside them", hint="give out=, a workspace-relative file")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", inp.feature_id).strip("_")
    return folder / f"steering_{slug}.{inp.format}"


def _uri(state: ServerState, path: Path) -> str | None:
    """The resource URI of a file at the top of a run folder, else None."""
    runs = (state.workspace / "runs").resolve()
    resolved = path.resolve()
    if resolved.parent.parent == runs:
        return state.uri(resolved.parent.name, resolved.name)
    return None


def _export(state: ServerState, inp: ExportSteeringInput) -> ExportSteeringOutput:
    from interp_agent.core.steering.export import export_steering

    interventions = _run_or_path(state, inp.interventions, "interventions", "interventions.jsonl")
    report = report_path(state, inp.report, "report") if inp.report else None
    sae = str(_run_or_path(state, inp.sae, "sae", "cfg.json")) if inp.sae else None
    out = _out_path(state, inp, interventions)
    result = export_steering(interventions=interventions, feature=inp.feature_id, out=out, report=report, sae=sae,
                             strength=inp.strength, format=inp.format, model_hint=inp.model_hint)
    rel = workspace_path(state, result.path) or str(result.path)
    llama = f"llama-cli -m MODEL.gguf --control-vector {rel}" if result.format == "gguf" else None
    return ExportSteeringOutput(
        path=rel, uri=_uri(state, result.path), format=result.format, vector=result.vector.describe(),
        gguf_read_back=result.checked, llama_cpp=llama,
        next_actions=[call("apply_steering", "generate with the vector beside the unsteered text, with the KL of "
                           "next-token distributions (add prompts: texts intervene did not calibrate on)",
                           vector=rel)])


def _export_spec(state: ServerState) -> ToolSpec:
    async def export_steering_tool(inp: ExportSteeringInput, ctx: Context) -> ExportSteeringOutput:
        return await anyio.to_thread.run_sync(lambda: _export(state, inp))

    return ToolSpec(
        "export_steering",
        "Turn the steering edit intervene chose for a feature into a file others load: interp-agent safetensors "
        "(unit direction, strength, model, hookpoint and provenance in its metadata) or a llama.cpp control vector "
        "(format='gguf', one direction.{layer} tensor, pre-multiplied by the strength; read back with "
        "gguf.GGUFReader and compared before the call returns). The strength is the one intervene chose on "
        "calibration prompts (never re-chosen); the direction is rebuilt from what intervene used (the inspect "
        "run's saved directions, the SAE's decoder row, a basis vector). Use after an intervene job with "
        "mode='steer'; then apply_steering. Loads no model; takes about a second.",
        ExportSteeringInput, ExportSteeringOutput, export_steering_tool, _WRITES, "Export a steering vector")


def _apply(state: ServerState, inp: ApplySteeringInput) -> ApplySteeringOutput:
    from interp_agent.core.steering.apply import apply_steering
    from interp_agent.core.steering.files import load_steering

    long = [i for i, p in enumerate(inp.prompts) if len(p) > _MAX_PROMPT_CHARS]
    if long:
        raise ValidationError(f"{arg('prompts')} {long} are over {_MAX_PROMPT_CHARS} characters")
    path = state.path(inp.vector, "vector")
    vec = load_steering(path)
    model = inp.model or vec.model
    if not model:
        raise ValidationError(f"{arg('vector', inp.vector)} names no model (a foreign control vector)",
                              hint=f"give {arg('model')}")
    result = apply_steering(model, vec, inp.prompts, max_new_tokens=inp.max_new_tokens, scale=inp.scale,
                            seed=inp.seed, positions=inp.positions)
    result["vector"]["path"] = workspace_path(state, path)
    return ApplySteeringOutput(
        model=result["model"], vector=result["vector"], settings=result["settings"],
        prompts=[SteeredPrompt(**row) for row in result["prompts"]], mean_kl_next_token=result["mean_kl_next_token"],
        mean_kl_generated=result["mean_kl_generated"], n_changed=result["n_changed"], provenance="interventional",
        note=result["note"], synthetic=result["synthetic"],
        next_actions=[] if inp.scale == 0 else [call(
            "apply_steering", "the same prompts at scale 0 (no edit: KL 0) or -1 (the opposite direction)",
            vector=inp.vector, prompts=inp.prompts, scale=0.0)])


def _apply_spec(state: ServerState) -> ToolSpec:
    async def apply_steering_tool(inp: ApplySteeringInput, ctx: Context) -> ApplySteeringOutput:
        return await anyio.to_thread.run_sync(lambda: _apply(state, inp))

    return ToolSpec(
        "apply_steering",
        "Generate with a saved steering vector on a model, side by side with the unsteered text: greedy "
        "continuations of each prompt without and with scale x strength x direction added at the vector's "
        "hookpoint, and KL(unsteered || steered) of next-token distributions in nats (at the last prompt position "
        "and averaged over the unsteered continuation). A vector made for another model or width is refused with "
        "both shapes named. Single edits without controls (intervene holds the controlled held-out effect). Loads "
        "the model (seconds for the embedded one) and runs in the call: 1-16 prompts, up to 64 tokens each.",
        ApplySteeringInput, ApplySteeringOutput, apply_steering_tool, _READ, "Generate with a steering vector")


def specs(state: ServerState) -> list[ToolSpec]:
    """The steering tools."""
    return [_export_spec(state), _apply_spec(state)]
