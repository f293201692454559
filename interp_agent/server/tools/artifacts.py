"""list_artifacts and the interp-agent://runs/{run_id}/{file} resources."""

from __future__ import annotations

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import ToolAnnotations

from interp_agent.server.models import Artifact, ListArtifactsInput, ListArtifactsOutput
from interp_agent.server.registry import ToolSpec
from interp_agent.server.state import RUN_URI, ServerState, mime_type

_TEXT_SUFFIXES = (".json", ".jsonl", ".md", ".html", ".log", ".txt", ".csv", ".yaml", ".toml")
_MAX_RESOURCE_BYTES = 50 * 1024 * 1024


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
                if path.is_file() and not path.name.startswith("."):
                    out.append(Artifact(uri=state.uri(folder.name, path.name), run_id=folder.name, file=path.name,
                                        bytes=path.stat().st_size, mime_type=mime_type(path.name)))
                if len(out) >= inp.limit:
                    break
        return ListArtifactsOutput(
            artifacts=out[: inp.limit], next_actions=["read an artifact with resources/read <uri>"]
        )

    return [
        ToolSpec(
            "list_artifacts",
            "List the files runs have written (reports, matches, logs), newest run first, with their "
            "interp-agent:// resource URIs and sizes in bytes. Instant, read-only. Read one with resources/read.",
            ListArtifactsInput, ListArtifactsOutput, list_artifacts,
            ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False),
            "List run artifacts",
        )
    ]
