"""What the tools share: the workspace, the read roots and the job runner."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from pathlib import Path

from interp_agent.core.errors import ValidationError
from interp_agent.jobs import JobRecord, JobRunner
from interp_agent.server.models import JobView, ToolErrorInfo
from interp_agent.server.paths import resolve_path

RUN_URI = "interp-agent://runs/{run_id}/{file}"
DOSSIER_URI = "interp-agent://dossiers/{name}"
"""A dossier as JSON; ``{name}.md`` and ``{name}.html`` read its Markdown and HTML renderings."""
DOSSIERS_DIR = "dossiers"
"""Folder of the workspace that holds the dossiers, one NAME.json each."""
_RUN_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


@dataclass(slots=True)
class ServerState:
    """Long-lived resources of one server."""

    workspace: Path
    """Where runs, job state and outputs live; path arguments resolve here."""
    read_roots: tuple[Path, ...]
    """Extra folders whose files may be read (never written)."""
    runner: JobRunner
    """Background jobs."""
    hidden_tools: dict[str, str] = field(default_factory=dict)
    """Tool name -> why ``serve --read-only`` hides it; empty when every tool is served."""

    def path(self, value: str, field: str, *, must_exist: bool = True) -> Path:
        """A path argument, checked to lie inside the workspace or a read root."""
        return resolve_path(
            value, field=field, workspace=self.workspace, read_roots=self.read_roots, must_exist=must_exist
        )

    def output_path(self, value: str, field: str) -> Path:
        """A path to write: inside the workspace only (read roots are read-only); it need not exist yet."""
        path = self.path(value, field, must_exist=False)
        if not path.is_relative_to(self.workspace.resolve()):
            raise ValidationError(f"{field}: {value!r} resolves to {path}, inside a read root; read roots are "
                                  "read-only", hint="give a workspace-relative path to write to")
        return path

    def run_dir(self, run_id: str) -> Path:
        """Folder of a run, refusing ids that could escape ``runs/``."""
        if not run_id or not set(run_id) <= _RUN_ID_CHARS:
            raise ValidationError(f"run_id {run_id!r} is not a run id", hint="use a run_id returned by a job")
        return self.workspace / "runs" / run_id

    def dossier_file(self, name: str | None) -> str | None:
        """The file of dossier ``name`` (``dossiers/NAME.json`` of the workspace), as a job param; None stays None."""
        if name is None:
            return None
        if not name or "/" in name or name.startswith(".") or not set(name) <= _RUN_ID_CHARS | {"."}:
            raise ValidationError(f"dossier {name!r} is not a dossier name",
                                  hint="use letters, digits, '.', '-' and '_', e.g. 'french-l15'")
        return str(self.workspace / DOSSIERS_DIR / f"{name}.json")

    def run_uris(self, run_id: str) -> list[str]:
        """URIs of every file and folder of a run (a folder's resource is a listing)."""
        folder = self.run_dir(run_id)
        if not folder.is_dir():
            return []
        files = [p for p in sorted(folder.iterdir()) if not p.name.startswith(".")]
        return [RUN_URI.format(run_id=run_id, file=p.name) for p in files]

    def uri(self, run_id: str, file: str) -> str:
        """The URI of one file of a run."""
        return RUN_URI.format(run_id=run_id, file=file)


def job_view(record: JobRecord) -> JobView:
    """The agent's view of a job record."""
    return JobView(
        job_id=record.job_id, kind=record.kind, state=record.state, progress=record.progress,
        message=record.message, run_id=record.run_id, created_at=record.created_at,
        started_at=record.started_at, finished_at=record.finished_at, error=record.error, attempts=record.attempts,
        error_info=ToolErrorInfo(**record.error_info) if record.error_info else None,
    )


def mime_type(name: str) -> str:
    """MIME type of an artifact by its name."""
    if name.endswith((".jsonl", ".log", ".md")):
        return {"jsonl": "application/jsonl", "log": "text/plain", "md": "text/markdown"}[name.rsplit(".", 1)[1]]
    return mimetypes.guess_type(name)[0] or "application/octet-stream"
