"""validate_matches, diff_models and train_crosscoder: cross-model work, each a background job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations

from interp_agent.core.errors import ValidationError
from interp_agent.jobs import JobRecord
from interp_agent.server.crossmodel_models import (
    DiffModelsInput,
    DiffModelsOutput,
    DiffModelsResult,
    TrainCrosscoderInput,
    TrainCrosscoderOutput,
    TrainCrosscoderResult,
    ValidateMatchesInput,
    ValidateMatchesOutput,
    ValidateMatchesResult,
)
from interp_agent.server.next_steps import for_job
from interp_agent.server.registry import ToolSpec
from interp_agent.server.state import ServerState, job_view
from interp_agent.server.tools.analysis import dataset_of, optional_path, report_path, wait_for

_STARTS_JOB = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                              open_world_hint=False)


def matches_path(state: ServerState, value: str) -> str:
    """A matches argument as a matches.json path: a run_id of a match job, a folder or a file."""
    run = state.workspace / "runs" / value / "matches.json"
    if "/" not in value and run.is_file():
        return str(run)
    if "/" not in value and not value.endswith(".json") and not (state.workspace / value).exists():
        raise ValidationError(f"matches: no match run and no file {value!r} in the workspace",
                              hint="give the run_id of a completed match job, or a matches.json path")
    path = state.path(value, "matches")
    return str(path / "matches.json" if path.is_dir() else path)


def _result_or_none(state: ServerState, record: JobRecord) -> dict[str, Any] | None:
    return state.runner.result(record.job_id) if record.state == "completed" else None


def _validate_params(state: ServerState, inp: ValidateMatchesInput) -> dict[str, Any]:
    return {
        "matches": matches_path(state, inp.matches), "criterion": inp.criterion or None,
        "dataset": dataset_of(state, inp), "pack": inp.pack,
        "left_model": inp.left_model,
        "right_model": inp.right_model,
        "left_report": report_path(state, inp.left_report, "left_report") if inp.left_report else None,
        "right_report": report_path(state, inp.right_report, "right_report") if inp.right_report else None,
        "left_sae": optional_path(state, inp.left_sae, "left_sae"),
        "right_sae": optional_path(state, inp.right_sae, "right_sae"),
        "mode": inp.mode, "top": inp.top, "strengths": inp.strengths, "scorer": inp.scorer, "targets": inp.targets,
        "patch_across": inp.patch_across, "dossier": state.dossier_file(inp.dossier),
    }


def _validate_spec(state: ServerState) -> ToolSpec:
    async def validate_tool(inp: ValidateMatchesInput, ctx: Context) -> ValidateMatchesOutput:
        record = await wait_for(state, state.runner.submit("validate_matches", _validate_params(state, inp)).job_id,
                                inp.wait_seconds, ctx)
        raw = _result_or_none(state, record)
        result = None if raw is None else ValidateMatchesResult(
            summary=raw["summary"], pairs=raw["pairs"], scorer=raw["scorer"],
            validation_json=state.uri(record.run_id, "validation/validation.json"),
            validation_md=state.uri(record.run_id, "validation/validation.md"))
        return ValidateMatchesOutput(job=job_view(record), result=result, resources=state.run_uris(record.run_id),
                                     next_actions=for_job(state, record))

    return ToolSpec(
        "validate_matches",
        "Test whether matched features (a match job's matches.json: fingerprint or activation matches) do the same "
        "thing: the same intervention (steer or ablate) on each side, the strength chosen per side on calibration "
        "prompts, the effect measured on the SAME held-out prompts with one behaviour score, with controls on both "
        "sides. Per pair: sign agreement, the effect ratio with a bootstrap interval, and a grade: similar (matched "
        "only) < same_direction (both causal, same sign) < equivalent (and the ratio's interval holds 1); opposite "
        "when both are causal with opposite signs. Where both sides tokenize alike, also steers the right model "
        "along the left feature's direction mapped into its space (patch-across). With dossier=NAME the grades are "
        "filed on the 'corresponds' claims. Starts a background job: minutes per pair on a CPU.",
        ValidateMatchesInput, ValidateMatchesOutput, validate_tool, _STARTS_JOB, "Validate matches with interventions",
    )


def _diff_params(state: ServerState, inp: DiffModelsInput) -> dict[str, Any]:
    if inp.dataset is not None and inp.pack is not None:
        raise ValidationError("give a pack or a dataset (with its criterion), not both")
    return {
        "base": inp.base, "tuned": inp.tuned,
        "hookpoints": inp.hookpoints, "features": inp.features, "pack": inp.pack,
        "criterion": inp.criterion or None, "dataset": optional_path(state, inp.dataset, "dataset"),
        "probes": inp.probes if inp.probes == "builtin" else optional_path(state, inp.probes, "probes"),
        "n_probes": inp.n_probes,
    }


def _diff_spec(state: ServerState) -> ToolSpec:
    async def diff_tool(inp: DiffModelsInput, ctx: Context) -> DiffModelsOutput:
        record = await wait_for(state, state.runner.submit("diff_models", _diff_params(state, inp)).job_id,
                                inp.wait_seconds, ctx)
        raw = _result_or_none(state, record)
        result = None if raw is None else DiffModelsResult(
            summary=raw["summary"], diff_json=state.uri(record.run_id, "diff.json"),
            diff_md=state.uri(record.run_id, "diff.md"))
        return DiffModelsOutput(job=job_view(record), result=result, resources=state.run_uris(record.run_id),
                                next_actions=for_job(state, record))

    return ToolSpec(
        "diff_models",
        "Diff a fine-tuned model against its base (same tokenizer and widths): harvest MLP neurons or residual "
        "dimensions of both on the same probe passages, select the features that appear (fire only in the "
        "fine-tune), vanish or change on one half of the probes and report them with 95% bootstrap intervals on "
        "the other half (correlational); with a pack or criterion, which criterion-relevant features moved and how "
        "the behaviour changed on held-out prompts. tuned='finetune:default' is the built-in CPU fine-tune of "
        "SmolLM2-135M on negative reviews. Starts a background job: a few minutes on a CPU.",
        DiffModelsInput, DiffModelsOutput, diff_tool, _STARTS_JOB, "Diff a model against its fine-tune",
    )


def _crosscoder_params(state: ServerState, inp: TrainCrosscoderInput) -> dict[str, Any]:
    return {
        "models": [m for m in inp.models], "hookpoints": inp.hookpoints,
        "corpus": inp.corpus if inp.corpus == "builtin" else optional_path(state, inp.corpus, "corpus"),
        "pack": inp.pack, "latent_dim": inp.latent_dim, "k": inp.k, "steps": inp.steps, "seed": inp.seed,
        "max_texts": inp.max_texts,
    }


def _crosscoder_spec(state: ServerState) -> ToolSpec:
    async def crosscoder_tool(inp: TrainCrosscoderInput, ctx: Context) -> TrainCrosscoderOutput:
        record = await wait_for(state, state.runner.submit("train_crosscoder",
                                                           _crosscoder_params(state, inp)).job_id,
                                inp.wait_seconds, ctx)
        raw = _result_or_none(state, record)
        result = None if raw is None else TrainCrosscoderResult(
            summary=raw["summary"], crosscoder=state.uri(record.run_id, Path(raw["crosscoder"]).name))
        return TrainCrosscoderOutput(job=job_view(record), result=result, resources=state.run_uris(record.run_id),
                                     next_actions=for_job(state, record))

    return ToolSpec(
        "train_crosscoder",
        "Train a BatchTopK crosscoder on paired activations: two models at one hookpoint (e.g. a base and its "
        "fine-tune; they must share a tokenizer and width) or one model at several hookpoints, on the same tokens. "
        "Saved in dictionary_learning's crosscoder layout (ae.pt + config.json). Every latent is checked for "
        "exclusivity to one source as the literature does: its relative decoder norm and Latent Scaling (beta "
        "ratios fitted on held-out tokens); a latent is called exclusive only when it passes both. With a pack, its "
        "latents are ranked against the criterion like any features (held-out association). Starts a background "
        "job: minutes on a CPU at the defaults.",
        TrainCrosscoderInput, TrainCrosscoderOutput, crosscoder_tool, _STARTS_JOB, "Train a crosscoder",
    )


def specs(state: ServerState) -> list[ToolSpec]:
    """The cross-model tools."""
    return [_validate_spec(state), _diff_spec(state), _crosscoder_spec(state)]
