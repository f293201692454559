"""The persisted job record callers see, the job states, and the job-not-found error."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from interp_agent.core.errors import ValidationError

JobState = Literal["working", "input_required", "completed", "failed", "cancelled"]
"""States of a job, in the MCP tasks vocabulary.

- working: queued (``started_at`` is None, message "queued", or "queued (resume)" after a
  resume) or running.
- input_required: the job waits for the caller (no built-in kind uses it yet).
- completed: finished; ``JobRunner.result`` returns what it produced.
- failed: the job raised, or its worker died; ``error`` says why.
- cancelled: stopped on request (a job cancelled while queued never started).

A failed or cancelled job of a resumable kind goes back to working on ``JobRunner.resume``.
"""

RESUMABLE_STATES: tuple[str, ...] = ("failed", "cancelled")
"""States from which a job of a resumable kind may be resumed."""

JOB_STATES: tuple[str, ...] = ("working", "input_required", "completed", "failed", "cancelled")
TERMINAL_STATES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


class JobNotFoundError(ValidationError):
    """No job with this id exists in the workspace (it may have expired)."""

    code = "job_not_found"


class JobRecord(BaseModel):
    """A job as stored in ``<workspace>/.interp-agent/jobs.sqlite``; what the runner returns."""

    model_config = ConfigDict(frozen=True)

    job_id: str = Field(description="Unguessable job id (secrets.token_urlsafe(16), never beginning with '-').")
    kind: str = Field(description="Registered job kind, e.g. 'inspect', 'match', 'sleep'.")
    state: JobState = Field(description="working, input_required, completed, failed or cancelled.")
    progress: float = Field(ge=0.0, le=1.0, description="Fraction done, 0..1; never decreases while working.")
    message: str = Field(description="Latest human-readable status line ('queued' before the job starts).")
    created_at: float = Field(description="Submission time, unix seconds.")
    started_at: float | None = Field(description="When a worker was assigned, unix seconds; None while queued.")
    finished_at: float | None = Field(description="When the job reached a terminal state, unix seconds.")
    run_id: str = Field(description="Id of the run folder (the job id).")
    run_dir: str = Field(description="Folder holding the job's artifacts and job.log: <workspace>/runs/<run_id>.")
    error: str | None = Field(description="Why the job failed ('<ExceptionType>: <message>'), else None.")
    params: dict[str, Any] = Field(description="The parameters the job was submitted with.")
    attempts: int = Field(default=1, ge=1, description="Runs of the job so far: 1, plus one per resume.")
    error_info: dict[str, Any] | None = Field(
        default=None, description="Why the job failed as {code, message, hint}: the code and hint a tool error has."
    )

    @property
    def terminal(self) -> bool:
        """True once the job is completed, failed or cancelled (it will not change again)."""
        return self.state in TERMINAL_STATES
