"""Where job workers run: the ``Executor`` interface and the local-process executor.

The runner never touches processes itself; it asks an executor to start, check and stop
the worker of a job. ``LocalProcessExecutor`` runs each job in its own process
(``python -m interp_agent.jobs.worker``) in a new session, so a cancel can signal the
worker and everything it spawned. A distributed engine (e.g. Ray) fits in as another
class with the same three methods: ``RayExecutor`` (``jobs.ray_executor``) runs each job in a
detached Ray actor. ``jobs.executors.make_executor`` builds either by name; callers of the runner do not
change.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from interp_agent.core.secrets import redact

LOG_NAME = "job.log"
"""A job's log in its run folder: worker stdout/stderr, the job's own messages, runner notes."""

STOP_GRACE_S = 3.0
"""Seconds a worker gets between SIGTERM and SIGKILL."""

_MAX_REMEMBERED_EXITS = 1024

ExecutorName = Literal["local", "ray"]
EXECUTOR_NAMES: tuple[str, ...] = ("local", "ray")
"""The executors ``jobs.executors.make_executor`` builds: local processes, or Ray actors."""


@dataclass(frozen=True, slots=True)
class WorkerHandle:
    """What the runner knows about the worker of a started job."""

    job_id: str
    """The job the worker runs."""
    pid: int | None
    """Process id the executor returned from ``start`` (None for executors without local processes)."""
    pid_start: int | None
    """Start time of ``pid`` in clock ticks since boot (/proc/<pid>/stat field 22); tells a reused pid apart."""
    attempt: int = 1
    """Which attempt of the job the worker runs (1, plus one per resume)."""


class Executor(Protocol):
    """Starts, checks and stops the worker of a job.

    An executor may also have a ``name`` attribute ('local', 'ray'; default 'local'): the runner
    stores it with each job it launches and leaves jobs launched by another executor alone.
    """

    def start(self, job_id: str) -> int | None:
        """Start the worker of ``job_id``; returns its pid when it is a local process."""
        ...

    def is_alive(self, job: WorkerHandle) -> bool:
        """True while the job's worker may still write to the job table."""
        ...

    def stop(self, job: WorkerHandle) -> None:
        """Stop the job's worker and return once it is gone."""
        ...


@runtime_checkable
class ExitReporter(Protocol):
    """Optional extra of an executor: why a worker that is no longer alive ended."""

    def exit_reason(self, job: WorkerHandle) -> str | None:
        """'killed by signal 9 (SIGKILL)', 'exited with status 1', ...; None when unknown."""
        ...


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None (no such process, or no /proc)."""
    stat = _proc_stat(pid)
    return None if stat is None else int(stat[19])


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (after the command name), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError, OSError):
        return None
    # the command name (field 2) is in parentheses and may itself contain spaces and ')'
    return text[text.rindex(")") + 2 :].split()


def pid_is_alive(pid: int, pid_start: int | None) -> bool:
    """True if ``pid`` runs and is the process that started at ``pid_start`` (zombies count as dead)."""
    if Path("/proc/self/stat").exists():
        stat = _proc_stat(pid)
        if stat is None or stat[0] in ("Z", "X"):
            return False
        return pid_start is None or int(stat[19]) == pid_start
    try:  # no /proc (macOS): liveness only; a reused pid cannot be told apart
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe_returncode(code: int) -> str:
    """Human-readable exit of a process from its ``Popen.returncode``."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return f"killed by signal {-code} ({name})"
    return f"exited with status {code}"


class LocalProcessExecutor:
    """Runs each job in its own local process: ``python -m interp_agent.jobs.worker``.

    The worker starts in a new session (its own process group), with the workspace as its
    working directory, and its stdout/stderr appended to ``<run_dir>/job.log``.
    """

    name = "local"

    def __init__(self, db_path: str | Path, workspace: str | Path, *, stop_grace_s: float = STOP_GRACE_S) -> None:
        """Executor for the jobs in ``db_path``; workers run in ``workspace``.

        Args:
            db_path: the job database.
            workspace: the workspace folder (workers' working directory; runs/ lives there).
            stop_grace_s: seconds between SIGTERM and SIGKILL when stopping a worker.
        """
        self.db_path = Path(db_path)
        self.workspace = Path(workspace)
        self.stop_grace_s = stop_grace_s
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._exits: dict[str, tuple[int, int]] = {}  # job_id -> (pid, returncode) of ended children
        self._lock = threading.Lock()

    def start(self, job_id: str) -> int | None:
        """Launch the worker process of ``job_id``; returns its pid."""
        log = self.workspace / "runs" / job_id / "job.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            proc = subprocess.Popen(
                # --job=ID, not --job ID: a token_urlsafe id may begin with '-'
                [sys.executable, "-m", "interp_agent.jobs.worker", "--db", str(self.db_path), f"--job={job_id}"],
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=str(self.workspace),
                start_new_session=True,
            )
        with self._lock:
            self._reap_finished()
            self._children[job_id] = proc
        return proc.pid

    def is_alive(self, job: WorkerHandle) -> bool:
        """True while the worker process runs (a child of this process, or one found via /proc)."""
        proc = self._child(job)
        if proc is not None:
            return proc.poll() is None
        return job.pid is not None and pid_is_alive(job.pid, job.pid_start)

    def exit_reason(self, job: WorkerHandle) -> str | None:
        """How the worker ended, when this process started it; else None."""
        proc = self._child(job)
        if proc is not None:
            return None if proc.poll() is None else describe_returncode(proc.returncode)
        with self._lock:
            ended = self._exits.get(job.job_id)
        return describe_returncode(ended[1]) if ended is not None and ended[0] == job.pid else None

    def stop(self, job: WorkerHandle) -> None:
        """SIGTERM the worker's process group, SIGKILL it after the grace period, wait until gone."""
        if job.pid is None:
            return
        proc = self._child(job)
        if proc is None and not pid_is_alive(job.pid, job.pid_start):
            return  # gone already, or the pid now belongs to another process: leave it alone
        self._signal_group(job.pid, signal.SIGTERM)
        if self._wait_gone(job, proc, self.stop_grace_s):
            self._signal_group(job.pid, signal.SIGKILL)  # children left behind by the worker
            return
        self._signal_group(job.pid, signal.SIGKILL)
        self._wait_gone(job, proc, 5.0)

    def _child(self, job: WorkerHandle) -> subprocess.Popen[bytes] | None:
        with self._lock:
            proc = self._children.get(job.job_id)
        return proc if proc is not None and proc.pid == job.pid else None

    def _wait_gone(self, job: WorkerHandle, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
        if proc is not None:
            try:
                proc.wait(timeout=timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if job.pid is None or not pid_is_alive(job.pid, job.pid_start):
                return True
            time.sleep(0.02)
        return False

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        # start_new_session made the worker a group leader: its process group id is its pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)

    def _reap_finished(self) -> None:
        """Collect ended children (no zombies pile up); keep their exit codes for ``exit_reason``."""
        for job_id, proc in list(self._children.items()):
            if proc.poll() is not None:
                del self._children[job_id]
                self._exits[job_id] = (proc.pid, proc.returncode)
        for job_id in list(self._exits)[: max(0, len(self._exits) - _MAX_REMEMBERED_EXITS)]:
            del self._exits[job_id]


def append_log(run_dir: Path, message: str) -> None:
    """Append a timestamped, redacted line to the job's log, ``<run_dir>/job.log`` (best effort)."""
    stamp = _dt.datetime.now().isoformat(timespec="seconds")
    try:
        with open(run_dir / LOG_NAME, "a", encoding="utf-8") as fh:
            fh.write(f"[{stamp}] {redact(message)}\n")
    except OSError:
        pass
