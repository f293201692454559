"""inspect and match: start background jobs, wait up to wait_seconds, return a handle or the result."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations

from interp_agent.core.criteria import from_examples
from interp_agent.core.criteria.packs import list_packs
from interp_agent.core.errors import ValidationError
from interp_agent.core.formats.prompts import write_scored_prompts
from interp_agent.core.inspect.request import infer_backend, params_read_by, path_params
from interp_agent.core.ranking.verdict import CONTROL_SPREAD_FACTOR, MIN_CAUSAL_EFFECT
from interp_agent.jobs import JobRecord
from interp_agent.server.models import (
    FeatureRow,
    InspectInput,
    InspectOutput,
    InspectResult,
    InterveneInput,
    InterveneOutput,
    InterveneResultModel,
    MatchInput,
    MatchOutput,
    MatchResult,
    SideSpec,
)
from interp_agent.server.next_steps import for_job
from interp_agent.server.registry import ToolSpec
from interp_agent.server.state import ServerState, job_view

_POLL_SECONDS = 0.1


async def wait_for(state: ServerState, job_id: str, wait_seconds: float, ctx: Context) -> JobRecord:
    """Wait up to ``wait_seconds`` for a job, sending progress notifications as it moves."""
    deadline = time.monotonic() + wait_seconds
    last: tuple[float, str] | None = None
    while True:
        record = state.runner.get(job_id)
        if (record.progress, record.message) != last:
            last = (record.progress, record.message)
            await ctx.report_progress(record.progress, 1.0, record.message)
        if record.terminal or time.monotonic() >= deadline:
            return record
        await anyio.sleep(_POLL_SECONDS)


def _uri(state: ServerState, record: JobRecord, path: str | None) -> str:
    return state.uri(record.run_id, Path(path).name) if path else ""


def _is_neuronpedia_ref(value: str) -> bool:
    from interp_agent.core.bridges.neuronpedia import parse_ref

    try:
        parse_ref(value)
    except ValidationError:
        return False
    return True


def inspect_result(state: ServerState, record: JobRecord, result: dict[str, Any]) -> InspectResult:
    """The compact inspect result of a finished job."""
    return InspectResult(
        synthetic=bool(result.get("synthetic", False)),
        summary=result.get("summary", {}),
        warnings=result.get("warnings", []),
        top=[FeatureRow(**row) for row in result.get("top", [])],
        directions=result.get("directions", []),
        report=_uri(state, record, result.get("report")),
        html=_uri(state, record, result.get("html")),
        csv=_uri(state, record, result.get("csv")) or None,
    )


def match_result(state: ServerState, record: JobRecord, result: dict[str, Any]) -> MatchResult:
    """The compact match result of a finished job."""
    return MatchResult(
        summary=result.get("summary", {}),
        notes=result.get("notes", []),
        matches=result.get("matches", [])[:10],
        matches_json=state.uri(record.run_id, "matches.json"),
        matches_md=state.uri(record.run_id, "matches.md"),
    )


_STARTS_JOB = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
"""Annotations of a tool that starts a background job."""
_READS_NETWORK = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
"""Starts a job that may read the network: Neuronpedia, pretrained SAEs by release, models by hub id."""


def optional_path(state: ServerState, value: str | None, field: str) -> str | None:
    """An optional path argument resolved inside the workspace (None stays None)."""
    return None if value is None else str(state.path(value, field))


def dataset_of(state: ServerState, inp: Any) -> str | None:
    """The dataset path, writing caller-given examples into the workspace when there are any."""
    if inp.positives is None and inp.negatives is None:
        return optional_path(state, inp.dataset, "dataset")
    if inp.dataset is not None or inp.pack is not None:
        raise ValidationError("give either positives/negatives, a dataset or a pack, not several")
    if not inp.criterion.strip():
        raise ValidationError("criterion is required with positives/negatives")
    cset = from_examples(inp.criterion, inp.positives or [], inp.negatives or [])
    digest = hashlib.sha256(json.dumps([inp.criterion, inp.positives, inp.negatives]).encode()).hexdigest()[:12]
    path = state.workspace / "inputs" / f"examples-{digest}.jsonl"
    write_scored_prompts(path, cset.prompts)
    return str(path)


def _inspect_params(state: ServerState, inp: InspectInput) -> dict[str, Any]:
    """The job's params: the request fields its backend reads, paths resolved inside the workspace."""
    params: dict[str, Any] = {"config": {"top_k": inp.top_k, "held_out_fraction": inp.held_out_fraction,
                                         "candidates": max(200, inp.top_k)}}
    given = inp.model_dump(exclude_none=True) | ({"dataset": "(examples)"} if inp.positives or inp.negatives else {})
    backend = inp.backend or infer_backend(given)
    for name in params_read_by(backend):
        if name not in InspectInput.model_fields:
            continue
        value = getattr(inp, name)
        if name == "dataset":
            value = dataset_of(state, inp)
        elif name == "neuronpedia":  # refs and URLs pass as they are; anything else is a file in the workspace
            if not value:
                continue
            value = [v if _is_neuronpedia_ref(v) else str(state.path(v, "neuronpedia")) for v in value]
        elif name == "interventions" and value is not None:
            value = [str(state.path(v, name)) for v in ([value] if isinstance(value, str) else value)]
        elif name in path_params():
            value = optional_path(state, value, name)
        params[name] = value
    params["backend"] = backend
    params["dossier"] = state.dossier_file(inp.dossier)
    return params


def report_path(state: ServerState, value: str, field: str) -> str:
    """A report argument as a report.json path: a run_id of an earlier inspect job, a folder or a file."""
    folder = state.workspace / "runs" / value
    if value and (folder / "report.json").is_file() and "/" not in value:
        return str(folder / "report.json")
    path = state.path(value, field)
    return str(path / "report.json" if path.is_dir() else path)


def _inspect_spec(state: ServerState) -> ToolSpec:
    """The inspect tool: rank features against a criterion in a background job."""

    async def inspect_tool(inp: InspectInput, ctx: Context) -> InspectOutput:
        record = await wait_for(state, state.runner.submit("inspect", _inspect_params(state, inp)).job_id,
                                inp.wait_seconds, ctx)
        raw = state.runner.result(record.job_id) if record.state == "completed" else None
        result = inspect_result(state, record, raw) if raw is not None else None
        return InspectOutput(
            job=job_view(record), result=result, resources=state.run_uris(record.run_id),
            next_actions=for_job(state, record),
        )

    return ToolSpec(
        "inspect",
        "Rank a model's features against a natural-language criterion, with held-out and causal evidence. "
        "Use after profile_env, with a live model on a prompt set (backend='hf': 'smollm2-135m' is embedded; "
        "dataset or pack), activation records ('records'), a feature dump ('features'), Neuronpedia feature cards "
        "('neuronpedia': refs like 'gpt2-small@6-res_scefr-ajt:650' read the network; imported labels, examples, "
        "logit effects and density, no criterion measurement unless records are given), a pretrained SAE's latents "
        "harvested on the model ('saelens': saelens_release + saelens_id from the hub or its cache, or "
        "sae=<folder>) or generated demo data "
        "('toy', labelled synthetic). Starts a background job (seconds for thousands of "
        "rows; about 1 s per 200k records from Parquet, 5 s from JSONL) and returns its handle at once, or the "
        "result if it finishes within wait_seconds. Its top rows give held-out r and AUROC with 95% intervals; a "
        "row's notes say when its held-out prompts cannot exclude chance and how many a test would need. The "
        "report (report.json, report.html) is an MCP resource. "
        "Next: read the report, add intervention records, or match against another model's report.",
        InspectInput, InspectOutput, inspect_tool, _READS_NETWORK, "Inspect features against a criterion",
    )


def _intervene_spec(state: ServerState) -> ToolSpec:
    """The intervene tool: test features causally on a live model, with controls, in a background job."""

    async def intervene_tool(inp: InterveneInput, ctx: Context) -> InterveneOutput:
        params = {
            "model": inp.model, "criterion": inp.criterion or None, "dataset": dataset_of(state, inp),
            "pack": inp.pack, "report": report_path(state, inp.report, "report") if inp.report else None,
            "features": inp.features, "top_k": inp.top_k, "mode": inp.mode, "strengths": inp.strengths,
            "targets": inp.targets, "scorer": inp.scorer, "sae": optional_path(state, inp.sae, "sae"),
            "dossier": state.dossier_file(inp.dossier),
        }
        record = await wait_for(state, state.runner.submit("intervene", params).job_id, inp.wait_seconds, ctx)
        raw = state.runner.result(record.job_id) if record.state == "completed" else None
        result = None
        if raw is not None:
            result = InterveneResultModel(
                scorer=raw["scorer"], warnings=raw.get("warnings", []), features=raw["features"],
                interventions=state.uri(record.run_id, "interventions.jsonl"),
                summary=state.uri(record.run_id, "summary.json"),
            )
        return InterveneOutput(
            job=job_view(record), result=result, resources=state.run_uris(record.run_id),
            next_actions=for_job(state, record),
        )

    return ToolSpec(
        "intervene",
        "Test features causally on a live model (smollm2-135m embedded, or a local/hub model): ablate, "
        "mean_ablate, clamp, steer or patch each feature (a report's top features plus its contrast direction, "
        "or given ids) with generated controls (random directions of matched norm, random features of matched "
        "spread). The strength is chosen on calibration prompts within a KL budget; the effect on the behaviour "
        "score (next-token probability of target tokens) is measured on held-out prompts with a 95% interval "
        "(removals on positives, pushes toward the criterion on negatives), side effects as KL on the other "
        "class. A verdict of 'causal' needs the 95% interval of the held-out effect to exclude 0, the effect to "
        f"exceed every control and {CONTROL_SPREAD_FACTOR:g}x the controls' RMS effect, and |effect| >= "
        f"{MIN_CAUSAL_EFFECT:g} on the 0..1 behaviour-score scale; smaller significant effects are 'weak' "
        "(verdict_reason says which test failed), an edit that changed no prompt's score is 'no_effect' with a note; "
        "each feature reports its stability across the strengths tried (the grid widens x2..x64 on calibration "
        "prompts when the chosen strength uses under 10% of the KL budget) and a one-line confidence to quote. "
        "Starts a background job (a few minutes on a CPU for 4 features). "
        "Next: feed interventions.jsonl back to inspect.",
        InterveneInput, InterveneOutput, intervene_tool, _READS_NETWORK, "Intervene on features with controls",
    )


def _side_params(state: ServerState, side: SideSpec | None, field: str) -> dict[str, Any] | None:
    """A side of an activation match as the job takes it: its SAE folder resolved inside the workspace."""
    if side is None:
        return None
    return side.model_dump(exclude_none=True) | ({"sae": optional_path(state, side.sae, f"{field}.sae")}
                                                 if side.sae else {})


def _match_params(state: ServerState, inp: MatchInput) -> dict[str, Any]:
    """The match job's params; fingerprint takes two reports, activations two sides."""
    if inp.method == "fingerprint":
        if inp.left is None or inp.right is None or inp.left_side or inp.right_side:
            raise ValidationError("method='fingerprint' matches two reports: give left and right (inspect run_ids or "
                                  "report.json paths), not left_side/right_side",
                                  hint="or method='activations' with left_side and right_side")
        return {"left": report_path(state, inp.left, "left"), "right": report_path(state, inp.right, "right"),
                "min_similarity": inp.min_similarity, "use_text": inp.use_text,
                "dossier": state.dossier_file(inp.dossier)}
    if inp.left_side is None or inp.right_side is None or inp.left or inp.right:
        raise ValidationError("method='activations' matches two sides: give left_side and right_side (model, "
                              "hookpoint, features), not left/right reports",
                              hint="e.g. left_side={'hookpoint': 'blocks.10.hook_resid_post'}, "
                                   "right_side={'hookpoint': 'blocks.15.hook_resid_post'}")
    probes = inp.probes if inp.probes == "builtin" or inp.probes in list_packs() else str(state.path(inp.probes,
                                                                                                   "probes"))
    return {"method": "activations", "left_side": _side_params(state, inp.left_side, "left_side"),
            "right_side": _side_params(state, inp.right_side, "right_side"), "probes": probes,
            "pooling": inp.pooling, "max_prompts": inp.max_prompts, "min_similarity": inp.min_similarity,
            "dossier": state.dossier_file(inp.dossier)}


def _match_spec(state: ServerState) -> ToolSpec:
    """The match tool: match the features of two reports one to one in a background job."""

    async def match_tool(inp: MatchInput, ctx: Context) -> MatchOutput:
        params = _match_params(state, inp)
        record = await wait_for(state, state.runner.submit("match", params).job_id, inp.wait_seconds, ctx)
        raw = state.runner.result(record.job_id) if record.state == "completed" else None
        return MatchOutput(
            job=job_view(record), result=match_result(state, record, raw) if raw is not None else None,
            resources=state.run_uris(record.run_id),
            next_actions=for_job(state, record),
        )

    return ToolSpec(
        "match",
        "Match features one to one (Hungarian assignment), by one of two methods. fingerprint (default): two "
        "inspection reports (left/right: run_ids of earlier inspect jobs or report.json paths) compared on their "
        "saved evidence (activation on shared probe prompts, decoder direction, label text via all-MiniLM-L6-v2, "
        "causal effects on named measures); a few seconds. activations: two sides (left_side/right_side: a model, "
        "a hookpoint and its dims, neurons or SAE latents; two models, two layers, two SAEs of one layer) harvested "
        "on one probe set and matched by activation correlation, with mutual nearest neighbours, a null from "
        "re-paired probe prompts (above_null) and each pair's correlation on held-out probes; a minute or two on a "
        "CPU. Starts a background job. Next: read matches.md; validate_matches tests the pairs with interventions.",
        MatchInput, MatchOutput, match_tool, _STARTS_JOB, "Match features across models",
    )


def specs(state: ServerState) -> list[ToolSpec]:
    """The analysis tools."""
    return [_inspect_spec(state), _intervene_spec(state), _match_spec(state)]
