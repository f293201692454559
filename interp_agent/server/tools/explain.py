"""The explanation tools: explain (a job), feature_evidence, score_explanation and judge_explanation.

The agent is the main explainer: ``feature_evidence`` shows a feature's explain-split contexts
with the firing tokens marked; ``score_explanation`` scores the agent's explanation on held-out
contexts it was never shown (the embedding score at once) and hands it a blinded detection task;
``judge_explanation`` grades the answers. Answer keys stay in ``WORKSPACE/.explain_tasks/``, which
no tool lists or serves. Every score is written to the run's ``explanations.jsonl`` and label table.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations

from interp_agent.core.artifacts import write_json
from interp_agent.core.errors import ValidationError, arg
from interp_agent.jobs import JobRecord
from interp_agent.server.explain_models import (
    ExplainInput,
    ExplainOutput,
    ExplainResult,
    FeatureEvidenceInput,
    FeatureEvidenceOutput,
    JudgeExplanationInput,
    JudgeExplanationOutput,
    JudgeTaskView,
    ScoreExplanationInput,
    ScoreExplanationOutput,
)
from interp_agent.server.next_steps import call, for_job
from interp_agent.server.registry import ToolSpec
from interp_agent.server.state import ServerState, job_view
from interp_agent.server.tools.analysis import report_path, wait_for

TASKS_DIR = ".explain_tasks"
"""Workspace folder of answer keys: outside runs/, so no resource or listing shows them."""
_READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
_WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
_JOB = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)


def _sae_path(state: ServerState, value: str | None) -> str | None:
    if value is None:
        return None
    run = state.workspace / "runs" / value
    if "/" not in value and (run / "cfg.json").is_file():
        return str(run)
    return str(state.path(value, "sae"))


def _explain_params(state: ServerState, inp: ExplainInput) -> dict[str, Any]:
    corpus = inp.corpus
    if corpus not in ("builtin", "general_en") and not corpus.startswith("hf:"):
        corpus = str(state.path(corpus, "corpus"))
    return {
        "model": inp.model, "sae": _sae_path(state, inp.sae), "hookpoint": inp.hookpoint,
        "feature_ids": inp.feature_ids, "n_features": inp.n_features,
        "report": report_path(state, inp.report, "report") if inp.report else None, "top_k": inp.top_k,
        "corpus": corpus, "text_field": inp.text_field, "max_contexts": inp.max_contexts,
        "context_length": inp.context_length, "explainer": inp.explainer, "scorers": list(inp.scorers),
        "judge": inp.judge, "seed": inp.seed, "dossier": state.dossier_file(inp.dossier),
    }


def explain_result(state: ServerState, record: JobRecord, result: dict[str, Any]) -> ExplainResult:
    """The compact result of a finished explain job."""
    return ExplainResult(summary=result.get("summary", {}), explain_json=state.uri(record.run_id, "explain.json"),
                         html=state.uri(record.run_id, "report.html"))


def _explain_spec(state: ServerState) -> ToolSpec:
    async def explain_tool(inp: ExplainInput, ctx: Context) -> ExplainOutput:
        record = await wait_for(state, state.runner.submit("explain", _explain_params(state, inp)).job_id,
                                inp.wait_seconds, ctx)
        raw = state.runner.result(record.job_id) if record.state == "completed" else None
        return ExplainOutput(job=job_view(record), result=explain_result(state, record, raw) if raw else None,
                             resources=state.run_uris(record.run_id), next_actions=for_job(state, record))

    return ToolSpec(
        "explain",
        "Say in words what features are, from evidence on a corpus, and check it: harvests a corpus once (the "
        "built-in generated English by default) for an SAE's latents, a hookpoint's basis features or a report's "
        "top features, keeping per feature its top, quantile-stratified and random non-firing contexts (half the "
        "contexts are held out before anything is seen), density, histogram and the tokens it promotes. With "
        "explainer='local' it writes offline token-statistics explanations and scores them on held-out contexts "
        "(embedding AUROC with a bootstrap interval, next to a random other feature's explanation and shuffled "
        "labels). The best explainer is you: after this job, call feature_evidence, write an explanation, and "
        "score it with score_explanation. Starts a background job (about a minute per 1,000 contexts on a CPU).",
        ExplainInput, ExplainOutput, explain_tool, _JOB, "Explain features from corpus evidence")


# --- the run's evidence and explanations ---------------------------------------------------


def _run_folder(state: ServerState, run_id: str) -> Path:
    folder = state.run_dir(run_id)
    if not (folder / "evidence" / "manifest.json").is_file():
        raise ValidationError(f"{arg('run_id', run_id)} has no evidence/ folder",
                              hint="give the run_id of a completed explain job (job_list shows them)")
    return folder


def _evidence(folder: Path, feature_id: str | None) -> Any:
    from interp_agent.core.explain.evidence import read_evidence

    return read_evidence(folder / "evidence", feature_ids=None if feature_id is None else [feature_id])


def _explained(folder: Path) -> dict[str, Any]:
    from interp_agent.core.explain.explanations import iter_explanations

    path = folder / "explanations.jsonl"
    if not path.is_file():
        return {}
    return {_key(item): item for item in iter_explanations(path)}


def _key(item: Any) -> str:
    return f"{item.explanation.feature_id}#{item.explanation.author.kind}:{item.explanation.author.name}"


def _save(folder: Path, explained: dict[str, Any], evidence: Any) -> None:
    """Write the run's explanations, label table and report.html again (an agent's explanation shows on its card)."""
    from interp_agent.core.artifacts import write_text
    from interp_agent.core.explain.explanations import write_explanations
    from interp_agent.core.explain.labels import write_label_table
    from interp_agent.core.reports.explain_html import render_explain_html
    from interp_agent.core.workflows.explain import MAX_CARDS

    write_explanations(folder / "explanations.jsonl", explained.values())
    write_label_table(folder / "labels.parquet", explained.values())
    by_feature = {item.explanation.feature_id: item for item in explained.values()}
    page = render_explain_html(evidence, by_feature, feature_ids=list(by_feature)[:MAX_CARDS])
    write_text(folder / "report.html", page)


def _feature_evidence_spec(state: ServerState) -> ToolSpec:
    async def feature_evidence(inp: FeatureEvidenceInput, ctx: Context) -> FeatureEvidenceOutput:
        from interp_agent.core.explain.explainers import evidence_view

        folder = _run_folder(state, inp.run_id)
        explained = _explained(folder)
        fid = inp.feature_id or next((i.explanation.feature_id for i in explained.values()), None)
        evidence = await anyio.to_thread.run_sync(lambda: _evidence(folder, fid))
        if fid is None:
            fid = next(iter(evidence.features))
        feature = evidence.feature(fid)
        view = evidence_view(feature, evidence.contexts, max_top=inp.max_examples, max_quantile=inp.max_examples)
        mine = [_item_json(i) for i in explained.values() if i.explanation.feature_id == fid]
        return FeatureEvidenceOutput(evidence=view, explanations=mine, next_actions=[call(
            "score_explanation", "score your explanation of this feature on held-out contexts (add explanation: "
            "what the marked tokens and contexts have in common, in a phrase)", run_id=inp.run_id, feature_id=fid)])

    return ToolSpec(
        "feature_evidence",
        "One feature's evidence from a finished explain job, compact enough to read: density, activations, its "
        "top and quantile-stratified contexts from the explain split with the firing tokens marked «like this», "
        "and the tokens it promotes and suppresses. Read it, write what the feature fires on in a phrase, and "
        "send it to score_explanation. Held-out contexts are never shown here: they are what scores you.",
        FeatureEvidenceInput, FeatureEvidenceOutput, feature_evidence, _READ, "Evidence of one feature")


def _item_json(item: Any) -> dict[str, Any]:
    from interp_agent.core.explain.explanations import to_json

    return to_json(item)


# --- scoring the agent's explanation ---------------------------------------------------------


def _task_path(state: ServerState, task_id: str) -> Path:
    if not task_id.replace("-", "").replace("_", "").isalnum():
        raise ValidationError(f"{arg('task_id', task_id)} is not a task id", hint="use the task_id score_explanation "
                              "returned")
    return state.workspace / TASKS_DIR / f"{task_id}.json"


def _score_now(state: ServerState, inp: ScoreExplanationInput) -> ScoreExplanationOutput:
    from interp_agent.core.explain.explanations import Author, Explanation, ScoredExplanation
    from interp_agent.core.explain.scorers import ExplainScorer, MemoEncoder
    from interp_agent.core.explain.scoring import detection_task
    from interp_agent.core.matching.text import load_text_encoder

    folder = _run_folder(state, inp.run_id)
    evidence = _evidence(folder, None)
    feature = evidence.feature(inp.feature_id)
    explained = _explained(folder)
    shown = tuple(sorted({e.context for e in feature.examples if e.split == "explain"}))
    explanation = Explanation(inp.feature_id, inp.explanation, Author("agent", inp.author), shown)
    pool = {i.explanation.feature_id: i.explanation.text for i in explained.values()}
    scorer = ExplainScorer(evidence, ["embedding"], encoder=MemoEncoder(load_text_encoder()), pool=pool)
    scores = scorer.score(explanation)
    if inp.judge == "model":
        from interp_agent.core.explain.judges import ModelJudge, run_judge
        from interp_agent.core.models.loading import load_model

        null_feature, null_text = scorer.null_for(inp.feature_id)
        task, key = detection_task(feature, evidence.contexts, inp.explanation, n_per_class=inp.n_per_class,
                                   shown=shown)
        scores += (run_judge(ModelJudge(load_model(evidence.manifest.model)), task, key, null_text=null_text,
                             null_feature=null_feature),)
    item = ScoredExplanation(explanation, scores)
    explained[_key(item)] = item
    _save(folder, explained, evidence)
    view = _task(state, inp, scorer, feature, evidence, shown) if inp.judge == "agent" else None
    emb = item.score("embedding")
    next_actions = [] if view is None else [call(
        "judge_explanation", "grade your blinded detection answers (add answers: item_id -> 1 or 0 for every item; "
        "null_answers for the null explanation)", task_id=view.task_id)]
    return ScoreExplanationOutput(feature_id=inp.feature_id, scores=[asdict(s) for s in scores],
                                  beats_random=None if emb is None else emb.beats_random, task=view,
                                  dossier=file_scores(state, inp.dossier, folder), next_actions=next_actions)


def file_scores(state: ServerState, dossier: str | None, folder: Path) -> dict[str, Any] | None:
    """File the run's explanations and their scores (explanations.jsonl) into ``dossier``; None without one."""
    if dossier is None:
        return None
    from interp_agent.core.dossier import DossierStore, file_run

    store = DossierStore.open(Path(str(state.dossier_file(dossier))))
    return file_run(store, "explain", folder / "explanations.jsonl", run_id=folder.name).to_dict()


def _task(state: ServerState, inp: ScoreExplanationInput, scorer: Any, feature: Any, evidence: Any,
          shown: tuple[int, ...]) -> JudgeTaskView:
    from interp_agent.core.explain.scoring import detection_task

    null_feature, null_text = scorer.null_for(inp.feature_id)
    task, key = detection_task(feature, evidence.contexts, inp.explanation, n_per_class=inp.n_per_class, shown=shown)
    path = _task_path(state, task.task_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"run_id": inp.run_id, "author": inp.author, "task": asdict(task), "key": asdict(key),
                      "null_text": null_text, "null_feature": null_feature})
    return JudgeTaskView(task_id=task.task_id, instructions=task.instructions, explanation=task.explanation,
                         items=[{"item_id": i.item_id, "text": i.text} for i in task.items], null_explanation=null_text)


def _score_spec(state: ServerState) -> ToolSpec:
    async def score_explanation(inp: ScoreExplanationInput, ctx: Context) -> ScoreExplanationOutput:
        from interp_agent.core.explain.explanations import check_explanation_text

        check_explanation_text(inp.explanation)
        return await anyio.to_thread.run_sync(lambda: _score_now(state, inp))

    return ToolSpec(
        "score_explanation",
        "Score an explanation of a feature (yours, usually) on held-out contexts of an explain job that no "
        "explainer was shown: the embedding score at once (AUROC of all-MiniLM-L6-v2 similarity between the "
        "explanation and held-out activating vs non-firing contexts, bootstrap 95% interval, next to a random other "
        "feature's explanation and shuffled labels), and with judge='agent' a blinded detection task: shuffled "
        "held-out contexts to answer 1 (fits the explanation) or 0, graded by judge_explanation. The first call "
        "loads the sentence encoder (a few seconds). Scores are saved to the run's explanations.jsonl.",
        ScoreExplanationInput, ScoreExplanationOutput, score_explanation, _WRITES, "Score an explanation")


def _grade(state: ServerState, inp: JudgeExplanationInput) -> JudgeExplanationOutput:
    from interp_agent.core.explain.explanations import ScoredExplanation
    from interp_agent.core.explain.scoring import AnswerKey, JudgeItem, JudgeTask, grade

    path = _task_path(state, inp.task_id)
    if not path.is_file():
        raise ValidationError(f"{arg('task_id', inp.task_id)} is not a pending detection task",
                              hint="call score_explanation with judge='agent' to get one")
    saved = json.loads(path.read_text())
    raw = saved["task"]
    task = JudgeTask(raw["task_id"], raw["method"], raw["feature_id"], raw["explanation"],
                     tuple(JudgeItem(**i) for i in raw["items"]), raw["instructions"])
    key = AnswerKey(**saved["key"])
    score = grade(task, key, inp.answers, judge="agent", null_answers=inp.null_answers,
                  null_feature=saved["null_feature"] if inp.null_answers is not None else None)
    folder = _run_folder(state, saved["run_id"])
    explained = _explained(folder)
    match = next((k for k, i in explained.items() if i.explanation.feature_id == task.feature_id
                  and i.explanation.text == task.explanation), None)
    if match is not None:
        old = explained[match]
        explained[match] = ScoredExplanation(old.explanation, (*old.scores, score))
        _save(folder, explained, _evidence(folder, None))
    path.unlink(missing_ok=True)
    return JudgeExplanationOutput(feature_id=task.feature_id, score=asdict(score),
                                  dossier=file_scores(state, inp.dossier, folder), next_actions=[call(
        "feature_evidence", "the evidence of this feature and every explanation of it with its scores",
        run_id=saved["run_id"], feature_id=task.feature_id)])


def _judge_spec(state: ServerState) -> ToolSpec:
    async def judge_explanation(inp: JudgeExplanationInput, ctx: Context) -> JudgeExplanationOutput:
        return await anyio.to_thread.run_sync(lambda: _grade(state, inp))

    return ToolSpec(
        "judge_explanation",
        "Grade your answers to a blinded detection task from score_explanation: answers maps every item_id to 1 "
        "(the explanation fits the text) or 0 (it does not), or a probability; null_answers, the same items judged "
        "against the task's null_explanation, gives the random-explanation null. Returns balanced accuracy, F1 and "
        "AUROC with bootstrap intervals (judge 'agent'), saved with the explanation. A task is graded once.",
        JudgeExplanationInput, JudgeExplanationOutput, judge_explanation, _WRITES, "Grade a detection task")


def specs(state: ServerState) -> list[ToolSpec]:
    """The explanation tools."""
    return [_explain_spec(state), _feature_evidence_spec(state), _score_spec(state), _judge_spec(state)]
