"""``RayExecutor``: each job runs in a detached, named Ray actor with the resources its kind declares.

    runner = JobRunner("workspace", executor="ray", ray_address="10.0.0.5:6379")

The actor (``job-<job_id>-<attempt>`` in the namespace ``interp-agent``) is *detached*: Ray's
GCS owns it, so it outlives the process that submitted it, as a local worker outlives a server
restart, and any runner connected to the cluster finds it by name to tell whether the job's
worker lives. The job runs in the actor's constructor, which the GCS drives to the end even
when its submitter is gone (a method call would be lost with the caller): the actor changes
into the workspace, records its own pid in the job table, runs ``worker.run_job`` (the same
code a local worker runs: progress, result and error go to the SQLite job table, artifacts and
job.log to ``<workspace>/runs/<run_id>/``), then exits itself.

Cancel: the runner stores ``cancelled`` and calls ``stop``. The actor watches the job table and,
once its job is cancelled, raises SIGTERM in its job, which ends the way a local worker's does
(so a cancel from any runner, even one with no handle on the actor, stops it). After
``stop_grace_s`` the actor is ``ray.kill``\\ ed. (``ray.cancel`` does not fit: it acts on method
calls, and on a running method of a sync actor it only sets a flag the job would have to poll.)
A dead actor's Ray error ("killed by ray.kill", "its worker process has died") becomes the
job's error via ``exit_reason``.

The actors are pinned to the node the runner runs on: the job table is SQLite in WAL mode,
which every process using it must open on one host (see ``docs/scale-out.md``).

Importing this module does not import ray; the first ``RayExecutor`` does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from interp_agent.core.errors import MissingDependencyError, ValidationError
from interp_agent.jobs.executor import STOP_GRACE_S, WorkerHandle, append_log, pid_is_alive, process_start_time
from interp_agent.jobs.kinds import Resources, job_resources, load_kind

log = logging.getLogger("interp_agent.jobs.ray")

DEFAULT_NAMESPACE = "interp-agent"
"""Ray namespace of the job actors."""

CONNECT_TIMEOUT_S = 2.5
"""Seconds the TCP check of a given Ray address waits before the address counts as unreachable."""

KILL_WAIT_S = 10.0
"""Seconds ``stop`` waits for a ``ray.kill``\\ ed actor (and its process) to be gone."""

CANCEL_POLL_S = 0.2
"""Seconds between two looks of a running job actor at its job's state (a cancel is seen this fast)."""

FORWARDED_ENV_PREFIXES: tuple[str, ...] = ("INTERP_AGENT_", "HF_", "HUGGING_FACE_", "TRANSFORMERS_")
FORWARDED_ENV_NAMES: frozenset[str] = frozenset({
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM", "NEURONPEDIA_API_KEY", "GOODFIRE_API_KEY",
    "NDIF_API_KEY", "OPENAI_API_KEY", "WANDB_API_KEY",
})
"""Environment variables of the submitting process that a job actor gets (what interp-agent and its libraries
read). Others are not sent to the cluster; CUDA_VISIBLE_DEVICES is Ray's to set."""

_MAX_REMEMBERED_ACTORS = 1024

START_HINT = (
    "start a cluster with `ray start --head --port 6379` on the head node and pass its address with "
    "--ray-address HOST:PORT (Python: ray_address='HOST:PORT'), or set RAY_ADDRESS"
)


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        MissingDependencyError: ray is not installed (``pip install 'interp-agent[scale]'``).
    """
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "scale", "the Ray executor") from None
    return ray


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast unless something accepts TCP connections at ``address`` (HOST:PORT, ray:// allowed).

    Raises:
        ValidationError: the address is malformed or nothing answers there within ``timeout``.
    """
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValidationError(f"Ray address {address!r} is not HOST:PORT", hint=START_HINT)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ValidationError(
            f"no Ray cluster answers at {address} ({type(exc).__name__}: {exc})", hint=START_HINT
        ) from None


def forwarded_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of ``environ`` (default ``os.environ``) a job actor gets (``FORWARDED_ENV_*``)."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if k.startswith(FORWARDED_ENV_PREFIXES) or k in FORWARDED_ENV_NAMES}


def actor_name(job_id: str, attempt: int) -> str:
    """Name of the actor running attempt ``attempt`` of job ``job_id``."""
    return f"job-{job_id}-{attempt}"


def describe_ray_error(exc: BaseException) -> str:
    """A short reason from a Ray error: 'ray actor died: it was killed by ray.kill', ..."""
    text = " ".join(str(exc).split())
    cause = text.split("The actor is dead because ", 1)
    if len(cause) == 2:
        reason = cause[1].split(" Some common causes", 1)[0].split(" The actor never ran", 1)[0]
        reason = reason.replace("`", "").rstrip(". ")
        reason = re.sub(r"\. Worker exit type: (\S+) Worker exit detail: (.*)", r" (exit type \1: \2)", reason)
        return f"ray actor died: {reason}"
    first = text.split(". ", 1)[0][:300]
    return f"ray: {type(exc).__name__}: {first}"


def ray_options(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The resource part of the ``.options(...)`` of a job actor: ``num_cpus``, ``num_gpus``, ``memory``."""
    needs = job_resources(kind, params)
    options: dict[str, Any] = {"num_cpus": needs.cpus, "num_gpus": needs.gpus}
    if needs.memory_bytes:
        options["memory"] = needs.memory_bytes
    return options


def keep_stdout_clean() -> None:
    """Send the messages a Ray driver prints about dead workers to stderr instead of stdout.

    A driver prints cluster error messages ("(raylet) A worker died or was killed ...") to
    stdout, where an MCP server over stdio speaks JSON-RPC: one such line corrupts the stream.
    Ray has no switch for it, so its printing function is wrapped (once) to mark every
    message as stderr; if Ray's internals change, nothing is wrapped and nothing breaks.
    """
    try:
        from ray._private import worker as ray_worker
    except ImportError:
        return
    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None or getattr(original, "interp_agent_wrapped", False):
        return

    def to_stderr(data: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        return original({**data, "is_err": True}, *args, **kwargs)

    to_stderr.interp_agent_wrapped = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = to_stderr


# -- inside the actor ------------------------------------------------------------------


class JobActor:
    """The Ray actor that runs one attempt of one job (wrapped with ``ray.remote`` by ``RayExecutor``).

    The job runs in the constructor: Ray's GCS runs a detached actor's creation to the end even
    after its submitter is gone; the actor then exits itself.
    """

    def __init__(self, db_path: str, workspace: str, job_id: str, attempt: int) -> None:
        """Run attempt ``attempt`` of job ``job_id`` to a terminal state in this process, then exit the actor."""
        from ray.actor import exit_actor

        try:
            self.exit_status = run_in_actor(db_path, workspace, job_id, attempt)
        finally:
            exit_actor()


def run_in_actor(db_path: str, workspace: str, job_id: str, attempt: int) -> int:
    """What a job actor does: record its pid, run the job (stopping itself once it is cancelled), return the
    worker's exit status (``worker.EXIT_*``)."""
    from interp_agent.jobs.store import JobStore
    from interp_agent.jobs.worker import EXIT_OK, EXIT_TERMINATED, WorkerTerminated, run_job

    os.chdir(workspace)
    store = JobStore(db_path)
    try:
        if not store.set_pid(job_id, os.getpid(), process_start_time(os.getpid()), attempt=attempt):
            return EXIT_OK  # cancelled, reaped or resumed before this actor got going
        row = store.row(job_id)
        log_path = Path(row["run_dir"] if row is not None else workspace) / "job.log"
        with _stop_when_cancelled(db_path, job_id, attempt), _output_to(log_path):
            return run_job(store, job_id)
    except WorkerTerminated:  # the SIGTERM arrived after run_job had returned
        return EXIT_TERMINATED
    finally:
        store.close()


@contextlib.contextmanager
def _output_to(log_path: Path) -> Iterator[None]:
    """Python-level stdout/stderr of the job (prints, warnings, progress bars) appended to job.log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8", buffering=1) as fh, contextlib.redirect_stdout(fh), \
            contextlib.redirect_stderr(fh):
        yield


@contextlib.contextmanager
def _stop_when_cancelled(db_path: str, job_id: str, attempt: int) -> Iterator[None]:
    """While inside: a thread watches the job's row and sends SIGTERM to the job once it is cancelled.

    The worker's SIGTERM handler turns it into ``WorkerTerminated`` in the job (cleanup runs, as
    in a local worker). Without the main thread (signals need it) nothing is watched and a cancel
    ends in ``ray.kill`` after the grace period.
    """
    from interp_agent.jobs.store import JobStore
    from interp_agent.jobs.worker import on_sigterm

    main = threading.main_thread()
    if threading.current_thread() is not main or main.ident is None:
        yield
        return
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    done = threading.Event()

    def watch() -> None:
        store = JobStore(db_path)
        try:
            while not done.wait(CANCEL_POLL_S):
                row = store.row(job_id)
                if row is None or row["state"] == "cancelled" or row["attempts"] != attempt:
                    signal.pthread_kill(main.ident, signal.SIGTERM)  # type: ignore[arg-type]
                    return
        finally:
            store.close()

    watcher = threading.Thread(target=watch, name="interp-agent-cancel-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join(timeout=2 * CANCEL_POLL_S + 1)
        signal.signal(signal.SIGTERM, previous)


# -- the executor ------------------------------------------------------------------------


class RayExecutor:
    """Runs each job in a detached named Ray actor with its kind's resources (see the module doc)."""

    name = "ray"

    def __init__(
        self,
        db_path: str | Path,
        workspace: str | Path,
        *,
        address: str | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        stop_grace_s: float = STOP_GRACE_S,
        start_local: bool = True,
    ) -> None:
        """Connect to the Ray cluster (see ``connect``) for the jobs in ``db_path``.

        Args:
            db_path: the job database (on a path the job actors see: they run on this node).
            workspace: the workspace folder (the actors' working directory; runs/ lives there).
            address: HOST:PORT of the cluster; default RAY_ADDRESS, else the cluster ``ray start``
                left on this machine, else a new local Ray instance that ends with this process.
            namespace: Ray namespace of the job actors (runners sharing jobs must agree on it).
            stop_grace_s: seconds a cancelled job gets to stop itself before ``ray.kill``.
            start_local: with no address and no cluster found, start a local Ray instance (True) or
                fail (False: a runner that only checks jobs must not take a fresh, empty instance
                for the cluster its jobs run on).

        Raises:
            MissingDependencyError: ray is not installed.
            ValidationError: ``address`` is unreachable or not a Ray cluster; no cluster found
                and ``start_local`` is False.
        """
        self.db_path = Path(db_path)
        self.workspace = Path(workspace)
        self.address = address
        self.namespace = namespace
        self.stop_grace_s = stop_grace_s
        self.start_local = start_local
        self._ray = import_ray()
        self._actors: dict[tuple[str, int], Any] = {}  # (job_id, attempt) -> handle of an actor this executor made
        self._lock = threading.Lock()
        self.connect()
        self._actor_class = self._ray.remote(JobActor)

    def connect(self) -> str:
        """Connect this process to the cluster unless it is already connected; returns which cluster, in words.

        The cluster is ``address``, else RAY_ADDRESS, else the one ``ray start`` recorded on this
        machine; each is first checked with a TCP connect, so a wrong or stale address fails in
        seconds instead of Ray's minute of retries. With none of them, a new local instance is
        started (``start_local``) or a ValidationError raised.

        Raises:
            ValidationError: the address is unreachable, ray.init fails there, or (``start_local``
                False) no cluster is found.
        """
        ray = self._ray
        if self.address:
            check_reachable(self.address)  # even when connected: a wrong address must not pass unnoticed
        if ray.is_initialized():
            current = ray.get_runtime_context().gcs_address
            if self.address and current != self.address.removeprefix("ray://"):
                log.warning("ray executor: asked for %s but this process is connected to %s already; using that",
                            self.address, current)
            return f"the Ray cluster at {current} this process is connected to"
        keep_stdout_clean()
        address, where = self._find_cluster()
        self._init(where, address=address, namespace=self.namespace, log_to_driver=False)
        log.info("ray executor: connected to %s, namespace %s", where, self.namespace)
        return where

    def _find_cluster(self) -> tuple[str, str]:
        """(address for ray.init, which cluster in words); the address is checked to answer first."""
        if self.address:
            return self.address, f"the Ray cluster at {self.address}"
        env = os.environ.get("RAY_ADDRESS", "")
        if env and env not in ("auto", "local"):
            check_reachable(env)
            return env, f"the Ray cluster at RAY_ADDRESS={env}"
        recorded = _recorded_cluster()
        if recorded:
            try:
                check_reachable(recorded)
                return recorded, f"the Ray cluster at {recorded}, which `ray start` left on this machine"
            except ValidationError as exc:
                if not self.start_local:
                    raise ValidationError(f"the Ray cluster `ray start` recorded on this machine is gone: "
                                          f"{exc.message}", hint=START_HINT) from None
        if not self.start_local:
            raise ValidationError("no running Ray cluster found: RAY_ADDRESS is not set and `ray start` left none "
                                  "on this machine", hint=START_HINT)
        return "local", "a new local Ray instance (no cluster was found; its jobs end when this process does)"

    def _init(self, where: str, **kwargs: Any) -> None:
        try:
            self._ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ValidationError(f"could not connect to {where}: {type(exc).__name__}: {exc}",
                                  hint=START_HINT) from None

    # -- Executor --------------------------------------------------------------------------

    def start(self, job_id: str) -> int | None:
        """Create the job's actor (on this node, with its kind's resources), which runs the job; returns None.

        Raises:
            ValidationError: this node has fewer CPUs, GPUs or memory in all than the job needs.
        """
        from interp_agent.jobs.store import JobStore

        store = JobStore(self.db_path)
        try:
            row = store.row(job_id)
        finally:
            store.close()
        if row is None:
            raise LookupError(f"no job {job_id!r} in {self.db_path}")
        with contextlib.suppress(ImportError, LookupError):
            load_kind(row["kind"], row["kind_module"])  # a kind's declared resources come with its module
        params, attempt = json.loads(row["params"]), int(row["attempts"])
        options = ray_options(row["kind"], params)
        node_id = self._ray.get_runtime_context().get_node_id()
        shortfall = self._shortfall(node_id, options)
        if shortfall:  # Ray would refuse the pinned actor as unschedulable: say why in our words
            raise ValidationError(
                f"a {row['kind']} job needs {_needs_text(options)}, but this Ray node has only {shortfall}",
                hint="Ray jobs run on the node of the runner (the job table is SQLite there): run the server or "
                     "CLI on a node that has it, or ask for less (e.g. device 'cpu')",
            )
        actor = self._actor_class.options(
            name=actor_name(job_id, attempt), namespace=self.namespace, lifetime="detached", max_restarts=0,
            runtime_env={"env_vars": forwarded_env()}, scheduling_strategy=self._pinned(node_id), **options,
        ).remote(str(self.db_path), str(self.workspace), job_id, attempt)
        with self._lock:
            self._actors[(job_id, attempt)] = actor
            for key in list(self._actors)[: max(0, len(self._actors) - _MAX_REMEMBERED_ACTORS)]:
                del self._actors[key]
        append_log(Path(row["run_dir"]), f"ray: actor {actor_name(job_id, attempt)} created ({_needs_text(options)})")
        return None

    def is_alive(self, job: WorkerHandle) -> bool:
        """True while the job's actor exists (pending, creating or running), by name, from any runner."""
        return self._lookup(job) is not None

    def exit_reason(self, job: WorkerHandle) -> str | None:
        """The Ray error of the job's actor ('ray actor died: ...') when this executor started it; else None."""
        with self._lock:
            actor = self._actors.pop((job.job_id, job.attempt), None)
        if actor is None:
            return None
        try:  # a call on a dead actor raises the error that says why it died
            self._ray.get(actor.__ray_ready__.remote(), timeout=5.0)
        except Exception as exc:  # noqa: BLE001 - every Ray error is a reason here
            return describe_ray_error(exc)
        return None

    def stop(self, job: WorkerHandle) -> None:
        """Wait ``stop_grace_s`` for the cancelled job's actor to stop itself, then ``ray.kill`` it; returns once
        the actor (and, when it ran on this machine, its process) is gone.

        An actor that has not started the job (no pid recorded: waiting for resources) is killed at once.
        """
        actor = self._lookup(job)
        grace = self.stop_grace_s if job.pid is not None else 0.0
        if actor is not None and not self._wait(lambda: self._lookup(job) is None, grace):
            with contextlib.suppress(Exception):
                self._ray.kill(actor, no_restart=True)
            self._wait(lambda: self._lookup(job) is None, KILL_WAIT_S)
        if job.pid is not None:
            pid = job.pid
            self._wait(lambda: not pid_is_alive(pid, job.pid_start), KILL_WAIT_S)

    # -- internals -------------------------------------------------------------------------

    def _lookup(self, job: WorkerHandle) -> Any:
        try:
            return self._ray.get_actor(actor_name(job.job_id, job.attempt), namespace=self.namespace)
        except ValueError:
            return None

    @staticmethod
    def _wait(condition: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    @staticmethod
    def _pinned(node_id: str) -> Any:
        """Hard affinity to ``node_id``: the job table (SQLite WAL) must be opened on one host."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)

    def _shortfall(self, node_id: str, options: dict[str, Any]) -> str:
        """What this node lacks for ``options`` in all ('0 GPU'), or '' when it has enough (busy or not)."""
        node = next((n for n in self._ray.nodes() if n.get("NodeID") == node_id), None)
        if node is None:
            return ""
        total = node.get("Resources", {})
        short = [f"{total.get(key, 0):g} {key}" for opt, key in (("num_cpus", "CPU"), ("num_gpus", "GPU"))
                 if options.get(opt, 0) > total.get(key, 0)]
        if options.get("memory", 0) > total.get("memory", 0):
            short.append(f"{total.get('memory', 0) / 2**30:.1f} GiB memory")
        return ", ".join(short)


def _recorded_cluster() -> str | None:
    """The address of the cluster the last ``ray start`` on this machine recorded, if any (Ray's own lookup)."""
    try:
        from ray._private.services import find_bootstrap_address

        return find_bootstrap_address(None) or None
    except Exception:  # noqa: BLE001 - a private Ray function: its absence means no recorded cluster
        return None


def _needs_text(options: dict[str, Any]) -> str:
    memory = options.get("memory", 0)
    return f"{options['num_cpus']:g} CPU, {options['num_gpus']:g} GPU, " + (
        f"{memory / 2**30:.1f} GiB memory" if memory else "no memory reserved")


__all__ = [
    "DEFAULT_NAMESPACE", "FORWARDED_ENV_NAMES", "FORWARDED_ENV_PREFIXES", "JobActor", "RayExecutor", "Resources",
    "actor_name", "check_reachable", "describe_ray_error", "forwarded_env", "import_ray", "ray_options",
]
