"""The Ray executor: fails fast on a bad address, declares each job's resources to Ray, fails a job whose
actor was killed with Ray's reason and resumes it, and its jobs outlive the process that submitted them.

The tests marked ``ray`` run against a real local Ray cluster (the ``ray_address`` fixture) and only
in a loopback-only network namespace (``make test-ray``); the rest need no cluster. The runner
behaviour shared with the local executor is tested in test_runner.py on both executors.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from interp_agent.core.errors import MissingDependencyError, ValidationError
from interp_agent.jobs import JobRunner, make_executor
from interp_agent.jobs.kinds import GIB, job_resources
from interp_agent.jobs.ray_executor import (
    DEFAULT_NAMESPACE,
    RayExecutor,
    actor_name,
    describe_ray_error,
    forwarded_env,
    ray_options,
)

TRAIN_ON_GPU = {"activations": ["acts.npy"], "hookpoint": "blocks.1.hook_resid_post", "device": "cuda"}
"""A train_sae job that asks for a GPU (its file is never read: the job never gets a GPU to start on)."""


def _until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def _row(runner: JobRunner, job_id: str) -> sqlite3.Row:
    with sqlite3.connect(runner.db_path, timeout=10) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()


@pytest.fixture
def ray_runners(tmp_path: Path, ray_address: str) -> Iterator[Callable[..., JobRunner]]:
    """Makes Ray-executor runners on one workspace; their working jobs are cancelled at the end."""
    made: list[JobRunner] = []

    def make(**kwargs: object) -> JobRunner:
        made.append(JobRunner(tmp_path / "ws", executor="ray", ray_address=ray_address, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for runner in made:
        for record in runner.list(limit=1000, state="working"):
            runner.cancel(record.job_id)


@pytest.fixture(scope="module", autouse=True)
def disconnect_from_ray_after_the_module() -> Iterator[None]:
    """Leave Ray once this module's tests are done: a driver still connected when the session's cluster
    is stopped is ended by Ray at once, before pytest prints its summary."""
    yield
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()


# -- no cluster needed ---------------------------------------------------------------------


def test_each_kind_declares_its_resources_and_a_cuda_device_asks_for_a_gpu() -> None:
    assert ray_options("sleep", {}) == {"num_cpus": 0.25, "num_gpus": 0.0}
    assert ray_options("inspect", {"model": "m"}) == {"num_cpus": 1.0, "num_gpus": 0.0, "memory": 2 * GIB}
    assert ray_options("train_sae", TRAIN_ON_GPU) == {"num_cpus": 2.0, "num_gpus": 1.0, "memory": 4 * GIB}
    assert ray_options("explain", {"device": "cuda:1"})["num_gpus"] == 1.0
    assert ray_options("train_sae", {"device": "cpu"})["num_gpus"] == 0.0
    assert job_resources("train_crosscoder", {}).memory_bytes == 4 * GIB
    assert job_resources("no-such-kind", {}).cpus == 1.0  # an unregistered kind gets the default


def test_only_the_variables_interp_agent_reads_are_forwarded_to_ray_jobs() -> None:
    env = {"HF_TOKEN": "hf_x", "HUGGING_FACE_HUB_TOKEN": "t", "INTERP_AGENT_CACHE": "/c", "OMP_NUM_THREADS": "1",
           "NEURONPEDIA_API_KEY": "k", "CUDA_VISIBLE_DEVICES": "0", "AWS_SECRET_ACCESS_KEY": "s", "HOME": "/h"}
    assert forwarded_env(env) == {"HF_TOKEN": "hf_x", "HUGGING_FACE_HUB_TOKEN": "t", "INTERP_AGENT_CACHE": "/c",
                                  "OMP_NUM_THREADS": "1", "NEURONPEDIA_API_KEY": "k"}


def test_ray_errors_become_short_reasons() -> None:
    killed = ("The actor died unexpectedly before finishing this task.\n\tclass_name: JobActor\n"
              "The actor is dead because it was killed by `ray.kill`.")
    died = ("The actor died unexpectedly before finishing this task.\nThe actor is dead because its worker process "
            "has died. Worker exit type: SYSTEM_ERROR Worker exit detail: Worker unexpectedly exits with a "
            "connection error code 2. End of file. Some common causes include: (1) the OOM killer")
    assert describe_ray_error(RuntimeError(killed)) == "ray actor died: it was killed by ray.kill"
    assert describe_ray_error(RuntimeError(died)) == (
        "ray actor died: its worker process has died (exit type SYSTEM_ERROR: Worker unexpectedly exits with a "
        "connection error code 2. End of file)")
    assert describe_ray_error(TimeoutError("took too long. more")) == "ray: TimeoutError: took too long"


def test_an_unknown_executor_or_an_address_for_the_local_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown executor 'slurm'") as info:
        make_executor("slurm", tmp_path / "db", tmp_path)
    assert "local, ray" in str(info.value.hint)
    with pytest.raises(ValidationError, match="with the local executor"):
        JobRunner(tmp_path / "ws", ray_address="127.0.0.1:6379")


def test_without_the_ray_package_the_executor_says_which_extra_to_install(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['ray'] = None\n"  # what a missing package looks like to `import ray`
            "from interp_agent.jobs import JobRunner\n"
            f"JobRunner({str(tmp_path / 'ws')!r}, executor='ray')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert MissingDependencyError.__name__ in proc.stderr and "pip install 'interp-agent[scale]'" in proc.stderr


# -- against a local Ray cluster ---------------------------------------------------------------


def test_an_unreachable_ray_address_fails_fast_naming_the_address_and_how_to_start_a_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], free_port: Callable[[], int]
) -> None:
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'interp-agent[scale]'")
    from interp_agent.cli import main

    address = f"127.0.0.1:{free_port()}"  # nothing listens there; no cluster is started
    t0 = time.monotonic()
    with pytest.raises(ValidationError) as info:
        RayExecutor(tmp_path / "jobs.sqlite", tmp_path, address=address)
    assert time.monotonic() - t0 < 5
    assert address in info.value.message and "no Ray cluster answers" in info.value.message
    assert "ray start --head --port 6379" in str(info.value.hint) and "--ray-address HOST:PORT" in str(info.value.hint)
    with pytest.raises(ValidationError, match="is not HOST:PORT"):
        RayExecutor(tmp_path / "jobs.sqlite", tmp_path, address="no-port")
    code = main(["jobs", "list", "--workspace", str(tmp_path / "ws"), "--executor", "ray", "--ray-address", address])
    err = capsys.readouterr().err
    assert code != 0 and address in err and "ray start --head" in err


@pytest.mark.ray
def test_a_job_needing_a_gpu_the_node_lacks_fails_at_once_naming_what_is_missing(
    ray_runners: Callable[..., JobRunner],
) -> None:
    runner = ray_runners()
    record = runner.wait(runner.submit("train_sae", TRAIN_ON_GPU).job_id, 20)
    assert record.state == "failed" and "could not start the worker" in str(record.error)
    assert "a train_sae job needs 2 CPU, 1 GPU, 4.0 GiB memory, but this Ray node has only 0 GPU" in str(record.error)


@pytest.mark.ray
def test_a_job_waits_in_ray_while_the_cpus_it_declares_are_taken_then_runs(
    ray_runners: Callable[..., JobRunner],
) -> None:
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    runner = ray_runners()  # connects this process to the cluster
    every_cpu = placement_group([{"CPU": ray.cluster_resources()["CPU"]}])  # reserves them while it lives
    ray.get(every_cpu.ready(), timeout=60)
    job = runner.submit("sleep", {"seconds": 0.3, "steps": 3})
    time.sleep(1.5)
    record = runner.get(job.job_id)  # waiting is not dying: the job is neither reaped nor started
    assert record.state == "working" and record.started_at is not None and record.message == "starting worker"
    assert record.progress == 0 and _row(runner, job.job_id)["pid"] is None
    assert "ray: actor" in runner.log_path(job.job_id).read_text()
    assert "worker started" not in runner.log_path(job.job_id).read_text()
    remove_placement_group(every_cpu)
    done = runner.wait(job.job_id, 30)
    assert done.state == "completed", done.error


@pytest.mark.ray
def test_a_job_whose_actor_is_killed_fails_with_the_ray_reason_and_resumes_from_its_checkpoint(
    ray_runners: Callable[..., JobRunner],
) -> None:
    import ray

    runner = ray_runners()
    job = runner.submit("sleep", {"seconds": 3, "steps": 30, "checkpoint": True})
    _until(lambda: runner.get(job.job_id).progress >= 0.2)
    ray.kill(ray.get_actor(actor_name(job.job_id, 1), namespace=DEFAULT_NAMESPACE))
    failed = runner.wait(job.job_id, 10)
    assert failed.state == "failed" and failed.error_info is not None and failed.error_info["code"] == "worker_died"
    assert "ended without storing a result: ray actor died: it was killed by ray.kill" in str(failed.error)
    steps_done = int((Path(failed.run_dir) / "sleep.checkpoint").read_text())
    assert 0 < steps_done < 30
    assert runner.resume(job.job_id).attempts == 2
    done = runner.wait(job.job_id, 30)
    assert done.state == "completed", done.error
    result = runner.result(job.job_id)
    assert result is not None and result["resumed_from_step"] >= steps_done


_SUBMIT_AND_EXIT = """
import sys
from interp_agent.jobs import JobRunner
runner = JobRunner(sys.argv[1], executor="ray", ray_address=sys.argv[2])
for seconds, steps in ((60, 600), (1.5, 3)):
    print(runner.submit("sleep", {"seconds": seconds, "steps": steps}).job_id)
"""


@pytest.mark.ray
def test_jobs_outlive_the_process_that_submitted_them_and_another_runner_tells_live_from_dead(
    tmp_path: Path, ray_address: str, ray_runners: Callable[..., JobRunner]
) -> None:
    ws = tmp_path / "ws"
    proc = subprocess.run([sys.executable, "-c", _SUBMIT_AND_EXIT, str(ws), ray_address],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    long_id, short_id = proc.stdout.split()
    runner = ray_runners()  # as a restarted server would be: a new executor, no handle on the actors
    assert runner.wait(short_id, 30).state == "completed"
    assert runner.result(short_id) == {"seconds": 1.5, "steps": 3}
    _until(lambda: runner.get(long_id).progress > 0)
    assert runner.get(long_id).state == "working"  # alive, though its submitter is gone
    os.kill(_row(runner, long_id)["pid"], signal.SIGKILL)
    record = runner.wait(long_id, 10)
    assert record.state == "failed"
    assert "ended without storing a result: killed or crashed; its exit status is unknown here" in str(record.error)


@pytest.mark.ray
def test_a_local_runner_leaves_ray_jobs_alone_and_its_cancel_stops_them(
    ray_runners: Callable[..., JobRunner],
) -> None:
    import ray

    ray_runner = ray_runners()
    job = ray_runner.submit("sleep", {"seconds": 60, "steps": 600})
    _until(lambda: ray_runner.get(job.job_id).progress > 0)
    local = JobRunner(ray_runner.workspace)  # e.g. `interp-agent jobs list` without --executor ray
    assert local.get(job.job_id).state == "working"  # not taken for a dead local process
    assert local.cancel(job.job_id).state == "cancelled"
    name = actor_name(job.job_id, 1)

    def gone() -> bool:
        try:
            ray.get_actor(name, namespace=DEFAULT_NAMESPACE)
        except ValueError:
            return True
        return False

    _until(gone, timeout=10)  # the actor saw the cancel in the job table and stopped itself
    log = local.log_path(job.job_id).read_text()
    assert "the ray worker stops itself" in log and "worker received SIGTERM; stopping" in log
    local.close()


@pytest.mark.ray
def test_ray_messages_about_a_dead_worker_go_to_stderr_never_to_stdout(
    ray_runners: Callable[..., JobRunner], capfd: pytest.CaptureFixture[str]
) -> None:
    runner = ray_runners()  # stdout is the JSON-RPC channel of `serve`: nothing else may write there
    job = runner.submit("sleep", {"seconds": 60, "steps": 600})
    _until(lambda: runner.get(job.job_id).progress > 0)
    capfd.readouterr()
    os.kill(_row(runner, job.job_id)["pid"], signal.SIGKILL)
    assert runner.wait(job.job_id, 10).state == "failed"
    out, err = "", ""
    deadline = time.monotonic() + 10
    while "A worker died or was killed" not in err and time.monotonic() < deadline:
        time.sleep(0.1)
        captured = capfd.readouterr()
        out, err = out + captured.out, err + captured.err
    assert "A worker died or was killed" in err  # Ray's message arrived, on stderr
    assert "worker died" not in out.lower() and "raylet" not in out
