"""Input and output models of the investigation tools: investigate, dossier, plan_evidence."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from interp_agent.server.models import (
    DOSSIER_NAME_PATTERN,
    NEXT_ACTIONS,
    JobView,
    NextAction,
    PromptsInput,
    ToolInput,
)


class InvestigateInput(PromptsInput):
    model: str = Field("smollm2-135m", min_length=1, description="'smollm2-135m' (embedded), a local model folder "
                       "(e.g. a model organism) or a hub id")
    criterion: str = Field("", max_length=2000, description="The criterion (a pack brings its own)")
    dataset: str | None = Field(None, description="Scored prompts JSONL {prompt_id, text, criterion_score} "
                                "(workspace path), instead of a pack or positives/negatives")
    hookpoints: list[str] | None = Field(None, max_length=16, description="Hookpoints to inspect, e.g. "
                                         "['blocks.15.hook_resid_post']; default: a few middle layers")
    top_k: int = Field(20, ge=1, le=500, description="Features in the reports")
    n_explain: int = Field(3, ge=0, le=50, description="Top features to explain on the corpus (0: skip the step)")
    n_intervene: int = Field(3, ge=1, le=20, description="Top features to test causally with controls (the "
                             "report's contrast direction comes with them)")
    mode: Literal["ablate", "mean_ablate", "clamp", "steer", "patch"] = Field("steer", description="The causal edit")
    strengths: list[float] = Field(default_factory=lambda: [-1.0, -0.5, 0.5, 1.0], min_length=1, max_length=8,
                                   description="steer/clamp strengths in units of the feature's scale; the best "
                                   "within a KL budget is chosen on calibration prompts only")
    scorer: Literal["auto", "target", "classifier", "probe"] = Field("auto", description="Behaviour score of the "
                                                                     "causal step (see intervene)")
    targets: list[str] | None = Field(None, max_length=64, description="Target next tokens of the behaviour score")
    corpus: str = Field("builtin", description="Corpus of the explain step (see explain)")
    max_contexts: int = Field(1024, ge=16, le=200_000, description="Corpus contexts of each explain pass")
    max_forward_passes: int | None = Field(
        None, description="Budget: forward passes (sequences through the model; a generation step of a batch of 8 "
        "counts 8) all steps may spend together; a step that finds it spent is skipped, one that spends it stops "
        "at its next batch. About: inspect 1 per prompt; explain 1 per context; intervene a few thousand per "
        "feature with the target scorer, ~12x that with the classifier")
    max_seconds: float | None = Field(None, description="Budget: wall seconds all steps may take together")


class InvestigateResult(BaseModel):
    steps: list[dict[str, Any]] = Field(description="Per step (inspect, explain, intervene, rank): status "
                                        "(completed, skipped, stopped), forward passes, seconds, reason, what was "
                                        "filed")
    spent: dict[str, Any] = Field(description="forward_passes and seconds spent in all")
    verdicts: dict[str, str] = Field(description="Causal verdict per feature tested (causal, weak, no_effect, "
                                     "contradicts)")
    claims: list[dict[str, Any]] = Field(description="The dossier's claims: id, kind, feature_id, grade (the highest "
                                         "rung of the evidence ladder reached) and why")
    plan: dict[str, Any] = Field(description="plan_evidence of the dossier: what each claim still lacks and the "
                                 "calls that would supply it, cheapest first")
    dossier: str = Field(description="Name of the dossier the investigation filed into")
    report: str | None = Field(None, description="URI of the final report.json (ranked with the causal evidence)")


class InvestigateOutput(BaseModel):
    job: JobView
    result: InvestigateResult | None = Field(None, description="Present when the job finished within wait_seconds")
    resources: list[str]
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


class DossierInput(ToolInput):
    name: str | None = Field(None, pattern=DOSSIER_NAME_PATTERN,
                             description="The dossier to read; leave out to list the workspace's dossiers")
    claims: int = Field(50, ge=1, le=1000, description="Most claims returned (best graded first)")


class DossierOutput(BaseModel):
    dossiers: list[dict[str, Any]] = Field(description="Listing: name, claims, criterion, models, updated (when no "
                                           "name was given), else the one read")
    dossier: dict[str, Any] | None = Field(None, description="The dossier: name, models, criterion, claims (id, "
                                           "kind, feature, grade with its reason, ladder, evidence with numbers and "
                                           "runs), runs that no longer exist")
    resources: list[str] = Field(description="URIs of the dossier as JSON, Markdown and HTML")
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


class PlanEvidenceInput(ToolInput):
    dossier: str | None = Field(None, pattern=DOSSIER_NAME_PATTERN, description="A dossier to plan for")
    report: str | None = Field(None, description="Or a report: run_id of an inspect job or a report.json path")
    limit: int = Field(10, ge=1, le=100, description="Most steps returned, cheapest first")


class PlanEvidenceOutput(BaseModel):
    steps: list[dict[str, Any]] = Field(description="Calls to make, cheapest first: tool, arguments (send as they "
                                        "are), the CLI equivalent, the rung each supplies, the claims it covers, "
                                        "the estimated cost on this machine and its basis")
    missing: list[dict[str, Any]] = Field(description="Per claim: its grade and the rungs it lacks; and what cannot "
                                          "be planned from here (e.g. a second model for transfer)")
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)
