"""The service subcommands: ``serve`` runs the MCP server, ``jobs`` reads and steers its background jobs."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from interp_agent.cli.options import Subparsers, add_json_flag
from interp_agent.cli.output import emit
from interp_agent.core.errors import ValidationError

_WORKSPACE_DEFAULT = "(default: $INTERP_AGENT_WORKSPACE or the current folder)"


def _workspace(value: str | None) -> Path:
    return Path(value or os.environ.get("INTERP_AGENT_WORKSPACE") or Path.cwd())


def _add_workspace(p: argparse.ArgumentParser, what: str) -> None:
    """``--workspace``, resolved by ``_workspace``."""
    p.add_argument("--workspace", help=f"{what} {_WORKSPACE_DEFAULT}")


def _add_executor(p: argparse.ArgumentParser, what: str, *, starts_ray: bool) -> None:
    """``--executor`` and ``--ray-address``; ``starts_ray``: with no cluster found, a new local one is started."""
    local_fallback = ", else a new local one" if starts_ray else ""
    p.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help=f"{what}: local (a process per job, default) or ray (a Ray actor per job with its kind's CPUs, GPUs "
        "and memory; needs the scale extra)",
    )
    p.add_argument(
        "--ray-address",
        metavar="HOST:PORT",
        help="Ray cluster to use with --executor ray (default: $RAY_ADDRESS, else the cluster `ray start` left "
        f"on this machine{local_fallback})",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """``serve``: the MCP tools over stdio."""
    from interp_agent.server import serve

    serve(
        _workspace(args.workspace), read_roots=tuple(args.read_root), max_concurrent_jobs=args.max_jobs,
        executor=args.executor, ray_address=args.ray_address, read_only=args.read_only,
    )
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    """``jobs``: list, follow, fetch, cancel or resume the background jobs of a workspace."""
    from interp_agent.jobs import JobRunner, make_executor
    from interp_agent.jobs.runner import job_db_path

    workspace = _workspace(args.workspace)
    # never a fresh local Ray instance here: its empty cluster would make every Ray job look dead
    executor = make_executor(args.executor, job_db_path(workspace), workspace.expanduser().resolve(),
                             ray_address=args.ray_address, ray_start_local=False)
    runner = JobRunner(workspace, executor=executor)
    if args.action == "list":
        jobs = [j.model_dump(mode="json") for j in runner.list(limit=args.limit)]
        lines = [f"{j['job_id']}  {j['kind']:<8} {j['state']:<10} {j['progress']:>4.0%}  {j['message']}" for j in jobs]
        emit(args, {"jobs": jobs}, "\n".join(lines) or "no jobs")
        return 0
    if not args.job_id:
        raise ValidationError(f"jobs {args.action} needs a JOB_ID; list them with: interp-agent jobs list")
    if args.action == "status":
        job = runner.get(args.job_id).model_dump(mode="json")
        emit(args, job, f"{job['job_id']}  {job['kind']}  {job['state']}  {job['progress']:.0%}  {job['message']}")
    elif args.action == "result":
        job = runner.get(args.job_id)
        result = runner.result(args.job_id)
        emit(
            args,
            {"job": job.model_dump(mode="json"), "result": result},
            json.dumps(result, indent=2) if result is not None else f"{job.state}: {job.error or job.message}",
        )
    elif args.action == "resume":
        job = runner.resume(args.job_id).model_dump(mode="json")
        emit(args, job, f"{job['job_id']}  {job['state']}  attempt {job['attempts']}  {job['message']}")
    else:
        job = runner.cancel(args.job_id).model_dump(mode="json")
        emit(args, job, f"{job['job_id']}  {job['state']}")
    return 0


def add_service_parsers(sub: Subparsers) -> None:
    """Register ``serve`` and ``jobs`` on the subparsers action ``sub``."""
    p = sub.add_parser("serve", help="serve the MCP tools over stdio (JSON-RPC on stdout, logs on stderr)")
    _add_workspace(p, "folder for runs, job state and outputs; path arguments resolve here")
    p.add_argument(
        "--read-root",
        action="append",
        default=[],
        metavar="DIR",
        help="an extra folder whose files tools may read (repeatable)",
    )
    p.add_argument("--max-jobs", type=int, default=2, help="background jobs running at once (default 2)")
    _add_executor(p, "where background jobs run", starts_ray=True)
    p.add_argument(
        "--read-only",
        action="store_true",
        help="hide the tools that publish, write outside the workspace or are destructive (publish, job_cancel); "
        "the server's instructions list them. Model and SAE caches still fill (see docs/operations.md)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("jobs", help="list, follow, fetch, cancel or resume background jobs of a workspace")
    p.add_argument(
        "action",
        choices=["list", "status", "result", "cancel", "resume"],
        help="resume: run a failed or cancelled job again in its run folder, from its last checkpoint "
        "(kinds that checkpoint only)",
    )
    p.add_argument("job_id", nargs="?", help="job id (not for list)")
    _add_workspace(p, "the server's workspace")
    p.add_argument("--limit", type=int, default=20, help="jobs to list (default 20)")
    _add_executor(p, "the executor the server uses (to check, stop and start its jobs)", starts_ray=False)
    add_json_flag(p)
    p.set_defaults(func=cmd_jobs)
