"""Input and output models of the criterion-authoring tools: compile_criterion and score_prompts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from interp_agent.server.models import NEXT_ACTIONS, NextAction, ToolInput


class CompileCriterionInput(ToolInput):
    criterion: str = Field(
        min_length=1, max_length=500, description="The criterion in words, e.g. 'the text is written in French'"
    )
    positives: list[str] | None = Field(
        default=None,
        max_length=2000,
        description="Texts where the criterion holds "
        "(source 'agent'), or seed examples that filter generated candidates "
        "(source 'model'). With no prompts at all the tool returns the brief only",
    )
    negatives: list[str] | None = Field(default=None, max_length=2000, description="Texts where it does not hold")
    prompts: str | None = Field(
        default=None,
        description="Workspace path of a scored-prompts JSONL file (criterion_score "
        "0/1) to gate instead of positives/negatives; gate messages quote its lines",
    )
    source: Literal["agent", "model", "template"] = Field(
        default="agent",
        description="agent: the texts given; model: the "
        "embedded SmolLM2-135M-Instruct writes candidates with its "
        "chat template (seeded sampling, about 1 s a candidate on a "
        "CPU; origin generated); template: expand template",
    )
    template: str | dict[str, Any] | None = Field(
        default=None,
        description="source 'template': a workspace path of a "
        "JSON/YAML spec, or the spec itself: {slots: {name: [values]}, "
        "positive: [patterns with {name}], negative: [...]}",
    )
    n_per_class: int = Field(default=40, ge=1, le=500, description="Prompts of each class to generate or expand")
    seed: int = Field(default=0, description="Seeds sampling and template expansion")
    expected_words: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Words the criterion is about; they may separate the classes without failing the lexical gate",
    )
    out: str | None = Field(
        default=None,
        description="Workspace folder for prompts.jsonl and criterion_set.json (replaced); "
        "default criteria/<slug of the criterion>",
    )
    allow_failures: bool = Field(
        default=False,
        description="Keep a set that fails gates (failures recorded) instead of "
        "returning an error that names the gates and prompts",
    )
    brief_only: bool = Field(default=False, description="Return the brief (what a good set needs) and nothing else")


class CompileCriterionOutput(BaseModel):
    brief: dict[str, Any] | None = Field(
        default=None,
        description="What a good set needs: per-class counts, each gate with "
        "its threshold; present when no prompts were given or brief_only",
    )
    passed: bool | None = Field(default=None, description="Whether every gate passed (None: brief only)")
    failed_gates: list[str] = Field(default_factory=list, description="Names of failed gates (allow_failures)")
    gates: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Each gate: gate, passed, value, "
        "threshold, rule, detail, extra and up to 5 offenders {index, prompt_id, "
        "line, text, why}",
    )
    counts: dict[str, Any] | None = Field(default=None, description="total, positive, negative and by_origin")
    made: dict[str, Any] | None = Field(
        default=None,
        description="How the set was made: source, seed, model and sampling, "
        "template hash, the generation filter's record",
    )
    notes: list[str] = Field(default_factory=list, description="Caveats about the set")
    dataset: str | None = Field(
        default=None, description="Workspace path of prompts.jsonl: pass it as dataset to inspect"
    )
    criterion_set: str | None = Field(default=None, description="Workspace path of criterion_set.json")
    next_actions: list[NextAction] = Field(default_factory=list, description=NEXT_ACTIONS)


class ScorePromptsInput(ToolInput):
    prompts: str = Field(
        min_length=1,
        description="Workspace path of the prompts to score: JSONL (objects with "
        "text, optional prompt_id and criterion_score) or plain text, one prompt a line",
    )
    criterion: str | None = Field(
        default=None, max_length=500, description="The criterion in words (default: the pack's or the compiled set's)"
    )
    scorer: str = Field(
        default="classifier",
        description="'classifier' (a MiniLM classifier learnt from train) or the name of a built-in pack to learn from",
    )
    train: str | None = Field(
        default=None,
        description="Workspace path of labelled prompts: a scored-prompts JSONL or a compile_criterion output folder",
    )
    binarize: float | None = Field(default=None, ge=0.0, le=1.0, description="Write 0/1 labels at this probability")
    out: str | None = Field(
        default=None,
        description="Workspace folder for scored_prompts.jsonl and score_summary.json; "
        "default beside the prompts file: <name>.scored/",
    )
    max_rows: int = Field(default=20, ge=0, le=200, description="Scored rows returned inline (all are in the file)")


class ScorePromptsOutput(BaseModel):
    summary: dict[str, Any] = Field(
        description="criterion, scorer with its held-out report (accuracy, AUROC, "
        "threshold, n), counts, agreement with the file's own labels on prompts not "
        "learnt from"
    )
    held_out_accuracy: float = Field(
        description="Accuracy of the classifier on labelled prompts it was not fitted on, in [0, 1]"
    )
    rows: list[dict[str, Any]] = Field(
        description="The first max_rows scored prompts: prompt_id, text, criterion_score, probability, in_training"
    )
    scored_prompts: str = Field(description="Workspace path of scored_prompts.jsonl (scored-prompts format)")
    next_actions: list[NextAction] = Field(default_factory=list, description=NEXT_ACTIONS)
