"""The job runner: jobs run in their own processes, report progress, survive a runner
restart, cancel, fail with a reason, resume, respect the concurrency limit and expire.

Every test that takes ``make_runner`` runs twice: on the local executor (``[local]``) and on
the Ray executor against a real local Ray cluster (``[ray]``, marked ``ray``: run with
``make test-ray``). Where the two differ (how a killed worker's reason reads), the test
asks ``executor`` which it runs on."""

from __future__ import annotations

import os
import signal
import sqlite3
import string
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

import interp_agent
from interp_agent.core.errors import ValidationError
from interp_agent.core.secrets import redact
from interp_agent.jobs import JobContext, JobNotFoundError, JobRecord, JobRunner, WorkerHandle
from interp_agent.jobs.executor import pid_is_alive, process_start_time
from interp_agent.jobs.kinds import inspect_progress_fraction
from interp_agent.jobs.store import JobStore

MakeRunner = Callable[..., JobRunner]


@pytest.fixture(params=["local", pytest.param("ray", marks=pytest.mark.ray)])
def executor(request: pytest.FixtureRequest) -> str:
    """The executor the runners of a test use: 'local' or 'ray'."""
    return str(request.param)


@pytest.fixture
def make_runner(tmp_path: Path, executor: str, request: pytest.FixtureRequest) -> Iterator[MakeRunner]:
    """Makes runners on one workspace with ``executor`` (unless a test passes its own); jobs still working
    at the end are cancelled (no stray workers or actors)."""
    made: list[JobRunner] = []
    address = request.getfixturevalue("ray_address") if executor == "ray" else None

    def make(**kwargs: Any) -> JobRunner:
        if "executor" not in kwargs:
            kwargs.update(executor=executor, ray_address=address)
        made.append(JobRunner(tmp_path / "ws", **kwargs))
        return made[-1]

    yield make
    for runner in made:
        try:
            for record in runner.list(limit=1000, state="working"):
                runner.cancel(record.job_id)
        except sqlite3.ProgrammingError:  # closed by the test
            continue


@pytest.fixture(scope="module", autouse=True)
def disconnect_from_ray_after_the_module() -> Iterator[None]:
    """Leave Ray once this module's tests are done: a driver still connected when the session's cluster
    is stopped is ended by Ray at once, before pytest prints its summary."""
    yield
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()


def _db(runner: JobRunner) -> sqlite3.Connection:
    return sqlite3.connect(runner.db_path, timeout=10, isolation_level=None)


def _worker_pid(runner: JobRunner, job_id: str) -> int:
    with _db(runner) as db:
        (pid,) = db.execute("SELECT pid FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    assert pid is not None
    return pid


def _until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def _running(runner: JobRunner, job_id: str) -> bool:
    """The worker has started the job function (it reported some progress)."""
    return runner.get(job_id).progress > 0


def test_a_submitted_job_returns_at_once_reports_progress_and_stores_its_result(make_runner: MakeRunner) -> None:
    runner = make_runner()
    t0 = time.monotonic()
    job = runner.submit("sleep", {"seconds": 0.8, "steps": 4})
    assert time.monotonic() - t0 < 0.5
    assert job.state == "working" and job.progress == 0.0 and not job.terminal
    seen: list[JobRecord] = []
    done = runner.wait(job.job_id, 20, on_progress=seen.append)
    assert done.state == "completed" and done.terminal and done.progress == 1.0 and done.error is None
    assert done.created_at <= done.started_at <= done.finished_at
    fractions = [r.progress for r in seen if r.state == "working"]
    assert any(0.0 < f < 1.0 for f in fractions) and fractions == sorted(fractions)
    assert runner.result(job.job_id) == {"seconds": 0.8, "steps": 4}
    assert done.run_id == job.job_id and Path(done.run_dir) == runner.workspace / "runs" / done.run_id
    assert (Path(done.run_dir) / "sleep.txt").is_file()
    assert "slept 0.8 s in 4 steps" in runner.log_path(job.job_id).read_text()


def test_wait_returns_as_soon_as_a_fast_job_ends_and_gives_up_on_a_slow_one_at_the_timeout(
    make_runner: MakeRunner,
) -> None:
    runner = make_runner()
    fast = runner.submit("sleep", {"seconds": 0.1, "steps": 1})
    slow = runner.submit("sleep", {"seconds": 60, "steps": 60})
    t0 = time.monotonic()
    assert runner.wait(fast.job_id, 30).state == "completed"
    assert time.monotonic() - t0 < 10
    t0 = time.monotonic()
    record = runner.wait(slow.job_id, 0.5)
    assert 0.45 <= time.monotonic() - t0 < 3
    assert record.state == "working" and runner.result(slow.job_id) is None
    runner.cancel(slow.job_id)


def test_cancelling_a_running_job_stops_its_worker_process(make_runner: MakeRunner, executor: str) -> None:
    runner = make_runner()
    job = runner.submit("sleep", {"seconds": 60, "steps": 600})
    _until(lambda: _running(runner, job.job_id))
    pid = _worker_pid(runner, job.job_id)
    record = runner.cancel(job.job_id)
    assert record.state == "cancelled" and record.finished_at is not None
    if executor == "local":  # our child, reaped by the executor
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    else:  # the actor's process, a child of Ray's raylet (it may be a zombie for a moment)
        assert not pid_is_alive(pid, None)
    assert "worker received SIGTERM; stopping" in runner.log_path(job.job_id).read_text()  # stopped gracefully
    time.sleep(0.2)
    assert runner.get(job.job_id).state == "cancelled" and runner.result(job.job_id) is None
    assert runner.cancel(job.job_id).state == "cancelled"  # cancelling again changes nothing


def test_cancelling_a_queued_job_means_it_never_starts(make_runner: MakeRunner) -> None:
    runner = make_runner(max_concurrent=1)
    first = runner.submit("sleep", {"seconds": 60, "steps": 600})
    queued = runner.submit("sleep", {"seconds": 0.1, "steps": 1})
    assert queued.state == "working" and queued.started_at is None and queued.message == "queued"
    record = runner.cancel(queued.job_id)
    assert record.state == "cancelled" and record.started_at is None
    runner.cancel(first.job_id)
    time.sleep(0.3)
    record = runner.get(queued.job_id)
    assert record.state == "cancelled" and record.started_at is None
    assert "worker started" not in runner.log_path(queued.job_id).read_text()


def test_a_new_runner_on_the_same_workspace_lists_earlier_jobs_with_their_results(make_runner: MakeRunner) -> None:
    first = make_runner()
    job = first.submit("sleep", {"seconds": 0.1, "steps": 2})
    assert first.wait(job.job_id, 30).state == "completed"
    first.close()
    second = make_runner()
    assert [r.job_id for r in second.list()] == [job.job_id]
    assert second.list(state="completed")[0].job_id == job.job_id and second.list(state="failed") == []
    assert second.get(job.job_id).state == "completed"
    assert second.result(job.job_id) == {"seconds": 0.1, "steps": 2}


def _names_sigkill(error: str | None, executor: str) -> bool:
    """The error of a job whose worker got SIGKILL says so (Ray reports its worker process died)."""
    assert error is not None
    if executor == "local":
        return "signal 9" in error and "SIGKILL" in error
    return "ray actor died: its worker process has died" in error


def test_a_worker_killed_with_sigkill_leaves_a_failed_job_naming_the_signal(
    make_runner: MakeRunner, executor: str
) -> None:
    runner = make_runner()
    job = runner.submit("sleep", {"seconds": 60, "steps": 600})
    _until(lambda: _running(runner, job.job_id))
    pid = _worker_pid(runner, job.job_id)
    os.kill(pid, signal.SIGKILL)
    record = runner.wait(job.job_id, 10)
    assert record.state == "failed"
    assert _names_sigkill(record.error, executor), record.error
    assert f"worker process {pid} ended without storing a result" in record.error
    assert "ended without storing a result" in runner.log_path(job.job_id).read_text()


def test_a_runner_that_did_not_start_a_worker_still_detects_its_death(make_runner: MakeRunner) -> None:
    starter = make_runner()
    job = starter.submit("sleep", {"seconds": 60, "steps": 600})
    _until(lambda: _running(starter, job.job_id))
    other = make_runner()  # as a restarted server would be: it has no handle on the process
    assert other.get(job.job_id).state == "working"
    os.kill(_worker_pid(other, job.job_id), signal.SIGKILL)  # stays a zombie child of `starter`
    record = other.wait(job.job_id, 10)
    assert record.state == "failed" and "ended without storing a result" in record.error


def test_a_live_process_with_another_start_time_is_not_taken_for_the_worker() -> None:
    me, started = os.getpid(), process_start_time(os.getpid())
    assert started is not None
    assert pid_is_alive(me, started)
    assert not pid_is_alive(me, started + 1)


def test_with_a_limit_of_one_three_jobs_run_one_at_a_time_and_all_complete(make_runner: MakeRunner) -> None:
    runner = make_runner(max_concurrent=1)
    ids = [runner.submit("sleep", {"seconds": 0.3, "steps": 3}).job_id for _ in range(3)]
    most_running = 0
    deadline = time.monotonic() + 30
    while True:
        records = [r for r in runner.list() if r.job_id in ids]
        most_running = max(most_running, sum(r.state == "working" and r.started_at is not None for r in records))
        if all(r.terminal for r in records) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert [r.state for r in records] == ["completed"] * 3
    assert most_running == 1
    spans = sorted((r.started_at, r.finished_at) for r in records)
    assert all(later[0] >= earlier[1] for earlier, later in pairwise(spans))


def test_a_job_that_raises_fails_with_its_message_and_logs_the_traceback(make_runner: MakeRunner) -> None:
    runner = make_runner()
    job = runner.submit("sleep", {"seconds": 0.1, "steps": 1, "fail": True})
    record = runner.wait(job.job_id, 30)
    assert record.state == "failed"
    assert record.error == "RuntimeError: sleep job asked to fail (fail=true) after 0.1 s"
    assert runner.result(job.job_id) is None
    log = runner.log_path(job.job_id).read_text()
    assert "Traceback (most recent call last)" in log and "RuntimeError" in log


def test_a_failing_job_names_the_error_type_and_redacts_secret_environment_values(
    make_runner: MakeRunner, monkeypatch: pytest.MonkeyPatch, executor: str
) -> None:
    secret = "s3cr3t-value-9f8e7d"
    # a local worker inherits every variable; a Ray job gets only those interp-agent reads (INTERP_AGENT_*, HF_*...)
    monkeypatch.setenv("MY_API_TOKEN" if executor == "local" else "INTERP_AGENT_TEST_TOKEN", secret)
    runner = make_runner()
    bad = runner.workspace / f"{secret}.jsonl"
    bad.write_text("{not json\n")  # exists, so it passes submission; the job reading it fails
    params = {"model": "m", "criterion": "c", "records": str(bad)}
    record = runner.wait(runner.submit("inspect", params).job_id, 30)
    assert record.state == "failed" and record.error.startswith("InputFileError: ")
    assert "[REDACTED]" in record.error and secret not in record.error
    assert record.error_info is not None and record.error_info["code"] == "bad_input_file"
    assert secret not in record.error_info["message"] and record.error_info["hint"]
    assert secret not in runner.log_path(record.job_id).read_text()


def test_unknown_kinds_unknown_ids_and_bad_params_are_validation_errors(make_runner: MakeRunner) -> None:
    runner = make_runner()
    with pytest.raises(ValidationError, match="known kinds: .*sleep"):
        runner.submit("no-such-kind", {})
    for bad in ({"seconds": "long"}, {"bogus": 1}, {"steps": 0}):
        with pytest.raises(ValidationError):
            runner.submit("sleep", bad)
    with pytest.raises(ValidationError, match="criterion"):
        runner.submit("inspect", {"model": "m", "records": "r.jsonl"})
    with pytest.raises(ValidationError, match="backend"):
        runner.submit("inspect", {"model": "m", "criterion": "c", "backend": "gpu"})
    with pytest.raises(ValidationError, match="bad config"):
        runner.submit("inspect", {"model": "m", "criterion": "c", "config": {"no_such_field": 1}})
    with pytest.raises(ValidationError, match="JSON"):
        runner.submit("sleep", {"seconds": object()})
    for call in (runner.get, runner.result, runner.cancel, runner.log_path):
        with pytest.raises(JobNotFoundError) as info:
            call("no-such-job")
        assert isinstance(info.value, ValidationError) and info.value.code == "job_not_found"
    assert runner.list() == []


class _NeverRuns:
    """An executor that records what it was asked to start and runs nothing."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, job_id: str) -> int | None:
        self.started.append(job_id)
        return None

    def is_alive(self, job: WorkerHandle) -> bool:
        return True

    def stop(self, job: WorkerHandle) -> None:
        return None


def test_job_ids_are_long_random_and_unique_and_the_executor_can_be_swapped(make_runner: MakeRunner) -> None:
    executor = _NeverRuns()
    runner = make_runner(max_concurrent=1, executor=executor)
    ids = [runner.submit("sleep", {}).job_id for _ in range(20)]
    alphabet = set(string.ascii_letters + string.digits + "-_")
    assert len(set(ids)) == 20
    assert all(len(i) >= 22 and set(i) <= alphabet for i in ids)
    assert executor.started == ids[:1]  # one slot: the rest wait queued
    assert sum(r.started_at is None for r in runner.list()) == 19


def test_purge_removes_finished_jobs_past_their_ttl_and_their_run_folders(make_runner: MakeRunner) -> None:
    runner = make_runner(ttl_seconds=3600)
    old, fresh = (runner.submit("sleep", {"seconds": 0.05, "steps": 1}) for _ in range(2))
    assert runner.wait(old.job_id, 30).terminal and runner.wait(fresh.job_id, 30).terminal
    with _db(runner) as db:
        db.execute("UPDATE jobs SET finished_at = ? WHERE job_id = ?", (time.time() - 7200, old.job_id))
    restarted = make_runner(ttl_seconds=3600)  # purges on start
    with pytest.raises(JobNotFoundError):
        restarted.get(old.job_id)
    assert not Path(old.run_dir).exists()
    assert restarted.get(fresh.job_id).state == "completed" and Path(fresh.run_dir).is_dir()
    assert restarted.purge_expired() == []


def test_the_inspect_kind_on_the_toy_backend_writes_a_report_into_the_run_folder(make_runner: MakeRunner) -> None:
    runner = make_runner()
    params = {"model": "toy/model-a", "criterion": "mentions a unit", "backend": "toy", "config": {"bootstrap": 10}}
    job = runner.submit("inspect", params)
    seen: list[JobRecord] = []
    record = runner.wait(job.job_id, 60, on_progress=seen.append)
    assert record.state == "completed", record.error
    result = runner.result(job.job_id)
    assert Path(result["report"]) == Path(record.run_dir) / "report.json" and Path(result["report"]).is_file()
    assert Path(result["html"]).is_file() and Path(result["md"]).is_file()
    assert result["synthetic"] is True and result["warnings"][0].startswith("SYNTHETIC")
    assert result["summary"]["n_rows"] > 0
    assert 0 < len(result["top"]) <= 10 and result["top"][0]["rank"] == 1
    assert set(result["top"][0]) == {
        "rank", "feature_id", "label", "importance", "direction", "r_train", "r_held_out", "r_held_out_ci95",
        "auroc_held_out", "auroc_held_out_ci95", "n_held_out_prompts", "held_out_excludes_chance",
        "held_out_prompts_needed", "held_out_supported", "strong_causal_score", "notes",
    }
    lo, hi = result["top"][0]["r_held_out_ci95"]
    assert lo < result["top"][0]["r_held_out"] < hi and result["top"][0]["n_held_out_prompts"] > 3


def test_the_match_kind_writes_matches_of_two_reports_into_the_run_folder(
    make_runner: MakeRunner, tmp_path: Path
) -> None:
    interp_agent.inspect("toy/model-a", "c", backend="toy", out=tmp_path / "a")
    interp_agent.inspect("toy/model-b", "c", backend="toy", out=tmp_path / "b")
    runner = make_runner()
    params = {"left": str(tmp_path / "a" / "report.json"), "right": str(tmp_path / "b"), "use_text": False}
    record = runner.wait(runner.submit("match", params).job_id, 60)
    assert record.state == "completed", record.error
    result = runner.result(record.job_id)
    assert Path(result["matches_json"]) == Path(record.run_dir) / "matches.json"
    assert Path(result["matches_md"]).is_file() and result["synthetic"] is True
    assert len(result["matches"]) == min(10, result["summary"]["n_matches"]) > 0


def test_inspect_progress_rises_through_the_association_pass_then_the_candidate_pass() -> None:
    association = [inspect_progress_fraction("association pass", n, None) for n in (0, 1_000, 100_000, 10**9)]
    candidate = [inspect_progress_fraction("candidate pass", n, 400) for n in (0, 200, 400)]
    assert association == sorted(association) and association[-1] <= 0.45
    assert candidate == [0.45, pytest.approx(0.675), 0.9]


def test_a_resumable_job_killed_with_sigkill_resumes_in_its_run_folder_from_its_checkpoint(
    make_runner: MakeRunner, executor: str
) -> None:
    runner = make_runner()
    job = runner.submit("sleep", {"seconds": 3, "steps": 30, "checkpoint": True})
    _until(lambda: runner.get(job.job_id).progress >= 0.2)
    os.kill(_worker_pid(runner, job.job_id), signal.SIGKILL)
    failed = runner.wait(job.job_id, 10)
    assert failed.state == "failed" and failed.attempts == 1 and _names_sigkill(failed.error, executor)
    run_dir = Path(failed.run_dir)
    steps_done = int((run_dir / "sleep.checkpoint").read_text())
    assert 0 < steps_done < 30
    (run_dir / "earlier.txt").write_text("written before the resume\n")
    log_before = runner.log_path(job.job_id).read_text()

    resumed = runner.resume(job.job_id)
    assert (resumed.job_id, resumed.run_id, resumed.run_dir, resumed.params) == (
        job.job_id, job.run_id, job.run_dir, job.params
    )
    assert resumed.state == "working" and resumed.attempts == 2
    assert resumed.error is None and resumed.finished_at is None and runner.result(job.job_id) is None
    done = runner.wait(job.job_id, 30)
    assert done.state == "completed", done.error
    assert done.attempts == 2 and done.error is None and done.progress == 1.0
    result = runner.result(job.job_id)
    assert result["resumed_from_step"] >= steps_done  # steps done before the kill were not slept again
    assert (run_dir / "earlier.txt").read_text() == "written before the resume\n"
    log = runner.log_path(job.job_id).read_text()
    assert log.startswith(log_before)  # the log was appended to, not replaced
    assert "runner: job resumed, attempt 2" in log and "attempt 2: resuming from checkpoint at step" in log
    assert "kind sleep, attempt 2" in log


def test_a_resumed_job_waits_for_a_free_slot_as_queued_and_a_cancelled_job_can_resume(
    make_runner: MakeRunner,
) -> None:
    runner = make_runner(max_concurrent=1)
    job = runner.submit("sleep", {"seconds": 60, "steps": 600, "checkpoint": True})
    _until(lambda: _running(runner, job.job_id))
    assert runner.cancel(job.job_id).state == "cancelled"
    blocker = runner.submit("sleep", {"seconds": 60, "steps": 600})
    _until(lambda: _running(runner, blocker.job_id))
    queued = runner.resume(job.job_id)
    assert queued.state == "working" and queued.started_at is None and queued.message == "queued (resume)"
    assert queued.progress == 0.0 and queued.attempts == 2 and queued.finished_at is None
    time.sleep(0.3)
    assert runner.get(job.job_id).started_at is None  # the one slot is taken
    runner.cancel(blocker.job_id)
    _until(lambda: runner.get(job.job_id).started_at is not None)
    _until(lambda: "resuming from checkpoint" in runner.log_path(job.job_id).read_text())
    assert runner.cancel(job.job_id).state == "cancelled"
    assert runner.resume(job.job_id).attempts == 3  # cancelled again, resumed again


def test_resume_is_refused_for_working_and_completed_jobs_and_for_kinds_without_checkpoints(
    make_runner: MakeRunner,
) -> None:
    runner = make_runner()
    working = runner.submit("sleep", {"seconds": 60, "steps": 600})
    completed = runner.submit("sleep", {"seconds": 0.05, "steps": 1})
    bad = runner.workspace / "bad.jsonl"
    bad.write_text("{not json\n")
    failed_inspect = runner.submit("inspect", {"model": "m", "criterion": "c", "records": str(bad)})  # fails
    assert runner.wait(completed.job_id, 30).state == "completed"
    assert runner.wait(failed_inspect.job_id, 30).state == "failed"
    with pytest.raises(ValidationError, match="is working; only a failed or cancelled job can be resumed") as info:
        runner.resume(working.job_id)
    assert "cancel it" in info.value.hint
    with pytest.raises(ValidationError, match="is completed; only a failed or cancelled job") as info:
        runner.resume(completed.job_id)
    assert "submit a new job" in info.value.hint
    with pytest.raises(ValidationError, match="kind 'inspect', which keeps no checkpoints") as info:
        runner.resume(failed_inspect.job_id)
    assert "resumable kinds: harvest, sleep" in info.value.hint
    with pytest.raises(JobNotFoundError):
        runner.resume("no-such-job")
    assert runner.result(completed.job_id) == {"seconds": 0.05, "steps": 1}
    assert [runner.get(j.job_id).attempts for j in (working, completed, failed_inspect)] == [1, 1, 1]
    assert "job resumed" not in runner.log_path(failed_inspect.job_id).read_text()


def test_a_worker_or_reaper_of_an_earlier_attempt_cannot_end_the_resumed_job(make_runner: MakeRunner) -> None:
    runner = make_runner(executor=_NeverRuns())
    job = runner.submit("sleep", {})
    store = JobStore(runner.db_path)
    assert store.finish(job.job_id, "failed", message="worker died", error="killed", attempt=1)
    assert runner.resume(job.job_id).attempts == 2
    assert not store.finish(job.job_id, "failed", message="worker died", error="stale", attempt=1)
    assert runner.get(job.job_id).state == "working"
    assert store.finish(job.job_id, "completed", message="completed", result={"ok": True}, attempt=2)
    assert runner.result(job.job_id) == {"ok": True}
    store.close()


_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id        TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    kind_module   TEXT,
    params        TEXT NOT NULL,
    state         TEXT NOT NULL,
    progress      REAL NOT NULL DEFAULT 0,
    message       TEXT NOT NULL DEFAULT '',
    created_at    REAL NOT NULL,
    started_at    REAL,
    finished_at   REAL,
    run_id        TEXT NOT NULL,
    run_dir       TEXT NOT NULL,
    error         TEXT,
    result        TEXT,
    pid           INTEGER,
    pid_start     INTEGER,
    launched      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
PRAGMA user_version = 1;
"""
"""The job table as schema version 1 created it (before ``attempts``)."""


def test_a_database_from_before_attempts_gains_the_column_and_its_jobs_can_resume(
    make_runner: MakeRunner, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    (ws / ".interp-agent").mkdir(parents=True)
    run_dir = ws / "runs" / "old-job-0123456789"
    run_dir.mkdir(parents=True)
    (run_dir / "job.log").write_text("[old] worker started\n")
    now = time.time()
    with sqlite3.connect(ws / ".interp-agent" / "jobs.sqlite", isolation_level=None) as db:
        db.executescript(_SCHEMA_V1)
        db.execute(
            "INSERT INTO jobs (job_id, kind, kind_module, params, state, progress, message, created_at, started_at,"
            " finished_at, run_id, run_dir, error, launched) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,1)",
            ("old-job-0123456789", "sleep", "interp_agent.jobs.kinds", '{"seconds":0.1,"steps":2}', "failed", 0.5,
             "worker died", now - 60, now - 59, now - 58, "old-job-0123456789", str(run_dir), "worker died"),
        )
    runner = make_runner()
    with _db(runner) as db:
        columns = {row[1]: row for row in db.execute("PRAGMA table_info(jobs)")}
        (version,) = db.execute("PRAGMA user_version").fetchone()
    assert {"attempts", "error_info", "executor"} <= set(columns) and version == 4
    old = runner.get("old-job-0123456789")
    assert old.state == "failed" and old.attempts == 1
    make_runner()  # opening a migrated database again changes nothing
    assert runner.resume(old.job_id).attempts == 2
    done = runner.wait(old.job_id, 30)
    assert done.state == "completed" and done.attempts == 2, done.error
    assert runner.log_path(old.job_id).read_text().startswith("[old] worker started\n")
    fresh = runner.submit("sleep", {"seconds": 0.05, "steps": 1})
    assert fresh.attempts == 1


def test_job_progress_is_throttled_never_goes_back_and_the_last_update_is_kept(tmp_path: Path) -> None:
    stored: list[tuple[float, str]] = []
    log = (tmp_path / "job.log").open("w")
    ctx = JobContext("job", tmp_path, store_progress=lambda f, m: stored.append((f, m)), log_file=log)
    for i in range(1, 1001):
        ctx.progress(i / 1000, f"step {i}")
    ctx.progress(0.5, "later, smaller")
    ctx.flush()
    assert 2 <= len(stored) < 50
    assert stored[-1] == (1.0, "later, smaller")
    assert [f for f, _ in stored] == sorted(f for f, _ in stored)


def test_redaction_hides_values_of_secret_named_variables_only() -> None:
    env = {"HF_TOKEN": "hf_abcdef", "DB_PASSWORD": "hunter22", "HOME": "/home/me", "API_KEY": "x"}
    text = redact("token hf_abcdef, password hunter22, home /home/me, x", env)
    assert text == "token [REDACTED], password [REDACTED], home /home/me, x"


def test_importing_the_jobs_package_pulls_in_neither_mcp_nor_the_server_nor_the_cli() -> None:
    code = (
        "import sys, interp_agent.jobs, interp_agent.jobs.worker;"
        "bad = [m for m in ('mcp', 'interp_agent.server', 'interp_agent.cli', 'ray') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_job_id_never_begins_with_a_dash_so_the_command_line_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import secrets

    from interp_agent.jobs.runner import new_job_id

    drawn = iter(["-RdFQD7V5iD_ZNmHSIRekg", "--x", "RdFQD7V5iD_ZNmHSIRekg"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: next(drawn))
    assert new_job_id() == "RdFQD7V5iD_ZNmHSIRekg"
