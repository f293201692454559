"""The criterion-authoring tools: compile_criterion (the brief, or a gated prompt set) and score_prompts.

The numerics live in :mod:`interp_agent.core.criteria.authoring`; these handlers resolve workspace paths
(reads may come from read roots, writes stay inside the workspace) and shape the compact outputs.
"""

from __future__ import annotations

import re
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations

from interp_agent.server.criteria_models import (
    CompileCriterionInput,
    CompileCriterionOutput,
    ScorePromptsInput,
    ScorePromptsOutput,
)
from interp_agent.server.next_steps import call, workspace_path
from interp_agent.server.registry import ToolSpec
from interp_agent.server.state import ServerState

_WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def _out_folder(state: ServerState, value: str | None, default: str) -> Path:
    """A folder to write, inside the workspace (never a read root)."""
    return state.output_path(value or default, "out")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")[:48] or "criterion"


def _compile_now(state: ServerState, inp: CompileCriterionInput) -> CompileCriterionOutput:
    from interp_agent.core.criteria.authoring import compile_criterion, criterion_brief

    given = inp.positives or inp.negatives or inp.prompts
    if inp.brief_only or (not given and inp.source == "agent"):
        return CompileCriterionOutput(brief=criterion_brief(inp.criterion))
    template = inp.template
    if isinstance(template, str):
        template = str(state.path(template, "template"))
    out = _out_folder(state, inp.out, f"criteria/{_slug(inp.criterion)}")
    compiled = compile_criterion(
        inp.criterion, positives=inp.positives, negatives=inp.negatives,
        prompts=str(state.path(inp.prompts, "prompts")) if inp.prompts else None, source=inp.source,
        template=template, n_per_class=inp.n_per_class, seed=inp.seed, out=out, allow_failures=inp.allow_failures,
        expected_words=tuple(inp.expected_words))
    payload = compiled.to_json()
    dataset = workspace_path(state, out / "prompts.jsonl")
    return CompileCriterionOutput(
        passed=compiled.passed, failed_gates=compiled.failed_gates, gates=payload["gates"], counts=payload["counts"],
        made=compiled.made, notes=list(compiled.notes), dataset=dataset,
        criterion_set=workspace_path(state, out / "criterion_set.json"),
        next_actions=[call("score_prompts", "score other prompts against this criterion with a classifier learnt "
                                            "from this set (add prompts: the file to score)",
                           train=workspace_path(state, out), criterion=inp.criterion)])


def _compile_spec(state: ServerState) -> ToolSpec:
    async def compile_criterion_tool(inp: CompileCriterionInput, ctx: Context) -> CompileCriterionOutput:
        return await anyio.to_thread.run_sync(lambda: _compile_now(state, inp))

    return ToolSpec(
        "compile_criterion",
        "Turn a criterion in words into a scored, balanced, validated prompt set. Call it first with the criterion "
        "alone: it returns the brief (how many prompts of each class, and every gate with its threshold). Then send "
        "your positives and negatives (or a prompts file), or source='model' (the embedded SmolLM2-135M-Instruct "
        "writes candidates, filtered by your seed examples) or source='template'. Gates: exact and near duplicates "
        "(MiniLM cosine), class balance, length confound (AUROC of words/tokens alone), lexical confound (tokens "
        "unrelated to the criterion that alone separate the classes), held-out agreement of a MiniLM classifier. A "
        "failing set comes back as an error naming each gate and up to 5 prompts, unless allow_failures. Writes "
        "prompts.jsonl (pass it as dataset to inspect) and criterion_set.json. Seconds on a CPU; about a minute "
        "with source='model'.",
        CompileCriterionInput, CompileCriterionOutput, compile_criterion_tool, _WRITES, "Author a criterion set")


def _score_now(state: ServerState, inp: ScorePromptsInput) -> ScorePromptsOutput:
    from interp_agent.core.criteria.authoring import score_prompts

    src = state.path(inp.prompts, "prompts")
    train = str(state.path(inp.train, "train")) if inp.train else None
    out = _out_folder(state, inp.out, workspace_path(state, src.with_name(src.stem + ".scored")) or "scored")
    res = score_prompts(src, inp.criterion, scorer=inp.scorer, train=train, binarize=inp.binarize, out=out)
    scored = workspace_path(state, out / "scored_prompts.jsonl") or str(out / "scored_prompts.jsonl")
    return ScorePromptsOutput(summary=res.summary, held_out_accuracy=res.summary["held_out_accuracy"],
                              rows=list(res.rows[:inp.max_rows]), scored_prompts=scored)


def _score_spec(state: ServerState) -> ToolSpec:
    async def score_prompts_tool(inp: ScorePromptsInput, ctx: Context) -> ScorePromptsOutput:
        return await anyio.to_thread.run_sync(lambda: _score_now(state, inp))

    return ToolSpec(
        "score_prompts",
        "Score every prompt of a file (JSONL with text, or one prompt a line) against a criterion with a MiniLM "
        "text classifier learnt from labelled prompts: a built-in pack (scorer=<pack name>), a compile_criterion "
        "folder or a scored-prompts file (train). Reports the classifier's held-out accuracy and AUROC on labelled "
        "prompts it was not fitted on, and refuses when it is near chance (held-out AUROC < 0.6). binarize turns "
        "probabilities into 0/1 labels. Writes scored_prompts.jsonl (usable as a dataset) and score_summary.json. "
        "Seconds on a CPU.",
        ScorePromptsInput, ScorePromptsOutput, score_prompts_tool, _WRITES, "Score prompts against a criterion")


def specs(state: ServerState) -> list[ToolSpec]:
    """The criterion-authoring tools."""
    return [_compile_spec(state), _score_spec(state)]
