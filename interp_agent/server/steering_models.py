"""Input and output models of the steering tools: export_steering and apply_steering."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from interp_agent.server.models import NEXT_ACTIONS, NextAction, ToolInput

_VECTOR = ("The vector's JSON summary: schema_version, model, d_model, hookpoints, strength (the amount added along "
           "each unit direction, activation units), feature_id, unit_norm, positions, synthetic, added_norm, and "
           "provenance (the intervention run and its hashes, strength_source, how and on which prompts the strength "
           "was chosen, intervene's held-out verdict)")


class ExportSteeringInput(ToolInput):
    interventions: str = Field(
        min_length=1, max_length=1000,
        description="run_id of a finished intervene job, or a workspace path to its folder or interventions.jsonl")
    feature_id: str = Field(
        min_length=1, max_length=200,
        description="The feature to export, as intervene named it: direction:contrast@blocks.15.hook_resid_post (a "
        "learned direction), L{layer}:D{dim} (a residual dimension) or SAE:L{layer}:F{i} (an SAE latent)")
    report: str | None = Field(
        None, max_length=1000,
        description="run_id of the inspect job or report.json path whose saved directions intervene used (for "
        "direction:… features); default: the report the intervene run's summary.json names. A different report "
        "(another hash) is refused")
    sae: str | None = Field(None, max_length=1000, description="run_id of a train_sae job or SAE folder (workspace "
                            "path) intervene used, for SAE:L{layer}:F{i} features")
    strength: float | None = Field(
        None, allow_inf_nan=False,
        description="Override the strength intervene chose: the amount to add in intervene's value units "
        "(activation units along the unit direction; latent activation for SAE latents). Needed only when the run "
        "chose none (mode other than steer); recorded as 'given by the user'. Leave unset to keep the held-out "
        "evidence valid")
    format: Literal["safetensors", "gguf"] = Field(
        "safetensors", description="safetensors: interp-agent's vector with metadata (apply_steering reads it); "
        "gguf: a llama.cpp control vector (direction.{layer} tensors pre-multiplied by the strength; "
        "llama-cli --control-vector FILE), blocks.{L}.hook_resid_post with L >= 1 only")
    out: str | None = Field(
        None, max_length=1000, description="Workspace path of the file to write; default: steering/<feature>.<ext> "
        "in the intervene run's folder (or beside its interventions.jsonl)")
    model_hint: str | None = Field(None, max_length=100, description="controlvector.model_hint of a GGUF file; "
                                   "default: the model config's model_type (e.g. llama)")


class ExportSteeringOutput(BaseModel):
    path: str = Field(description="Workspace path of the file written (give it to apply_steering as vector)")
    uri: str | None = Field(None, description="Resource URI of the file when it lies in a run folder")
    format: Literal["safetensors", "gguf"] = Field(description="The file's format")
    vector: dict[str, Any] = Field(description=_VECTOR)
    gguf_read_back: dict[str, Any] | None = Field(
        None, description="For gguf: what reading the file back with gguf.GGUFReader compared (tensor names, F32, "
        "lengths, norms; controlvector.model_hint and layer_count); the export fails if anything differed")
    llama_cpp: str | None = Field(None, description="For gguf: how to load it in llama.cpp")
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


class ApplySteeringInput(ToolInput):
    vector: str = Field(min_length=1, max_length=1000, description="Workspace path of a steering vector: the "
                        ".safetensors (or .gguf) export_steering wrote, or any llama.cpp control-vector .gguf")
    prompts: list[str] = Field(min_length=1, max_length=16, description="Texts to continue (1-16, each at most "
                               "2,000 characters); use prompts intervene did not calibrate on")
    model: str | None = Field(None, min_length=1, max_length=500, description="Model to steer: smollm2-135m "
                              "(embedded), a local folder or a hub id; default: the model the vector was made on. "
                              "A vector for another model or width is refused")
    max_new_tokens: int = Field(20, ge=1, le=64, description="Greedy tokens generated per prompt")
    scale: float = Field(1.0, ge=-20, le=20, allow_inf_nan=False, description="Multiplies the saved strength: 1 as "
                         "exported, 0 no edit (KL 0), -1 the opposite direction")
    positions: Literal["after_first", "all"] | None = Field(
        None, description="Where the vector is added: every position but the first (as intervene edited, the "
        "default for exported vectors) or all (as llama.cpp adds control vectors)")
    seed: int = Field(0, description="Seeds torch (decoding is greedy and deterministic; recorded)")


class SteeredPrompt(BaseModel):
    prompt: str = Field(description="The prompt")
    unsteered: str = Field(description="Greedy continuation without the vector")
    steered: str = Field(description="Greedy continuation with the vector")
    changed: bool = Field(description="Whether the steered tokens differ from the unsteered ones")
    next_token_unsteered: str = Field(description="Most likely next token without the vector")
    next_token_steered: str = Field(description="Most likely next token with the vector")
    kl_next_token: float = Field(description="KL(unsteered || steered) of the next-token distribution at the last "
                                 "prompt position, nats (interventional)")
    kl_mean_generated: float = Field(description="Mean KL(unsteered || steered) over the positions of the unsteered "
                                     "continuation (teacher-forced), nats (interventional)")
    n_generated: int = Field(description="Tokens in the unsteered continuation (it stops early at end of text)")


class ApplySteeringOutput(BaseModel):
    model: str = Field(description="The model steered")
    vector: dict[str, Any] = Field(description="The vector applied: path, feature_id, model, d_model, hookpoints, "
                                   "strength, scale, added_norm (norm of what was added), strength_source, synthetic")
    settings: dict[str, Any] = Field(description="max_new_tokens, decoding (greedy), seed, positions")
    prompts: list[SteeredPrompt] = Field(description="Per prompt: unsteered and steered text side by side, and KLs")
    mean_kl_next_token: float = Field(description="Mean over prompts of kl_next_token, nats")
    mean_kl_generated: float = Field(description="Mean over prompts of kl_mean_generated, nats")
    n_changed: int = Field(description="Prompts whose steered continuation differs")
    provenance: Literal["interventional"] = Field(description="Every number here comes from editing the model")
    note: str = Field(description="What these numbers are not: single generations without controls")
    synthetic: bool = Field(description="The vector came from a synthetic model or data")
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)
