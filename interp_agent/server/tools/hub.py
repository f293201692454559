"""publish: start a job that uploads a run folder to the Hugging Face Hub (a dry run unless told otherwise)."""

from __future__ import annotations

from pathlib import Path

from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations

from interp_agent.core.errors import ValidationError
from interp_agent.server.models import PublishInput, PublishOutput, PublishResult
from interp_agent.server.next_steps import for_job
from interp_agent.server.registry import ToolSpec
from interp_agent.server.state import ServerState, job_view
from interp_agent.server.tools.analysis import wait_for


def specs(state: ServerState) -> list[ToolSpec]:
    """The Hub publishing tool."""

    def folder_of(value: str) -> Path:
        run = state.workspace / "runs" / value
        if "/" not in value and value not in (".", "..") and run.is_dir():
            return run
        path = state.path(value, "path")
        if not path.is_dir():
            raise ValidationError(f"path: {value!r} is not a folder", hint="give a run_id or a run folder")
        if path == state.workspace.resolve():
            raise ValidationError(
                "path: refusing to publish the whole workspace", hint="give a run_id or one run folder"
            )
        return path

    async def publish_tool(inp: PublishInput, ctx: Context) -> PublishOutput:
        params = {"path": str(folder_of(inp.path)), "repo_id": inp.repo_id, "repo_type": inp.repo_type,
                  "dry_run": inp.dry_run, "private": inp.private, "commit_message": inp.commit_message}
        params = {k: v for k, v in params.items() if v is not None}
        record = await wait_for(state, state.runner.submit("publish", params).job_id, inp.wait_seconds, ctx)
        raw = state.runner.result(record.job_id) if record.state == "completed" else None
        result = None
        if raw is not None:
            fields = {k: raw.get(k) for k in PublishResult.model_fields if k != "card"}
            result = PublishResult.model_validate(fields | {"card": state.uri(record.run_id, "card.md")})
        return PublishOutput(job=job_view(record), result=result, resources=state.run_uris(record.run_id),
                             next_actions=for_job(state, record))

    uploads = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True)
    return [
        ToolSpec(
            "publish",
            "Publish a run folder (reports, records, an SAE) to a Hugging Face Hub repo with a generated card (what it "
            "is, model, hookpoint, criterion, held-out metrics, top features, verdicts, provenance, how to load the "
            "SAE with SAE Lens). A DRY RUN BY DEFAULT: lists every file and its size, what is skipped and why "
            "(checkpoints, caches, job.log, credential-like files) and renders the card; nothing leaves the machine. "
            "With dry_run=false it creates the repo if missing (private by default) and uploads in one commit, which "
            "can overwrite files in an existing repo. The token is read only from HF_TOKEN in the server's "
            "environment, never from an argument, and is never shown. Starts a background job (seconds for a dry run). "
            "Next: read card.md, then call again with dry_run=false.",
            PublishInput, PublishOutput, publish_tool, uploads, "Publish a run to the Hugging Face Hub",
        ),
    ]
