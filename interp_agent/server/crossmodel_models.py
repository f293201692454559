"""Input and output models of the cross-model tools: validate_matches, diff_models, train_crosscoder (and the
activation sides of match)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from interp_agent.server.models import MODEL_ARG, NEXT_ACTIONS, JobStartInput, JobView, NextAction, PromptsInput


class ValidateMatchesInput(PromptsInput):
    matches: str = Field(min_length=1, description="The run_id of a match job, or a matches.json path (workspace "
                         "path): fingerprint or activation matches")
    criterion: str = Field("", max_length=2000, description="The criterion (a pack brings its own)")
    dataset: str | None = Field(None, description="Scored prompts JSONL {prompt_id, text, criterion_score} "
                                "(workspace path), instead of a pack or positives/negatives")
    left_model: str | None = Field(None, description=f"The left side's model ({MODEL_ARG}); default: the matches' own")
    right_model: str | None = Field(None, description="The right side's model; default: the matches' own")
    left_report: str | None = Field(None, description="The left side's inspect run_id or report.json (its saved "
                                    "directions and expected signs); default: the matches' input report")
    right_report: str | None = Field(None, description="The right side's inspect run_id or report.json")
    left_sae: str | None = Field(None, description="SAE folder for the left side's SAE latents (workspace path)")
    right_sae: str | None = Field(None, description="SAE folder for the right side's SAE latents (workspace path)")
    mode: Literal["steer", "ablate"] = Field("steer", description="The same edit on both sides")
    top: int = Field(5, ge=1, le=20, description="Matched pairs to validate, best first")
    strengths: list[float] = Field(default_factory=lambda: [0.5, 1.0, 2.0], min_length=1, max_length=8,
                                   description="steer strengths (> 0) in units of each feature's scale; the sign and "
                                   "the strength are chosen per side on calibration prompts only")
    scorer: Literal["auto", "target", "classifier", "probe"] = Field(
        "auto", description="Behaviour score, fitted once and applied to both sides so effects compare (see "
        "intervene); auto: target tokens when both sides share a tokenizer and targets are known, else the "
        "classifier on continuations")
    targets: list[str] | None = Field(None, max_length=64, description="Target next tokens of the target scorer")
    patch_across: bool = Field(True, description="Also steer the right model along the left feature's direction "
                               "mapped into its space (when the two sides tokenize alike)")


class ValidateMatchesResult(BaseModel):
    summary: dict[str, Any] = Field(description="Pairs validated and how many reached each grade (similar < "
                                    "same_direction < equivalent; opposite): how many matches survive intervention")
    pairs: list[dict[str, Any]] = Field(description="Per pair: ids, similarity, each side's held-out effect with its "
                                        "interval and verdict against its controls, sign agreement, effect ratio "
                                        "with its interval, grade and why, patch-across result")
    scorer: dict[str, Any] = Field(description="The behaviour score both sides were measured with, and why")
    validation_json: str = Field(description="URI of validation.json")
    validation_md: str = Field(description="URI of validation.md")


class ValidateMatchesOutput(BaseModel):
    job: JobView
    result: ValidateMatchesResult | None = Field(None, description="Present when the job finished within "
                                                 "wait_seconds")
    resources: list[str]
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


_PACK = Literal["measurement_unit", "french", "python_code", "negative_sentiment", "question"]


class DiffModelsInput(JobStartInput):
    base: str = Field("smollm2-135m", min_length=1, description=f"The base model ({MODEL_ARG})")
    tuned: str = Field(min_length=1, description="The fine-tuned model: a model folder (workspace path) or hub id "
                       "sharing the base's tokenizer and widths; 'finetune:default' builds (once, a few minutes on a "
                       "CPU) and uses the built-in fine-tune of SmolLM2-135M on negative reviews")
    hookpoints: list[str] = Field(min_length=1, max_length=8, description="Where to compare, e.g. "
                                  "['blocks.18.mlp.hook_post'] (neurons) or ['blocks.18.hook_resid_post'] (dims)")
    features: Literal["neurons", "dims"] = Field("neurons", description="neurons (at mlp.hook_post) or dims")
    pack: _PACK | None = Field(None, description="A criterion pack: which criterion-relevant features moved, and "
                               "the behaviour change on its held-out prompts")
    criterion: str = Field("", max_length=2000, description="The criterion of dataset (a pack brings its own)")
    dataset: str | None = Field(None, description="Scored prompts JSONL (workspace path) for the criterion")
    probes: str = Field("builtin", description="Probe corpus the features are compared on: 'builtin' (general "
                        "English) or a corpus file (workspace path)")
    n_probes: int = Field(200, ge=20, le=20_000, description="Probe passages used (half select, half hold out)")


class DiffModelsResult(BaseModel):
    summary: dict[str, Any] = Field(description="Counts of features that appear, vanish and change (selected on one "
                                    "half of the probes, confirmed on the other), the top movers with held-out "
                                    "intervals, criterion-relevant movers and the behaviour change")
    diff_json: str = Field(description="URI of diff.json")
    diff_md: str = Field(description="URI of diff.md")


class DiffModelsOutput(BaseModel):
    job: JobView
    result: DiffModelsResult | None = Field(None, description="Present when the job finished within wait_seconds")
    resources: list[str]
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


class TrainCrosscoderInput(JobStartInput):
    models: list[str] = Field(default_factory=lambda: ["smollm2-135m"], min_length=1, max_length=4,
                              description="Models (sharing one tokenizer and width): two models at one hookpoint, "
                              "or one model at several hookpoints; 'finetune:default' is the built-in fine-tune")
    hookpoints: list[str] = Field(min_length=1, max_length=8, description="One hookpoint (several models) or several "
                                  "(one model), e.g. ['blocks.15.hook_resid_post']")
    corpus: str = Field("builtin", description="Training texts: 'builtin' (general English) or a corpus file "
                        "(workspace path)")
    pack: _PACK | None = Field(
        None, description="Rank the crosscoder's latents against this pack's criterion (held-out association)")
    latent_dim: int = Field(1152, ge=16, le=262_144, description="Crosscoder latents")
    k: int = Field(32, ge=1, le=1024, description="Active latents per token on average (BatchTopK)")
    steps: int = Field(300, ge=1, le=1_000_000, description="Training steps")
    seed: int = Field(0, description="Seed of the initialisation, the batches and the held-out split")
    max_texts: int = Field(400, ge=10, le=1_000_000, description="Corpus texts harvested")


class TrainCrosscoderResult(BaseModel):
    summary: dict[str, Any] = Field(description="Held-out FVU per source, dead latents, exclusivity counts (which "
                                    "checks each latent passed: decoder-norm ratio, Latent Scaling), and the ranking's "
                                    "top latents when a pack was given")
    crosscoder: str = Field(description="URI of the crosscoder folder's config.json (dictionary_learning layout)")


class TrainCrosscoderOutput(BaseModel):
    job: JobView
    result: TrainCrosscoderResult | None = Field(None, description="Present when the job finished within "
                                                 "wait_seconds")
    resources: list[str]
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)
