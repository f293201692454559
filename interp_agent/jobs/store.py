"""The job table in SQLite: one row per job, shared by the runner and its worker processes.

The database lives at ``<workspace>/.interp-agent/jobs.sqlite`` in WAL mode with a busy
timeout, so several processes (servers, CLIs, workers) can read and write it at once.
Every state change is a single guarded ``UPDATE ... WHERE state = 'working'``: whoever
writes first (the worker storing its result, a canceller, a reaper) wins, and the others
change nothing. Only local disks are supported: SQLite's WAL does not work over NFS.

Opening a database made by an older version adds the columns it lacks (``_ADDED_COLUMNS``)
with ``ALTER TABLE ... ADD COLUMN``; their defaults fill the existing rows.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from interp_agent.core.artifacts import clean_json
from interp_agent.jobs.records import JobRecord

SCHEMA_VERSION = 4
BUSY_TIMEOUT_S = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id        TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    kind_module   TEXT,              -- module that registers the kind; the worker imports it
    params        TEXT NOT NULL,     -- JSON object
    state         TEXT NOT NULL,
    progress      REAL NOT NULL DEFAULT 0,
    message       TEXT NOT NULL DEFAULT '',
    created_at    REAL NOT NULL,
    started_at    REAL,              -- NULL while queued
    finished_at   REAL,
    run_id        TEXT NOT NULL,
    run_dir       TEXT NOT NULL,
    error         TEXT,
    error_info    TEXT,              -- JSON {code, message, hint} of a failed job
    result        TEXT,              -- JSON object of a completed job
    pid           INTEGER,           -- worker process id (recorded by the runner, or by a Ray worker itself)
    pid_start     INTEGER,           -- field 22 of /proc/<pid>/stat: tells a reused pid apart
    launched      INTEGER NOT NULL DEFAULT 0, -- 1 once the executor has started the worker
    attempts      INTEGER NOT NULL DEFAULT 1, -- runs of the job: 1, plus one per resume
    executor      TEXT               -- which executor launched the worker: 'local', 'ray' (NULL: local)
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
"""

_ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("attempts", "INTEGER NOT NULL DEFAULT 1"),  # schema version 2: resume
    ("error_info", "TEXT"),  # schema version 3: structured job errors
    ("executor", "TEXT"),  # schema version 4: executors other than local processes (Ray)
)
"""Columns added since schema version 1, as (name, declaration); older databases get them on open."""


def to_json_text(value: Any) -> str:
    """Strict JSON text of ``value`` (NaN and infinities become null)."""
    return json.dumps(clean_json(value), allow_nan=False, separators=(",", ":"))


class JobStore:
    """Reads and writes the job table; safe to share between threads of one process."""

    def __init__(self, path: str | Path) -> None:
        """Open (and create when missing) the job database at ``path``."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        with self._lock:
            self._db.executescript(_SCHEMA)
            self._add_missing_columns()
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _add_missing_columns(self) -> None:
        # in one write transaction, so two processes opening an old database at once add each column once
        self._db.execute("BEGIN IMMEDIATE")
        try:
            present = {row["name"] for row in self._db.execute("PRAGMA table_info(jobs)")}
            for name, declaration in _ADDED_COLUMNS:
                if name not in present:
                    self._db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {declaration}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    # -- reading ---------------------------------------------------------------------

    def row(self, job_id: str) -> sqlite3.Row | None:
        """The raw row of a job (internal columns included), or None."""
        with self._lock:
            return self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()

    def record(self, job_id: str) -> JobRecord | None:
        """The job's record, or None when no such job exists."""
        row = self.row(job_id)
        return None if row is None else to_record(row)

    def records(self, *, limit: int, state: str | None = None) -> list[JobRecord]:
        """Up to ``limit`` records, newest first, optionally only those in ``state``."""
        query = "SELECT * FROM jobs" + (" WHERE state = ?" if state else "")
        query += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        args: tuple[Any, ...] = (state, limit) if state else (limit,)
        with self._lock:
            return [to_record(r) for r in self._db.execute(query, args).fetchall()]

    def running(self) -> list[sqlite3.Row]:
        """Rows of jobs that have a worker assigned and are not finished."""
        with self._lock:
            return self._db.execute(
                "SELECT * FROM jobs WHERE state = 'working' AND started_at IS NOT NULL"
            ).fetchall()

    # -- writing ---------------------------------------------------------------------

    def insert(self, record: JobRecord, *, kind_module: str | None) -> None:
        """Store a new job."""
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (job_id, kind, kind_module, params, state, progress, message, created_at,"
                " started_at, finished_at, run_id, run_dir, error, attempts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.job_id, record.kind, kind_module, to_json_text(record.params), record.state,
                    record.progress, record.message, record.created_at, record.started_at,
                    record.finished_at, record.run_id, record.run_dir, record.error, record.attempts,
                ),
            )

    def claim_next(self, max_concurrent: int) -> sqlite3.Row | None:
        """Mark the oldest queued job started if fewer than ``max_concurrent`` run; returns its row.

        The count and the claim happen in one write transaction, so two processes ticking
        at once never exceed the limit or start the same job twice.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (n_running,) = self._db.execute(
                    "SELECT COUNT(*) FROM jobs WHERE state = 'working' AND started_at IS NOT NULL"
                ).fetchone()
                row = None
                if n_running < max_concurrent:
                    row = self._db.execute(
                        "SELECT * FROM jobs WHERE state = 'working' AND started_at IS NULL"
                        " ORDER BY created_at, rowid LIMIT 1"
                    ).fetchone()
                    if row is not None:
                        self._db.execute(
                            "UPDATE jobs SET started_at = ?, message = 'starting worker' WHERE job_id = ?",
                            (time.time(), row["job_id"]),
                        )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return None if row is None else self.row(row["job_id"])

    def set_worker(self, job_id: str, pid: int | None, pid_start: int | None, *, executor: str = "local") -> bool:
        """Mark the worker launched by ``executor``, with its pid and start time; False if the job is no longer working.

        With ``pid`` None (an executor without local processes) a pid the worker already recorded
        itself (``set_pid``) is kept, and the message stays 'starting worker' until it does.
        """
        if pid is None:
            return self._update(job_id, "launched = 1, executor = ?", (executor,))
        sets = (
            "launched = 1, executor = ?, pid = ?, pid_start = ?,"
            " message = CASE message WHEN 'starting worker' THEN 'running' ELSE message END"
        )
        return self._update(job_id, sets, (executor, pid, pid_start))

    def set_pid(self, job_id: str, pid: int, pid_start: int | None, *, attempt: int) -> bool:
        """A worker records its own pid (executors that start no local process); False if the job is no longer
        working on ``attempt`` (cancelled, reaped or resumed meanwhile: the worker must not run it then)."""
        sets = "pid = ?, pid_start = ?, message = CASE message WHEN 'starting worker' THEN 'running' ELSE message END"
        return self._update(job_id, sets, (pid, pid_start), extra="AND attempts = ?", extra_args=(attempt,))

    def set_progress(self, job_id: str, progress: float, message: str) -> bool:
        """Store progress (clamped to 0..1) and message; False if the job is no longer working."""
        return self._update(
            job_id, "progress = ?, message = ?", (min(1.0, max(0.0, float(progress))), message)
        )

    def finish(
        self,
        job_id: str,
        state: str,
        *,
        message: str,
        error: str | None = None,
        error_info: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
        queued_only: bool = False,
        attempt: int | None = None,
    ) -> bool:
        """Move a working job to a terminal ``state``; False if it was already finished.

        Args:
            queued_only: only if the job has not started (used to cancel a queued job).
            attempt: only if the job is still on this attempt (a worker or reaper of an
                earlier attempt must not end a resumed job).
            error_info: ``{code, message, hint}`` of the failure, for callers that act on it.
        """
        sets = "state = ?, message = ?, error = ?, error_info = ?, result = ?, finished_at = ?"
        args: tuple[Any, ...] = (
            state, message, error, None if error_info is None else to_json_text(error_info),
            None if result is None else to_json_text(result), time.time()
        )
        if state == "completed":
            sets += ", progress = 1.0"
        extra, extra_args = ("AND started_at IS NULL" if queued_only else ""), ()
        if attempt is not None:
            extra, extra_args = f"{extra} AND attempts = ?", (attempt,)
        return self._update(job_id, sets, args, extra=extra, extra_args=extra_args)

    def requeue(self, job_id: str, *, from_states: tuple[str, ...], message: str) -> bool:
        """Put a finished job back in the queue as its next attempt; False unless it was in ``from_states``.

        The job keeps its id, run folder, params and ``created_at`` (so it queues ahead of
        jobs submitted after it); progress, error, result, finish time and worker are
        cleared and ``attempts`` goes up by one.
        """
        marks = ",".join("?" * len(from_states))
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET state = 'working', progress = 0, message = ?, started_at = NULL,"
                " finished_at = NULL, error = NULL, error_info = NULL, result = NULL, pid = NULL, pid_start = NULL,"
                " launched = 0, executor = NULL,"
                f" attempts = attempts + 1 WHERE job_id = ? AND state IN ({marks})",
                (message, job_id, *from_states),
            )
            return cur.rowcount > 0

    def set_finished_at(self, job_id: str, finished_at: float) -> None:
        """Overwrite a job's finish time (tests and maintenance)."""
        with self._lock:
            self._db.execute("UPDATE jobs SET finished_at = ? WHERE job_id = ?", (finished_at, job_id))

    def expired(self, before: float) -> list[sqlite3.Row]:
        """Rows of finished jobs whose ``finished_at`` is earlier than ``before``."""
        with self._lock:
            return self._db.execute(
                "SELECT * FROM jobs WHERE state IN ('completed', 'failed', 'cancelled')"
                " AND finished_at IS NOT NULL AND finished_at < ?",
                (before,),
            ).fetchall()

    def delete_expired(self, job_id: str, before: float) -> bool:
        """Remove a job's row if it is still finished before ``before`` (not resumed meanwhile)."""
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM jobs WHERE job_id = ? AND state IN ('completed', 'failed', 'cancelled')"
                " AND finished_at IS NOT NULL AND finished_at < ?",
                (job_id, before),
            )
            return cur.rowcount > 0

    def result(self, job_id: str) -> dict[str, Any] | None:
        """The stored result of a completed job, else None."""
        row = self.row(job_id)
        if row is None or row["state"] != "completed" or row["result"] is None:
            return None
        return json.loads(row["result"])

    def _update(
        self, job_id: str, sets: str, args: tuple[Any, ...], *, extra: str = "", extra_args: tuple[Any, ...] = ()
    ) -> bool:
        with self._lock:
            cur = self._db.execute(
                f"UPDATE jobs SET {sets} WHERE job_id = ? AND state = 'working' {extra}", (*args, job_id, *extra_args)
            )
            return cur.rowcount > 0


def to_record(row: sqlite3.Row) -> JobRecord:
    """The public record of a row (internal columns dropped)."""
    return JobRecord(
        job_id=row["job_id"], kind=row["kind"], state=row["state"], progress=row["progress"],
        message=row["message"], created_at=row["created_at"], started_at=row["started_at"],
        finished_at=row["finished_at"], run_id=row["run_id"], run_dir=row["run_dir"], error=row["error"],
        params=json.loads(row["params"]), attempts=row["attempts"],
        error_info=json.loads(row["error_info"]) if row["error_info"] else None,
    )
