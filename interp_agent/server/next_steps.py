"""What to call next: tool calls whose arguments are filled in from a job and its result.

Every tool result carries ``next_actions``; an agent can follow them without knowing the
tool sequence. They are built from the job's stored params and result, so ``inspect``,
``job_status`` and ``job_result`` suggest the same calls for the same job:

- working: ``job_status`` (and ``job_cancel``);
- completed, seen through ``job_status``: ``job_result``;
- completed otherwise: the kind's own next step (inspect -> intervene on its top features
  and directions, and ``feature_card`` on the top feature; intervene -> inspect again with
  the records and every intervention file so far; train_sae -> inspect its latent
  records; a publish dry run -> the upload);
- failed or cancelled: ``job_resume`` for resumable kinds, and ``list_artifacts`` (job.log).

A ``job_result`` is never suggested from inside a ``job_result``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from interp_agent.core.errors import ValidationError
from interp_agent.core.inspect.request import LIVE_BACKENDS, infer_backend
from interp_agent.jobs import RESUMABLE_KINDS, JobRecord
from interp_agent.server.models import NextAction
from interp_agent.server.state import ServerState

INTERVENE_TOP_K = 3
"""Top features of a report that the suggested intervene call tests (its contrast direction is added)."""


def call(tool: str, why: str, **arguments: Any) -> NextAction:
    """One suggested call; arguments that are None are left out."""
    return NextAction(tool=tool, arguments={k: v for k, v in arguments.items() if v is not None}, why=why)


def workspace_path(state: ServerState, path: str | Path | None) -> str | None:
    """A path as a tool argument: relative to the workspace when inside it, else as it is."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(state.workspace.resolve()))
    except ValueError:
        return str(path)


def for_job(state: ServerState, record: JobRecord, *, polled: bool = False) -> list[NextAction]:
    """The next calls for a job; ``polled``: seen through job_status (a completed job then points at job_result)."""
    job_id = record.job_id
    if record.state == "working":
        return [call("job_status", "poll every few seconds until state is completed", job_id=job_id),
                call("job_cancel", "stop the job", job_id=job_id)]
    if record.state == "completed":
        if polled:
            return [call("job_result", "the job's result", job_id=job_id)]
        after = _AFTER.get(record.kind)
        actions = after(state, record, state.runner.result(job_id) or {}) if after else []
        return actions + _dossier_actions(record)
    actions = []
    if record.kind in RESUMABLE_KINDS:
        actions.append(call("job_resume", "continue the job from its newest checkpoint", job_id=job_id))
    actions.append(call("list_artifacts", "the job's files; job.log says what happened", run_id=record.run_id))
    return actions


def prompt_arguments(state: ServerState, params: dict[str, Any]) -> dict[str, Any]:
    """The prompts of a job as arguments: its dataset (caller examples were written to one) or its pack."""
    if params.get("pack"):
        return {"pack": params["pack"]}
    return {"dataset": workspace_path(state, params.get("dataset")), "criterion": params.get("criterion") or None}


def _backend(params: dict[str, Any]) -> str | None:
    """The backend an inspect job ran (given, or inferred from its params)."""
    try:
        return params.get("backend") or infer_backend(params)
    except ValidationError:
        return None


def _after_inspect(state: ServerState, record: JobRecord, result: dict[str, Any]) -> list[NextAction]:
    params = record.params
    top = result.get("top") or []
    actions = []
    if top:
        actions.append(call("feature_card", "evidence of the top feature: statistics, examples, causal tests",
                            run_id=record.run_id, feature_id=top[0]["feature_id"]))
    if _backend(params) in LIVE_BACKENDS:
        actions.append(call(
            "intervene", f"test the top {INTERVENE_TOP_K} features and the contrast direction causally, with "
            "controls, on held-out prompts", model=params["model"], report=record.run_id,
            top_k=INTERVENE_TOP_K, sae=workspace_path(state, params.get("sae")), **prompt_arguments(state, params)))
    if _backend(params) == "hf" or (_backend(params) in LIVE_BACKENDS and params.get("sae")):
        actions.append(call(
            "explain", "say in words what the top features fire on, from a corpus, scored on held-out contexts; "
            "writes the report again with the explanations attached", model=params["model"], report=record.run_id,
            top_k=INTERVENE_TOP_K + 2, sae=workspace_path(state, params.get("sae"))))
    return actions


def _inspect_job(state: ServerState, report: str | None) -> JobRecord | None:
    """The inspect job whose run holds ``report`` (a report.json path), if it is one of this workspace's."""
    if not report:
        return None
    run_id = Path(report).parent.name
    try:
        record = state.runner.get(run_id)
    except ValidationError:
        return None
    return record if record.kind == "inspect" else None


def _after_intervene(state: ServerState, record: JobRecord, result: dict[str, Any]) -> list[NextAction]:
    params = record.params
    source = _inspect_job(state, params.get("report"))
    earlier = (source.params.get("interventions") or []) if source is not None else []
    files = [*([earlier] if isinstance(earlier, str) else earlier), result.get("interventions")]
    interventions = [workspace_path(state, f) for f in files if f]
    records = state.run_dir(source.run_id) / "records" if source is not None else None
    why = "rank again with the causal evidence of every intervention so far"
    if records is not None and records.exists():
        criterion = result.get("criterion") or params.get("criterion") or _report_criterion(params.get("report"))
        return [call("inspect", why, model=params["model"], backend="records", records=workspace_path(state, records),
                     criterion=criterion, interventions=interventions)]
    return [call("inspect", why, model=params["model"], backend="hf", interventions=interventions,
                 **prompt_arguments(state, params))]


def _report_criterion(report: str | None) -> str | None:
    """The criterion a report.json was ranked against."""
    import json

    if not report or not Path(report).is_file():
        return None
    return json.loads(Path(report).read_text(encoding="utf-8")).get("criterion")


def _after_train_sae(state: ServerState, record: JobRecord, result: dict[str, Any]) -> list[NextAction]:
    params = record.params
    records = (result.get("paths") or {}).get("records")
    if not records or not params.get("model"):
        return [call("list_artifacts", "the SAE's files: cfg.json, sae_weights.safetensors, metrics.json",
                     run_id=record.run_id)]
    criterion = params.get("criterion") or _pack_criterion(params.get("pack"))
    return [call("inspect", "rank the trained latents against the criterion", model=params["model"],
                 backend="records", records=workspace_path(state, records), criterion=criterion)]


def _after_harvest(state: ServerState, record: JobRecord, result: dict[str, Any]) -> list[NextAction]:
    folder = workspace_path(state, result.get("folder"))
    params = record.params
    actions = [call("train_sae", "train an SAE on the harvest's token activations", hookpoint=params["hookpoint"],
                    activations=[folder])]
    if result.get("records"):
        criterion = params.get("criterion") or _pack_criterion(params.get("pack"))
        actions.append(call("inspect", "rank the hookpoint's features on the harvest's per-prompt records",
                            model=params.get("model", "smollm2-135m"), backend="records", records=folder,
                            criterion=criterion))
    return actions


def _pack_criterion(pack: str | None) -> str | None:
    if not pack:
        return None
    from interp_agent.core.criteria import load_pack

    return load_pack(pack).criterion


def _after_publish(state: ServerState, record: JobRecord, result: dict[str, Any]) -> list[NextAction]:
    params = record.params
    if result.get("uploaded") or not result.get("dry_run", True):
        return []
    return [call("publish", "upload it (needs HF_TOKEN set where the server runs)",
                 path=workspace_path(state, params["path"]), repo_id=params["repo_id"],
                 repo_type=params.get("repo_type"), private=params.get("private"), dry_run=False)]


def _after_match(state: ServerState, record: JobRecord, result: dict[str, Any]) -> list[NextAction]:
    return [call("list_artifacts", "matches.md and matches.json of this run", run_id=record.run_id)]


def _after_explain(state: ServerState, record: JobRecord, result: dict[str, Any]) -> list[NextAction]:
    rows = (result.get("summary") or {}).get("features") or []
    if not rows:
        return [call("list_artifacts", "explain.json says why nothing was explained", run_id=record.run_id)]
    return [call("feature_evidence", "the first feature's top and quantile contexts with its firing tokens marked: "
                 "read them, write your own explanation, then score it with score_explanation",
                 run_id=record.run_id, feature_id=rows[0]["feature_id"])]


def _dossier_actions(record: JobRecord) -> list[NextAction]:
    """After a job that filed into a dossier: what its claims still lack."""
    path = record.params.get("dossier")
    if not path:
        return []
    return [call("plan_evidence", "what each claim of the dossier still lacks, and the calls that supply it",
                 dossier=Path(path).stem)]


def _after_investigate(state: ServerState, record: JobRecord, result: dict[str, Any]) -> list[NextAction]:
    """The dossier's plan: its first steps are the next calls (they file into the same dossier)."""
    steps = ((result.get("plan") or {}).get("steps") or [])[:2]
    return [NextAction(tool=s["tool"], arguments=relative_arguments(state, s["arguments"]),
                       why=s.get("why") or "raises a claim's grade") for s in steps]


def relative_arguments(state: ServerState, arguments: dict[str, Any]) -> dict[str, Any]:
    """Arguments whose absolute paths are made workspace paths (what the tools take)."""
    return {k: (workspace_path(state, v) if isinstance(v, str) and Path(v).is_absolute() else v)
            for k, v in arguments.items()}


_AFTER: dict[str, Callable[[ServerState, JobRecord, dict[str, Any]], list[NextAction]]] = {
    "inspect": _after_inspect, "intervene": _after_intervene, "train_sae": _after_train_sae,
    "publish": _after_publish, "match": _after_match, "explain": _after_explain, "investigate": _after_investigate,
    "harvest": _after_harvest,
}
"""The next calls after a completed job, by kind."""
