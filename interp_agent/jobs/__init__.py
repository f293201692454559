"""Durable background jobs: anything long (inspect, match) runs as a job in its own process.

    from interp_agent.jobs import JobRunner
    runner = JobRunner("workspace")
    job = runner.submit("inspect", {"model": "toy/m", "criterion": "mentions a unit", "backend": "toy"})
    job = runner.wait(job.job_id, timeout=60)
    runner.result(job.job_id)["report"]          # <workspace>/runs/<run_id>/report.json

State lives in ``<workspace>/.interp-agent/jobs.sqlite``; artifacts and ``job.log`` in
``<workspace>/runs/<run_id>/``. Layering: this package imports ``interp_agent.core`` (and
the thin ``interp_agent.api``), never the server, the CLI or ``mcp``.

    runner   JobRunner: submit / get / result / cancel / resume / list / wait / tick / log_path
    store    the SQLite job table
    executor Executor protocol, LocalProcessExecutor (one process per job), the job log
    executors  make_executor: an executor by name
    ray_executor  RayExecutor (one detached Ray actor per job; imports ray only when used)
    worker   the worker process (python -m interp_agent.jobs.worker)
    kinds    JOB_KINDS registry (RESUMABLE_KINDS: kinds that checkpoint) and the built-in kinds
    crossmodel, scale  the cross-model kinds; the sharded harvest kind
"""

from interp_agent.jobs import crossmodel as _crossmodel  # noqa: F401  (registers the cross-model kinds)
from interp_agent.jobs import scale as _scale  # noqa: F401  (registers the harvest kind)
from interp_agent.jobs.context import JobContext
from interp_agent.jobs.executor import Executor, LocalProcessExecutor, WorkerHandle
from interp_agent.jobs.executors import make_executor
from interp_agent.jobs.kinds import JOB_KINDS, KIND_RESOURCES, RESUMABLE_KINDS, Resources, register
from interp_agent.jobs.ray_executor import RayExecutor
from interp_agent.jobs.records import JobNotFoundError, JobRecord, JobState
from interp_agent.jobs.runner import DEFAULT_TTL_SECONDS, JobRunner

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "JOB_KINDS",
    "KIND_RESOURCES",
    "RESUMABLE_KINDS",
    "Executor",
    "JobContext",
    "JobNotFoundError",
    "JobRecord",
    "JobRunner",
    "JobState",
    "LocalProcessExecutor",
    "RayExecutor",
    "Resources",
    "WorkerHandle",
    "make_executor",
    "register",
]
