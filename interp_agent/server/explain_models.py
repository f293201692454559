"""Input and output models of the explanation tools: explain, feature_evidence, score_explanation, judge_explanation."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from interp_agent.server.models import (
    DOSSIER_NAME_PATTERN,
    NEXT_ACTIONS,
    EvidenceJobInput,
    JobView,
    NextAction,
    ToolInput,
)

_METRIC = "{value, ci95: [low, high]} (bootstrap 95% interval)"
_FILE_INTO = ("Name of a dossier to file the explanation's scores into (a 'means' claim at the explained rung); "
              "see the dossier tool")
_FILED = "What was filed into the dossier (claims added or updated, their grades), when one was named"


class ExplainInput(EvidenceJobInput):
    model: str = Field("smollm2-135m", min_length=1, description="smollm2-135m (embedded), a local folder or a hub id")
    sae: str | None = Field(None, description="SAE folder (workspace path, e.g. runs/<run_id> of a train_sae job) "
                            "whose latents to explain")
    hookpoint: str | None = Field(None, description="Hookpoint whose basis features (L{layer}:D{i} residual dims, "
                                  "L{layer}:N{i} MLP neurons) to explain, e.g. blocks.15.hook_resid_post; default: "
                                  "the SAE's")
    feature_ids: list[str] | None = Field(None, max_length=512, description="Features to explain; default: "
                                          "n_features live ones drawn at random (seeded)")
    n_features: int = Field(32, ge=1, le=4096, description="Live features to explain when feature_ids is not given")
    report: str | None = Field(None, description="run_id of an inspect job or a report.json path: explain its top "
                               "top_k features and write the report again with the explanations attached")
    top_k: int = Field(10, ge=1, le=200, description="Top features of report to explain")
    corpus: str = Field("builtin", description="builtin (generated general English, labelled so), a .txt/.jsonl/"
                        ".parquet corpus or a folder of them (workspace path), or hf:DATASET[:SPLIT]")
    text_field: str = Field("text", description="Text field of JSONL/Parquet corpora")
    max_contexts: int = Field(2048, ge=16, le=200_000, description="Contexts harvested")
    context_length: int = Field(64, ge=8, le=1024, description="Tokens per context")
    explainer: Literal["local", "model", "chat", "none"] = Field(
        "local", description="local: frequent firing tokens and context words (offline); model: the embedded "
        "instruct model prompted with the evidence (weak); chat: an OpenAI-compatible endpoint configured where the "
        "server runs; none: write the explanations yourself with feature_evidence and score_explanation")
    scorers: list[Literal["embedding", "detection", "fuzzing", "output"]] = Field(
        ["embedding"], min_length=1, description="embedding (always); detection and fuzzing need judge; output "
        "steers the model (interventional)")
    judge: Literal["model", "chat"] | None = Field(None, description="Judge of detection and fuzzing inside the "
                                                   "job: the embedded model (weak) or the chat endpoint. To judge "
                                                   "yourself, use score_explanation")
    seed: int = Field(0, description="Seeds the split, the feature sample, bootstraps and nulls")


class ExplainResult(BaseModel):
    summary: dict[str, Any] = Field(description="model, hookpoint, corpus, n_contexts, n_explained, the distribution "
                                    "of embedding AUROC (median, quartiles) against the random-explanation and "
                                    "shuffled-label nulls, and one row per feature: explanation, author, AUROC "
                                    "with its interval, null, beats_random")
    explain_json: str = Field(description="URI of explain.json (settings, timings, every score)")
    html: str = Field(description="URI of report.html: a feature card per explained feature")


class ExplainOutput(BaseModel):
    job: JobView
    result: ExplainResult | None = Field(None, description="Present when the job finished within wait_seconds")
    resources: list[str]
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


class FeatureEvidenceInput(ToolInput):
    run_id: str = Field(min_length=1, max_length=64, description="run_id of a completed explain job")
    feature_id: str | None = Field(None, max_length=200, description="A harvested feature, e.g. 'SAE:L15:F123'; "
                                   "default: the first explained one")
    max_examples: int = Field(8, ge=1, le=20, description="Top and quantile examples shown, each")


class FeatureEvidenceOutput(BaseModel):
    evidence: dict[str, Any] = Field(description="The feature's explain-split evidence: density, max and mean "
                                     "activation, top and quantile contexts with firing tokens marked «like this», "
                                     "promoted and suppressed tokens, shown_contexts. Held-out contexts are never "
                                     "shown: they score your explanation")
    explanations: list[dict[str, Any]] = Field(description="Explanations this run already has for the feature, "
                                               "with their scores")
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


class ScoreExplanationInput(ToolInput):
    run_id: str = Field(min_length=1, max_length=64, description="run_id of a completed explain job")
    feature_id: str = Field(min_length=1, max_length=200, description="The feature the explanation is of")
    explanation: str = Field(min_length=1, max_length=400, description="What the feature fires on, in a phrase or a "
                             "sentence (at most 400 characters)")
    author: str = Field("agent", min_length=1, max_length=80, description="Who wrote it (recorded with the scores)")
    judge: Literal["agent", "model", "none"] = Field(
        "agent", description="agent: you judge a blinded detection task (judge_explanation grades it); model: the "
        "embedded model judges now (weak); none: embedding score only")
    n_per_class: int = Field(10, ge=3, le=50, description="Held-out activating and non-firing items in the "
                             "detection task")
    dossier: str | None = Field(None, pattern=DOSSIER_NAME_PATTERN, description=_FILE_INTO)


class JudgeTaskView(BaseModel):
    task_id: str = Field(description="Pass to judge_explanation with your answers")
    instructions: str
    explanation: str = Field(description="The explanation to judge the items against")
    items: list[dict[str, str]] = Field(description="Shuffled held-out contexts, [{item_id, text}], no labels")
    null_explanation: str | None = Field(None, description="Another feature's explanation: judge the same items "
                                         "against it too (null_answers), which gives the random-explanation null")


class ScoreExplanationOutput(BaseModel):
    feature_id: str
    scores: list[dict[str, Any]] = Field(description="Scores so far: method, auroc, balanced_accuracy, f1 (each "
                                         f"{_METRIC}), null_random_explanation, null_shuffled_labels, "
                                         "margin_over_random, judge, provenance, n_positive, n_negative")
    beats_random: bool | None = Field(description="Embedding AUROC above the random-explanation null with a "
                                      "paired-bootstrap interval above 0")
    task: JudgeTaskView | None = Field(None, description="The detection task to judge (judge='agent')")
    dossier: dict[str, Any] | None = Field(None, description=_FILED)
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


class JudgeExplanationInput(ToolInput):
    task_id: str = Field(min_length=1, max_length=64, description="task_id from score_explanation")
    answers: dict[str, float] = Field(description="item_id -> 1 (the explanation fits the text), 0 (it does not), "
                                      "or a probability in [0, 1]; one per item")
    null_answers: dict[str, float] | None = Field(None, description="The same items judged against the task's "
                                                  "null_explanation")
    dossier: str | None = Field(None, pattern=DOSSIER_NAME_PATTERN, description=_FILE_INTO)


class JudgeExplanationOutput(BaseModel):
    feature_id: str
    score: dict[str, Any] = Field(description=f"The detection score: auroc, balanced_accuracy, f1 ({_METRIC}), "
                                  "nulls, judge 'agent', provenance held_out_text")
    dossier: dict[str, Any] | None = Field(None, description=_FILED)
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)
