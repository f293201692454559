"""``JobContext``: what a running job function gets from its worker."""

from __future__ import annotations

import datetime as _dt
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from interp_agent.core.secrets import redact

PROGRESS_INTERVAL_S = 0.1
"""Least time between two stored progress updates (at most ~10 writes a second)."""

LOG_PROGRESS_INTERVAL_S = 1.0
"""Least time between two progress lines in job.log."""


class JobContext:
    """The handle a job function reports through, and the folder it writes into.

    Progress is monotonic (a smaller fraction than the last one is raised to it, as MCP
    progress notifications require) and throttled; the latest update is always stored
    by ``flush``, which the worker calls before storing the result.
    """

    __slots__ = ("job_id", "run_dir", "attempt", "_store", "_log", "_last", "_last_write", "_last_logged", "_pending")

    def __init__(
        self,
        job_id: str,
        run_dir: Path,
        *,
        store_progress: Callable[[float, str], object] | None = None,
        log_file: TextIO | None = None,
        attempt: int = 1,
    ) -> None:
        """Context of job ``job_id``.

        Args:
            job_id: the job's id.
            run_dir: folder for the job's artifacts (exists).
            store_progress: called with (fraction, message) at most every PROGRESS_INTERVAL_S.
            log_file: where ``log`` writes (default stderr, which a worker sends to job.log).
            attempt: which run of the job this is: 1, plus one per resume.
        """
        self.job_id = job_id
        """The job's id."""
        self.run_dir = run_dir
        """Folder for the job's artifacts: ``<workspace>/runs/<run_id>``."""
        self.attempt = attempt
        """Which run of the job this is: 1 for the first, 2 and up after ``JobRunner.resume`` (same run
        folder: a resumable kind continues from its latest checkpoint there)."""
        self._store = store_progress
        self._log = log_file
        self._last = 0.0
        self._last_write = float("-inf")
        self._last_logged = float("-inf")
        self._pending: tuple[float, str] | None = None

    def progress(self, fraction: float, message: str) -> None:
        """Report ``fraction`` (0..1) done and a status message."""
        fraction = max(self._last, min(1.0, max(0.0, float(fraction))))
        self._last = fraction
        self._pending = (fraction, redact(message))
        if time.monotonic() - self._last_write >= PROGRESS_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        """Store the latest progress update if it has not been stored yet."""
        if self._pending is None:
            return
        fraction, message = self._pending
        self._pending = None
        now = time.monotonic()
        self._last_write = now
        if self._store is not None:
            self._store(fraction, message)
        if now - self._last_logged >= LOG_PROGRESS_INTERVAL_S or fraction >= 1.0:
            self._last_logged = now
            self.log(f"progress {fraction:.0%}: {message}")

    def log(self, message: str) -> None:
        """Append a timestamped line to the job's log (job.log); secrets are redacted."""
        stamp = _dt.datetime.now().isoformat(timespec="seconds")
        out = self._log if self._log is not None else sys.stderr
        out.write(f"[{stamp}] {redact(message)}\n")
        out.flush()
