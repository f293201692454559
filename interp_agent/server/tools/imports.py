"""import_interp_lab and convert_hidden_dump: results and hidden states made elsewhere, into our formats.

Both are quick file conversions, so they answer at once (no job): each writes a fresh run
folder under ``runs/`` that ``feature_card``, ``list_artifacts`` and the resources read.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations

from interp_agent.server.imports_models import (
    ConvertHiddenDumpInput,
    ConvertHiddenDumpOutput,
    ImportInterpLabInput,
    ImportInterpLabOutput,
)
from interp_agent.server.models import NextAction
from interp_agent.server.next_steps import call, workspace_path
from interp_agent.server.registry import ToolSpec
from interp_agent.server.state import ServerState

_WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)


def _new_run(state: ServerState, prefix: str) -> tuple[str, Path]:
    run_id = f"{prefix}-{secrets.token_hex(6)}"
    return run_id, state.run_dir(run_id)


def _uris(state: ServerState, run_id: str, folder: Path, paths: dict[str, str]) -> list[str]:
    """URIs of the top-level entries of ``folder`` that ``paths`` names (a file in a subfolder names its folder)."""
    names = {Path(p).resolve().relative_to(folder.resolve()).parts[0] for p in paths.values()}
    return [state.uri(run_id, name) for name in sorted(names)]


def _import_next(run_id: str, kind: str) -> list[NextAction]:
    if kind == "report":
        return [call("feature_card", "read the top imported feature; its scores are interp-lab's, kept as imported "
                     "(to measure them with held-out statistics, give inspect the activation records or a live model)",
                     run_id=run_id)]
    if kind == "run_config":
        return [call("list_artifacts", "read the converted run.json; run it with `interp-agent run`", run_id=run_id)]
    return [call("list_artifacts", "read the converted matches.json", run_id=run_id)]


def specs(state: ServerState) -> list[ToolSpec]:
    """The import tools."""

    async def import_interp_lab(inp: ImportInterpLabInput, ctx: Context) -> ImportInterpLabOutput:
        from interp_agent.core.migrate.interp_lab import import_interp_lab as convert

        src = state.path(inp.path, "path")
        run_id, folder = _new_run(state, "import")
        result: dict[str, Any] = await anyio.to_thread.run_sync(lambda: convert(src, folder))
        summary = {k: v for k, v in result.items() if k not in ("kind", "schema_version", "paths")}
        return ImportInterpLabOutput(kind=result["kind"], schema_version=result["schema_version"], run_id=run_id,
                                     summary=summary, files=_uris(state, run_id, folder, result["paths"]),
                                     next_actions=_import_next(run_id, result["kind"]))

    async def convert_hidden_dump(inp: ConvertHiddenDumpInput, ctx: Context) -> ConvertHiddenDumpOutput:
        from interp_agent.core.formats.hidden_dump import convert_hidden_dump as convert

        src = state.path(inp.src, "src")
        manifest = state.path(inp.manifest, "manifest") if inp.manifest else None
        run_id, folder = _new_run(state, "dump")
        out = folder / ("records.jsonl" if inp.to == "records" else "activations")
        result: dict[str, Any] = await anyio.to_thread.run_sync(lambda: convert(
            src, out=out, to=inp.to, manifest=manifest, hookpoint=inp.hookpoint, model=inp.model, pooling=inp.pool,
            keep_first=inp.keep_first))
        if inp.to == "records":
            nxt = [call("inspect", "rank the converted records; add criterion=, the words the manifest's scores "
                        "measure", model=result.get("model") or "dump", backend="records",
                        records=workspace_path(state, out))]
        else:
            hookpoint = next(iter(result["hookpoints"]))
            nxt = [call("train_sae", "train an SAE on the converted token rows", hookpoint=hookpoint,
                        activations=[workspace_path(state, p) for h, p in result["paths"].items() if h != "dump"])]
        return ConvertHiddenDumpOutput(run_id=run_id, n_prompts=result["n_prompts"], n_tokens=result["n_tokens"],
                                       hookpoints=result["hookpoints"],
                                       files=_uris(state, run_id, folder, result["paths"]), next_actions=nxt)

    return [
        ToolSpec(
            "import_interp_lab",
            "Bring results made with interp-lab (the reference package): an inspection report.json (schema "
            "interp-lab.inspection_report.v1, or the unversioned 0.1-0.2 form), a matches.json or a run config "
            "becomes our report, matches or run.json in a new run folder. Its scores stay marked imported with their "
            "provenance (its causal numbers count as interventional only where it attached intervention records); "
            "reports from its toy backend stay synthetic. An unknown schema version is refused, naming the versions "
            "read. Instant. Next: feature_card on the run, or inspect to measure with our held-out statistics.",
            ImportInterpLabInput, ImportInterpLabOutput, import_interp_lab, _WRITES, "Import interp-lab results"),
        ToolSpec(
            "convert_hidden_dump",
            "Hidden states dumped by any runtime (.npy, .safetensors, torch .pt with a manifest of prompts and "
            "scores, or interp-lab's dump JSONL) become activation records that inspect ranks (to='records', one "
            "pooled row per prompt) or token rows that train_sae reads (to='training'). Shapes are checked against "
            "the manifest and a mismatch names both. Seconds. Next: inspect with backend='records', or train_sae.",
            ConvertHiddenDumpInput, ConvertHiddenDumpOutput, convert_hidden_dump, _WRITES,
            "Convert a hidden-state dump"),
    ]
