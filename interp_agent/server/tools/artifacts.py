"""list_artifacts and the interp-agent://runs/{run_id}/{file} resources."""

from __future__ import annotations

import json
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import ToolAnnotations

from interp_agent.server.models import Artifact, ListArtifactsInput, ListArtifactsOutput
from interp_agent.server.next_steps import call, workspace_path
from interp_agent.server.registry import ToolSpec
from interp_agent.server.state import RUN_URI, ServerState, mime_type

_TEXT_SUFFIXES = (".json", ".jsonl", ".md", ".html", ".log", ".txt", ".csv", ".yaml", ".toml")
_MAX_RESOURCE_BYTES = 50 * 1024 * 1024


FOLDER_MIME = "inode/directory"
"""MIME type of a folder artifact (a Parquet records dataset, a causal sub-run); its resource is a listing."""


def folder_listing(folder: Path) -> str:
    """A folder artifact as JSON: its files (relative paths) and their sizes in bytes."""
    files = [{"file": str(p.relative_to(folder)), "bytes": p.stat().st_size}
             for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".")]
    return json.dumps({"folder": folder.name, "files": files})


def register_resources(server: MCPServer, state: ServerState) -> None:
    """Serve every file of a run as ``interp-agent://runs/{run_id}/{file}``."""

    @server.resource(
        RUN_URI,
        name="run-artifact",
        title="Run artifact",
        description="A file a job wrote: report.json, report.html, report.md, matches.json, job.log, records, …",
    )
    def read_artifact(run_id: str, file: str) -> str | bytes:
        folder = state.run_dir(run_id)
        path = (folder / file).resolve()
        if path.parent == folder.resolve() and path.is_dir():
            return folder_listing(path)
        if path.parent != folder.resolve() or not path.is_file():
            raise ResourceError(
                f"no artifact {file!r} in run {run_id!r}; list_artifacts(run_id='{run_id}') shows what exists"
            )
        if path.stat().st_size > _MAX_RESOURCE_BYTES:
            raise ResourceError(f"{file} is {path.stat().st_size} bytes, over the {_MAX_RESOURCE_BYTES} byte resource "
                                f"limit; read it from {path}")
        return path.read_text(encoding="utf-8") if path.suffix in _TEXT_SUFFIXES else path.read_bytes()


def specs(state: ServerState) -> list[ToolSpec]:
    """The artifact listing tool."""

    async def list_artifacts(inp: ListArtifactsInput, ctx: Context) -> ListArtifactsOutput:
        runs_root = state.workspace / "runs"
        if inp.run_id is not None:
            folders = [state.run_dir(inp.run_id)]
        else:
            folders = sorted((p for p in runs_root.iterdir() if p.is_dir()),
                             key=lambda p: p.stat().st_mtime, reverse=True) if runs_root.is_dir() else []
        out: list[Artifact] = []
        for folder in folders:
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                if path.name.startswith("."):
                    continue
                if path.is_file():
                    out.append(Artifact(uri=state.uri(folder.name, path.name), run_id=folder.name, file=path.name,
                                        bytes=path.stat().st_size, mime_type=mime_type(path.name), path=None))
                elif path.is_dir():
                    out.append(Artifact(uri=state.uri(folder.name, path.name), run_id=folder.name, file=path.name,
                                        bytes=sum(p.stat().st_size for p in path.rglob("*") if p.is_file()),
                                        mime_type=FOLDER_MIME, path=workspace_path(state, path)))
                if len(out) >= inp.limit:
                    break
        reports = [a for a in out[: inp.limit] if a.file == "report.json"][:1]
        return ListArtifactsOutput(artifacts=out[: inp.limit], next_actions=[
            call("feature_card", "the top feature of the newest report, with its evidence", run_id=a.run_id)
            for a in reports])

    return [
        ToolSpec(
            "list_artifacts",
            "List the files and folders runs have written (reports, records, directions, matches, logs), newest "
            "run first, with their interp-agent:// resource URIs, sizes in bytes and, for folders (a Parquet records "
            "dataset), the workspace path to pass to other tools. Instant, read-only. Read one with resources/read "
            "(a folder reads as a JSON listing of its files).",
            ListArtifactsInput, ListArtifactsOutput, list_artifacts,
            ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False),
            "List run artifacts",
        )
    ]
