"""The worker process of one job: ``python -m interp_agent.jobs.worker --db DB --job=ID``.

It loads the job's kind and params from the job table, runs the registered job function
with a ``JobContext``, and stores the result (state ``completed``) or the error (state
``failed``; the traceback goes to job.log only). If the job was cancelled before the
worker got going, it exits at once. SIGTERM (a cancel) ends it with status 143; the
canceller has already stored ``cancelled``, so the worker writes no state then.
A resumed job runs again in its run folder, which the worker never empties: what an
earlier attempt wrote (checkpoints, job.log) is still there, and ``ctx.attempt`` says
which attempt this is.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType

from interp_agent.core.errors import InterpAgentError, error_info
from interp_agent.core.secrets import redact
from interp_agent.jobs.context import JobContext
from interp_agent.jobs.kinds import load_kind
from interp_agent.jobs.store import JobStore, to_json_text

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_NO_JOB = 2
EXIT_TERMINATED = 128 + signal.SIGTERM


class WorkerTerminated(BaseException):
    """Raised in the worker when it receives SIGTERM, so cleanup (temporary files) runs."""


def describe_error(exc: BaseException) -> str:
    """'<ExceptionType>: <message>' (an InterpAgentError's message includes its hint), secrets redacted."""
    text = str(exc) if isinstance(exc, InterpAgentError) else (str(exc) or repr(exc))
    return redact(f"{type(exc).__name__}: {text}")


def run_job(store: JobStore, job_id: str) -> int:
    """Run job ``job_id`` from ``store`` to a terminal state; returns the process exit status."""
    row = store.row(job_id)
    if row is None:
        print(f"no job {job_id!r} in {store.path}", file=sys.stderr)
        return EXIT_NO_JOB
    if row["state"] != "working":
        return EXIT_OK  # cancelled (or reaped) before this worker started
    run_dir = Path(row["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "job.log", "a", encoding="utf-8") as log:
        ctx = JobContext(
            job_id, run_dir, store_progress=lambda f, m: store.set_progress(job_id, f, m), log_file=log,
            attempt=row["attempts"],
        )
        ctx.log(f"worker started: job {job_id}, kind {row['kind']}, attempt {ctx.attempt}")
        try:
            fn = load_kind(row["kind"], row["kind_module"])
            result = fn(json.loads(row["params"]), ctx)
            if not isinstance(result, dict):
                raise TypeError(f"job kind {row['kind']!r} returned {type(result).__name__}, not a dict")
            to_json_text(result)  # fails here, as the job's error, if the result is not JSON
            ctx.flush()
        except WorkerTerminated:
            ctx.log("worker received SIGTERM; stopping")
            store.finish(
                job_id, "failed", message="worker terminated", error="worker received SIGTERM", attempt=ctx.attempt,
                error_info={"code": "cancelled", "message": "the job's worker received SIGTERM and stopped",
                            "hint": "start the job again, or job_resume it if its kind keeps checkpoints"},
            )
            return EXIT_TERMINATED
        except Exception as exc:  # the job's own failure: stored, not re-raised
            ctx.flush()
            log.write(redact(traceback.format_exc()))
            error = describe_error(exc)
            ctx.log(f"job failed: {error}")
            info = {k: redact(v) for k, v in error_info(exc).items()}
            store.finish(job_id, "failed", message="failed", error=error, error_info=info, attempt=ctx.attempt)
            return EXIT_JOB_FAILED
        store.finish(job_id, "completed", message="completed", result=result, attempt=ctx.attempt)
        ctx.log("job completed")
    return EXIT_OK


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM handler of a worker: raise ``WorkerTerminated`` in the job (a second SIGTERM kills at once)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise WorkerTerminated()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker process."""
    parser = argparse.ArgumentParser(prog="python -m interp_agent.jobs.worker", description=__doc__)
    parser.add_argument("--db", required=True, help="path of jobs.sqlite")
    parser.add_argument("--job", required=True, help="job id (pass as --job=ID)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, on_sigterm)
    store = JobStore(args.db)
    try:
        return run_job(store, args.job)
    except WorkerTerminated:
        return EXIT_TERMINATED
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
