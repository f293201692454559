"""job_status, job_result, job_cancel, job_resume, job_list: follow background work."""

from __future__ import annotations

from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations

from interp_agent.jobs import JobRecord
from interp_agent.server.models import (
    JobIdInput,
    JobListInput,
    JobListOutput,
    JobResultOutput,
    JobStatusOutput,
)
from interp_agent.server.next_steps import call, for_job
from interp_agent.server.registry import ToolSpec
from interp_agent.server.state import ServerState, job_view


def specs(state: ServerState) -> list[ToolSpec]:
    """The job tools."""
    runner = state.runner

    def status_of(record: JobRecord) -> JobStatusOutput:
        return JobStatusOutput(
            job=job_view(record), resources=state.run_uris(record.run_id),
            next_actions=for_job(state, record, polled=True),
        )

    async def status(inp: JobIdInput, ctx: Context) -> JobStatusOutput:
        return status_of(runner.get(inp.job_id))

    async def result(inp: JobIdInput, ctx: Context) -> JobResultOutput:
        record = runner.get(inp.job_id)
        return JobResultOutput(
            job=job_view(record), result=runner.result(inp.job_id), resources=state.run_uris(record.run_id),
            next_actions=for_job(state, record),
        )

    async def cancel(inp: JobIdInput, ctx: Context) -> JobStatusOutput:
        return status_of(runner.cancel(inp.job_id))

    async def resume(inp: JobIdInput, ctx: Context) -> JobStatusOutput:
        return status_of(runner.resume(inp.job_id))

    async def listing(inp: JobListInput, ctx: Context) -> JobListOutput:
        jobs = [job_view(r) for r in runner.list(limit=inp.limit, state=inp.state)]
        working = [j for j in jobs if j.state == "working"][:1]
        return JobListOutput(jobs=jobs, next_actions=[
            call("job_status", "follow the newest working job", job_id=j.job_id) for j in working])

    read = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
    return [
        ToolSpec("job_status", "State, progress (0..1) and latest message of a background job. Instant, read-only. "
                 "Poll every few seconds while state is 'working'; then call job_result.",
                 JobIdInput, JobStatusOutput, status, read, "Job status"),
        ToolSpec("job_result", "Result of a background job: the full result object once state is 'completed', "
                 "else null with the state and error. Instant, read-only. Artifacts are listed as resources.",
                 JobIdInput, JobResultOutput, result, read, "Job result"),
        ToolSpec("job_cancel", "Stop a background job: its worker process is terminated and the job ends "
                 "'cancelled' (a queued job never starts). Instant. Finished jobs are left as they are.",
                 JobIdInput, JobStatusOutput, cancel,
                 ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                                 open_world_hint=False),
                 "Cancel job"),
        ToolSpec("job_resume", "Restart a failed or cancelled job of a resumable kind (train_sae, harvest) in its "
                 "run folder, continuing from its last checkpoint: same job_id, run_id and params; the folder's "
                 "files are kept and attempts goes up by one. Instant: the job is 'working' ('queued (resume)') and "
                 "starts when a slot is free; then poll job_status. Refused for working or completed jobs and for "
                 "kinds that keep no checkpoints (inspect, match, intervene: start a new job instead).",
                 JobIdInput, JobStatusOutput, resume,
                 ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                                 open_world_hint=False),
                 "Resume job"),
        ToolSpec("job_list", "Recent background jobs, newest first, including those of earlier server runs on this "
                 "workspace. Instant, read-only.", JobListInput, JobListOutput, listing, read, "List jobs"),
    ]
