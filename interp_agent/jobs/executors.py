"""``make_executor``: an executor by name, above both kinds (local processes, Ray actors)."""

from __future__ import annotations

from pathlib import Path

from interp_agent.core.errors import ValidationError
from interp_agent.jobs.executor import EXECUTOR_NAMES, Executor, ExecutorName, LocalProcessExecutor


def make_executor(
    kind: ExecutorName | str,
    db_path: str | Path,
    workspace: str | Path,
    *,
    ray_address: str | None = None,
    ray_start_local: bool = True,
) -> Executor:
    """The executor called ``kind``: 'local' (a process per job) or 'ray' (a Ray actor per job).

    Args:
        kind: 'local' or 'ray'.
        db_path: the job database.
        workspace: the workspace folder.
        ray_address: HOST:PORT of the Ray cluster ('ray' only); default: RAY_ADDRESS, the cluster
            ``ray start`` left on this machine, else a new local Ray instance.
        ray_start_local: False: fail instead of starting a new local Ray instance when no
            cluster is found (for runners that check jobs a server started).

    Raises:
        ValidationError: an unknown kind, ``ray_address`` with 'local', or (for 'ray') ray not
            installed or the cluster unreachable.
    """
    if kind == "local":
        if ray_address:
            raise ValidationError(f"a Ray address ({ray_address}) was given with the local executor",
                                  hint="add --executor ray, or drop --ray-address")
        return LocalProcessExecutor(db_path, workspace)
    if kind == "ray":
        from interp_agent.jobs.ray_executor import RayExecutor  # imports ray only now

        return RayExecutor(db_path, workspace, address=ray_address, start_local=ray_start_local)
    raise ValidationError(f"unknown executor {kind!r}", hint=f"use one of: {', '.join(EXECUTOR_NAMES)}")
