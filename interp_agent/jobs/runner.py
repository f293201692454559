"""``JobRunner``: submit, watch, cancel and list the long-running jobs of a workspace.

Layout of a workspace::

    <workspace>/.interp-agent/jobs.sqlite   job table (SQLite, WAL), shared by every process
    <workspace>/runs/<run_id>/               a job's artifacts and its job.log (run_id = job_id)

Each job runs in its own worker process (see ``executor``): a local process, or a Ray
actor (``executor="ray"``, see ``ray_executor``). The runner holds no state
that matters beyond the database: a new runner on the same workspace, in any process,
sees every earlier job and its result. ``tick`` moves things along: it marks jobs whose
worker died as failed and starts queued jobs while fewer than ``max_concurrent`` run.
It runs on every ``submit``/``get``/``list``/``wait`` and from a server's background
thread; nothing starts a queued job while no runner ticks.

``resume`` puts a failed or cancelled job of a resumable kind (one that checkpoints into
its run folder) back in the queue as its next attempt: same job id, run folder and
params; the folder is kept, so the job continues from its latest checkpoint there.

Finished jobs expire ``ttl_seconds`` after they finish (default 7 days): a runner's
start (and, in a long-lived runner, ``tick`` once an hour) removes their rows and their
run folders, artifacts included.
"""

from __future__ import annotations

import builtins
import json
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from interp_agent.core.errors import DEFAULT_HINTS, ValidationError
from interp_agent.core.secrets import redact
from interp_agent.jobs.executor import LOG_NAME, Executor, ExitReporter, WorkerHandle, append_log, process_start_time
from interp_agent.jobs.executors import make_executor
from interp_agent.jobs.kinds import JOB_KINDS, PARAM_CHECKS, RESUMABLE_KINDS, load_kind
from interp_agent.jobs.records import JOB_STATES, RESUMABLE_STATES, JobNotFoundError, JobRecord, JobState
from interp_agent.jobs.store import JobStore, to_json_text

DEFAULT_MAX_CONCURRENT = 2
DEFAULT_TTL_SECONDS = 7 * 24 * 3600.0
"""Finished jobs (and their run folders) are removed this long after they finish: 7 days."""

PURGE_INTERVAL_S = 3600.0
"""A long-lived runner (a server) also purges expired jobs from ``tick`` this often."""

LAUNCH_GRACE_S = 60.0
"""A job claimed for starting whose worker was not launched within this time is failed
(the process that claimed it ended in between)."""

STATE_DIR = ".interp-agent"
DB_NAME = "jobs.sqlite"
RUNS_DIR = "runs"

SELF_STOPPING_EXECUTORS: frozenset[str] = frozenset({"ray"})
"""Executors whose workers watch the job table and stop themselves once their job is cancelled, so a
runner using another executor may cancel their jobs."""

_NOT_RESUMABLE_HINTS = {
    "working": "it has not ended: wait for it to finish, or cancel it and then resume it",
    "completed": "its result is final; submit a new job to run it again",
}


def new_job_id() -> str:
    """An unguessable job id (``secrets.token_urlsafe(16)``) that never begins with '-': the command line
    would read such an id as an option (``interp-agent jobs resume -Rd...``)."""
    while (job_id := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return job_id


class JobRunner:
    """Durable background jobs of one workspace, each in its own worker process."""

    def __init__(
        self,
        workspace: str | Path,
        *,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        executor: Executor | Literal["local", "ray"] | None = None,
        ray_address: str | None = None,
    ) -> None:
        """Open the job table of ``workspace`` (created when missing) and purge expired jobs.

        Args:
            workspace: folder holding ``.interp-agent/jobs.sqlite`` and ``runs/``.
            max_concurrent: jobs running at once across every process using the workspace;
                the rest wait, queued, in submission order.
            ttl_seconds: how long a finished job and its run folder are kept.
            executor: where workers run: an ``Executor``, or 'local' (default: ``LocalProcessExecutor``)
                or 'ray' (``RayExecutor``: each job in a Ray actor).
            ray_address: HOST:PORT of the Ray cluster, with ``executor='ray'``.

        Raises:
            ValidationError: max_concurrent below 1, ttl_seconds not positive, an unknown executor
                name, or (Ray) ray not installed or the cluster unreachable.
        """
        if not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise ValidationError(f"max_concurrent must be an integer of at least 1, got {max_concurrent!r}")
        if not ttl_seconds > 0:
            raise ValidationError(f"ttl_seconds must be positive, got {ttl_seconds!r}; the default is 7 days")
        self.workspace = Path(workspace).expanduser().resolve()
        """The workspace folder."""
        self.runs_dir = self.workspace / RUNS_DIR
        """Folder of the run folders."""
        self.db_path = job_db_path(self.workspace)
        """The job database."""
        self.max_concurrent = max_concurrent
        self.ttl_seconds = float(ttl_seconds)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self._store = JobStore(self.db_path)
        if executor is None or isinstance(executor, str):
            executor = make_executor(executor or "local", self.db_path, self.workspace, ray_address=ray_address)
        self.executor: Executor = executor
        self.executor_name: str = getattr(executor, "name", None) or "local"
        """Name stored with each job this runner launches ('local', 'ray')."""
        self._tick_lock = threading.Lock()
        self._next_purge = time.monotonic() + PURGE_INTERVAL_S
        self.purge_expired()

    # -- public API ------------------------------------------------------------------

    def submit(self, kind: str, params: dict[str, Any]) -> JobRecord:
        """Store a new job and start it if a slot is free; returns at once (well under a second).

        Raises:
            ValidationError: unknown kind (the message lists the known ones), params not a
                JSON object, or params the kind's check rejects.
        """
        if kind not in JOB_KINDS:
            known = ", ".join(sorted(JOB_KINDS)) or "none"
            raise ValidationError(f"unknown job kind {kind!r}; known kinds: {known}")
        if not isinstance(params, dict):
            raise ValidationError(f"job params must be a JSON object (dict), got {type(params).__name__}")
        try:
            params_json = to_json_text(params)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"job params must be JSON-serialisable: {exc}") from None
        if kind in PARAM_CHECKS:
            PARAM_CHECKS[kind](params)
        job_id = new_job_id()
        run_dir = self.runs_dir / job_id
        run_dir.mkdir(parents=True, exist_ok=False)
        (run_dir / LOG_NAME).touch()
        record = JobRecord(
            job_id=job_id, kind=kind, state="working", progress=0.0, message="queued", created_at=time.time(),
            started_at=None, finished_at=None, run_id=job_id, run_dir=str(run_dir), error=None,
            params=json.loads(params_json),
        )
        self._store.insert(record, kind_module=JOB_KINDS[kind].__module__)
        append_log(run_dir, f"runner: job {job_id} of kind {kind!r} submitted")
        self.tick()
        return self._require(job_id)

    def get(self, job_id: str) -> JobRecord:
        """The job's current record (dead workers are detected first).

        Raises:
            JobNotFoundError: no such job in this workspace (unknown or expired).
        """
        self.tick()
        return self._require(job_id)

    def result(self, job_id: str) -> dict[str, Any] | None:
        """The stored result of a completed job; None while it runs or if it failed or was cancelled.

        Raises:
            JobNotFoundError: no such job.
        """
        self._require(job_id)
        return self._store.result(job_id)

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a job; a finished job is left as it is.

        A queued job never starts. A running job's worker is stopped (SIGTERM to its
        process group, SIGKILL after a short grace; a Ray actor stops its job itself, and is
        ray.kill-ed after the grace) before this returns. A Ray job cancelled from a runner
        using another executor still stops: its actor watches the job table.

        Raises:
            JobNotFoundError: no such job.
            ValidationError: the job's worker was launched by another executor, which cannot be
                reached from this runner (a local process, cancelled from a Ray runner).
        """
        record = self._require(job_id)
        if record.terminal:
            return record
        self._check_can_stop(job_id)
        if record.started_at is None and self._store.finish(
            job_id, "cancelled", message="cancelled before it started", queued_only=True
        ):
            append_log(Path(record.run_dir), "runner: cancelled while queued; never started")
            return self._require(job_id)
        if self._store.finish(job_id, "cancelled", message="cancelled"):
            # read after the state change: from now on no launcher can record a worker unseen
            row = self._store.row(job_id)
            append_log(Path(record.run_dir), "runner: cancel requested; stopping the worker")
            if row is not None and row["launched"] and self._owns(row):
                self.executor.stop(_handle(row))
            elif row is not None and row["launched"]:
                append_log(Path(record.run_dir), f"runner: the {row['executor']} worker stops itself")
            append_log(Path(record.run_dir), "runner: job cancelled")
        self.tick()
        return self._require(job_id)

    def resume(self, job_id: str) -> JobRecord:
        """Queue a failed or cancelled job of a resumable kind again, in its own run folder.

        The job keeps its id, run folder and params; the folder is not emptied, so the job
        continues from its latest checkpoint there. It becomes ``working`` with message
        "queued (resume)", progress 0 and ``attempts`` one higher (its error, finish time
        and any result are cleared), and starts like a queued job once fewer than
        ``max_concurrent`` run.

        Raises:
            JobNotFoundError: no such job.
            ValidationError: the job is not failed or cancelled, or its kind is not resumable.
        """
        record = self._require(job_id)
        self._check_resumable(record)
        if not self._store.requeue(job_id, from_states=RESUMABLE_STATES, message="queued (resume)"):
            self._check_resumable(self._require(job_id))  # another process resumed it first: say so
        attempts = self._require(job_id).attempts
        append_log(Path(record.run_dir), f"runner: job resumed, attempt {attempts}")
        self.tick()
        return self._require(job_id)

    def list(self, *, limit: int = 50, state: JobState | None = None) -> builtins.list[JobRecord]:
        """Up to ``limit`` jobs, newest first, optionally only those in ``state``.

        Raises:
            ValidationError: limit below 1 or an unknown state.
        """
        if not isinstance(limit, int) or limit < 1:
            raise ValidationError(f"limit must be a positive integer, got {limit!r}")
        if state is not None and state not in JOB_STATES:
            raise ValidationError(f"unknown job state {state!r}; use one of {', '.join(JOB_STATES)}")
        self.tick()
        return self._store.records(limit=limit, state=state)

    def wait(
        self,
        job_id: str,
        timeout: float,
        *,
        poll: float = 0.05,
        on_progress: Callable[[JobRecord], None] | None = None,
    ) -> JobRecord:
        """Wait up to ``timeout`` seconds for the job to finish; returns its record either way.

        Args:
            job_id: the job.
            timeout: most seconds to wait (0 checks once).
            poll: seconds between checks.
            on_progress: called with the record when first seen and whenever its state,
                progress or message changes.

        Raises:
            JobNotFoundError: no such job.
        """
        deadline = time.monotonic() + max(0.0, float(timeout))
        seen: tuple[str, float, str] | None = None
        while True:
            record = self.get(job_id)
            key = (record.state, record.progress, record.message)
            if on_progress is not None and key != seen:
                on_progress(record)
            seen = key
            left = deadline - time.monotonic()
            if record.terminal or left <= 0:
                return record
            time.sleep(min(max(poll, 0.001), left))

    def tick(self) -> None:
        """Mark jobs whose worker died as failed, then start queued jobs while slots are free.

        Also purges expired jobs once every PURGE_INTERVAL_S in a long-lived runner.
        """
        with self._tick_lock:
            self._reap()
            self._start_queued()
            if time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + PURGE_INTERVAL_S
                self.purge_expired()

    def log_path(self, job_id: str) -> Path:
        """Path of the job's log: worker stdout/stderr, the job's own messages, runner notes.

        Raises:
            JobNotFoundError: no such job.
        """
        return Path(self._require(job_id).run_dir) / LOG_NAME

    def purge_expired(self) -> builtins.list[str]:
        """Remove finished jobs older than ``ttl_seconds`` and their run folders; returns their ids."""
        purged = []
        before = time.time() - self.ttl_seconds
        for row in self._store.expired(before):
            if not self._store.delete_expired(row["job_id"], before):
                continue  # resumed since it was read: its run folder is in use again
            run_dir = Path(row["run_dir"])
            if run_dir.resolve().parent == self.runs_dir:  # never delete outside <workspace>/runs
                shutil.rmtree(run_dir, ignore_errors=True)
            purged.append(row["job_id"])
        return purged

    def close(self) -> None:
        """Close the database connection (running workers carry on)."""
        self._store.close()

    # -- internals -------------------------------------------------------------------

    def _require(self, job_id: str) -> JobRecord:
        record = self._store.record(job_id) if isinstance(job_id, str) else None
        if record is None:
            raise JobNotFoundError(
                f"no job {job_id!r} in workspace {self.workspace}",
                hint=f"list jobs to see the ids; finished jobs expire after {_duration(self.ttl_seconds)}",
            )
        return record

    def _check_resumable(self, record: JobRecord) -> None:
        if record.state not in RESUMABLE_STATES:
            hint = _NOT_RESUMABLE_HINTS.get(record.state, "wait for it to finish or cancel it first")
            raise ValidationError(
                f"job {record.job_id!r} is {record.state}; only a failed or cancelled job can be resumed", hint=hint
            )
        if record.kind not in RESUMABLE_KINDS:
            row = self._store.row(record.job_id)
            try:  # the kind may be registered by a module this process has not imported yet
                load_kind(record.kind, row["kind_module"] if row is not None else None)
            except (ImportError, LookupError):
                pass
        if record.kind not in RESUMABLE_KINDS:
            known = ", ".join(sorted(RESUMABLE_KINDS)) or "none"
            raise ValidationError(
                f"job {record.job_id!r} is of kind {record.kind!r}, which keeps no checkpoints and cannot be resumed",
                hint=f"resumable kinds: {known}; submit a new {record.kind} job instead",
            )

    def _owns(self, row: sqlite3.Row) -> bool:
        """True if this runner's executor launched the row's worker (and so can check and stop it)."""
        return (row["executor"] or "local") == self.executor_name

    def _check_can_stop(self, job_id: str) -> None:
        row = self._store.row(job_id)
        if row is None or not row["launched"] or self._owns(row) or row["executor"] in SELF_STOPPING_EXECUTORS:
            return
        theirs = row["executor"] or "local"
        raise ValidationError(
            f"job {job_id!r} runs on the {theirs} executor; this runner uses {self.executor_name} and cannot stop it",
            hint=f"cancel it from a runner with executor {theirs!r} (CLI: --executor {theirs})",
        )

    def _reap(self) -> None:
        for row in self._store.running():
            if not row["launched"]:
                if time.time() - row["started_at"] > LAUNCH_GRACE_S:
                    self._fail(row, "the worker was never launched (the process starting it ended first)")
                continue
            if not self._owns(row):
                continue  # another executor's worker: only a runner using that executor can tell if it lives
            handle = _handle(row)
            if self.executor.is_alive(handle):
                continue
            reason = self.executor.exit_reason(handle) if isinstance(self.executor, ExitReporter) else None
            if reason is None:
                reason = "killed or crashed; its exit status is unknown here (another process started it)"
            worker = f"worker process {row['pid']}" if row["pid"] is not None else "worker"
            self._fail(row, f"{worker} ended without storing a result: {reason}")

    def _fail(self, row: sqlite3.Row, error: str) -> None:
        error = redact(error)
        info = {"code": "worker_died", "message": error, "hint": DEFAULT_HINTS["worker_died"]}
        if self._store.finish(row["job_id"], "failed", message="worker died", error=error, error_info=info,
                              attempt=row["attempts"]):
            append_log(Path(row["run_dir"]), f"runner: job failed: {error}")

    def _start_queued(self) -> None:
        while (row := self._store.claim_next(self.max_concurrent)) is not None:
            job_id = row["job_id"]
            try:
                pid = self.executor.start(job_id)
            except Exception as exc:  # the job, not the caller, carries this failure
                self._fail(row, f"could not start the worker: {type(exc).__name__}: {exc}")
                continue
            pid_start = process_start_time(pid) if pid is not None else None
            if not self._store.set_worker(job_id, pid, pid_start, executor=self.executor_name):
                # cancelled between the claim and the launch: stop what was just started
                self.executor.stop(WorkerHandle(job_id=job_id, pid=pid, pid_start=pid_start, attempt=row["attempts"]))


def job_db_path(workspace: str | Path) -> Path:
    """The job database of ``workspace``: ``<workspace>/.interp-agent/jobs.sqlite`` (absolute)."""
    return Path(workspace).expanduser().resolve() / STATE_DIR / DB_NAME


def _handle(row: sqlite3.Row) -> WorkerHandle:
    return WorkerHandle(job_id=row["job_id"], pid=row["pid"], pid_start=row["pid_start"], attempt=row["attempts"])


def _duration(seconds: float) -> str:
    days = seconds / 86_400
    return f"{days:g} days" if days >= 1 else f"{seconds:g} s"
