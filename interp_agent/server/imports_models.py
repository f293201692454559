"""Input and output models of the import tools: import_interp_lab and convert_hidden_dump."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from interp_agent.server.models import NEXT_ACTIONS, NextAction, ToolInput


class ImportInterpLabInput(ToolInput):
    path: str = Field(min_length=1, description="Workspace path of an interp-lab file: an inspection report.json (or "
                      "the folder holding it; schema interp-lab.inspection_report.v1 or the unversioned 0.1-0.2 "
                      "form), a matches.json, or a run config (JSON, TOML or YAML)")


class ImportInterpLabOutput(BaseModel):
    kind: Literal["report", "matches", "run_config"] = Field(description="What the file was")
    schema_version: str = Field(description="The interp-lab schema version read")
    run_id: str = Field(description="The run folder written under runs/ (feature_card and list_artifacts read it)")
    summary: dict[str, Any] = Field(description="Counts: n_features (a report, with synthetic), n_pairs (matches), "
                                    "n_steps and commands (a run config)")
    files: list[str] = Field(description="URIs of the files written, in our formats")
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


class ConvertHiddenDumpInput(ToolInput):
    src: str = Field(min_length=1, description="Workspace path of the dump: .npy [N,D] or [N,T,D], .safetensors (a "
                     "tensor per hookpoint), torch .pt (a tensor or a dict of tensors, loaded weights_only), or "
                     "interp-lab's hidden-state dump JSONL")
    manifest: str | None = Field(None, description="Workspace path of the manifest: JSON {prompts, scores|labels, "
                                 "model, hookpoint|layer, tensors, lengths} or a scored-prompts JSONL in row order")
    to: Literal["records", "training"] = Field("records", description="records: one pooled row per prompt (inspect "
                                               "ranks them); training: every token row (train_sae reads them)")
    hookpoint: str | None = Field(None, description="Hookpoint of an unnamed tensor, or the one tensor to take, e.g. "
                                  "blocks.6.hook_resid_post")
    model: str | None = Field(None, description="Model the hidden states came from (default: the manifest's)")
    pool: Literal["last", "mean", "max"] = Field("last", description="records from [N,T,D]: the last real token, "
                                                 "or the mean/max over tokens 1..")
    keep_first: bool = Field(False, description="Keep token position 0 (dropped by default as a BOS with massive "
                             "activations; keep it for dumps without a BOS)")


class ConvertHiddenDumpOutput(BaseModel):
    run_id: str = Field(description="The run folder written under runs/")
    n_prompts: int = Field(description="Prompts (rows of the manifest) converted")
    n_tokens: int = Field(description="Token rows read")
    hookpoints: dict[str, int] = Field(description="Width of each hookpoint converted")
    files: list[str] = Field(description="URIs of the files written")
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)
