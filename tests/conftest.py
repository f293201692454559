"""Shared fixtures: paths of test inputs and small helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SEED = FIXTURES / "seed"


@pytest.fixture
def seed_dir() -> Path:
    """Folder of the interp-lab seed example inputs."""
    return SEED


def write_lines(path: Path, lines: list[str]) -> Path:
    """Write raw lines to a file (for malformed-input tests)."""
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def private_embedding_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's label embeddings go to its own folder, never the user's cache.

    Tests swap in stand-in encoders: reading real embeddings cached under the same text
    (or leaving stand-in ones behind) would make a test's result depend on what ran before.
    The model caches stay shared: re-dequantising the embedded model per test would be slow.
    """
    import os

    from interp_agent.core.cache import CACHE_ENV
    from interp_agent.core.matching import text

    folder = tmp_path_factory.mktemp("embeddings")
    real = text.embedding_cache_dir

    def cache_dir(name: str = text.ENCODER_NAME) -> Path:
        # a test that moves the whole cache root ($INTERP_AGENT_CACHE) tests the real layout
        return real(name) if os.environ.get(CACHE_ENV) else folder / name

    monkeypatch.setattr(text, "embedding_cache_dir", cache_dir)
    return folder


@pytest.fixture(autouse=True)
def no_save_mounted_on_object():
    """A test that leaves ``save`` on every object fails itself, not whichever test imports anyio next.

    ``import nnsight`` mounts ``save`` into ``object``'s type dict (nnsight/_c/py_mount.c), which
    breaks every anyio ``TypedAttributeSet`` defined afterwards, hence ``import mcp``
    (``TypeError: Attribute 'save' is missing its type annotation``); the exporters take it back
    (``interp_agent.core.bridges.exporters.import_nnsight``). Checked here so that a leak is
    reported against the test that caused it.
    """
    before = "save" in vars(object)
    yield
    if not before:
        assert "save" not in vars(object), "this test left .save mounted on object (import nnsight?)"


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run torch on one thread for a module: its models are tiny, and on a shared CPU extra threads mostly wait."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def write_letter_prompts():
    """A function that writes ``n`` positives (letters a-f, x-z, ending in one of x-z) and ``n`` negatives (a-f,
    k-m, ending in one of k-m) as scored prompts JSONL to ``path`` and returns it: the class shows in the text and
    in its last character (criterion: "the text uses the letters x, y and z")."""

    def write(path: Path, n: int = 36) -> Path:
        import json

        import numpy as np

        rng = np.random.default_rng(0)
        rows = []
        for label, letters in ((1, "abcdefxyz"), (0, "abcdefklm")):
            for i in range(n):
                text = "".join(rng.choice(list(letters), size=int(rng.integers(12, 20)))) + letters[6 + i % 3]
                rows.append({"prompt_id": f"{label}-{i}", "text": text, "criterion_score": label})
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path

    return write


EXPLAIN_WORDS = "rain snow storm bread cheese soup river music seven forty train garden".split()
"""Words of the tiny explain corpus."""


@pytest.fixture(scope="session")
def write_explain_inputs():
    """A function that writes synthetic explain inputs into a folder: ``model/`` (a tiny random Llama with a
    character tokenizer), ``sae/`` (a random TopK SAE, 24 latents, k 4, at blocks.1.hook_resid_post) and
    ``corpus.txt`` (``n_passages`` lines of random words); returns the folder."""

    def write(folder: Path, n_passages: int = 400) -> Path:
        import numpy as np

        from interp_agent.core.models.loading import tiny_model
        from interp_agent.core.sae.lens import SaeWeights, save_sae_lens

        tiny = tiny_model("llama", n_layers=2, d_model=32, seed=1)
        tiny.model.save_pretrained(folder / "model")
        tiny.tokenizer.save_pretrained(folder / "model")
        rng = np.random.default_rng(0)
        W = (rng.normal(size=(32, 24)) / np.sqrt(32)).astype(np.float32)
        save_sae_lens(folder / "sae", SaeWeights("blocks.1.hook_resid_post", W, np.zeros(24, np.float32), W.T.copy(),
                                                 np.zeros(32, np.float32), None, "topk", 4))
        (folder / "corpus.txt").write_text("\n".join(" ".join(rng.choice(EXPLAIN_WORDS, 8))
                                                     for _ in range(n_passages)))
        return folder

    return write


def loopback_only_network() -> bool:
    """True inside a network namespace whose only interface is the loopback (``make test-ray``)."""
    try:  # if_nameindex asks the kernel about this process's namespace (/sys/class/net may not)
        return [name for _, name in socket.if_nameindex()] == ["lo"]
    except OSError:
        return False


RAY_SKIP_REASON = (
    "Ray tests start a local Ray cluster and run only in a loopback-only network namespace: "
    "run `make test-ray` (unshare -n, as root), which `make test` calls"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Outside a loopback-only namespace the ``ray`` tests are skipped (make test runs them in one)."""
    if loopback_only_network():
        return
    skip = pytest.mark.skip(reason=RAY_SKIP_REASON)
    for item in items:
        if "ray" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Address (host:port) of a local Ray cluster started with ``ray start --head`` on 127.0.0.1.

    It declares 4 logical CPUs (the machine has 2 cores: jobs mostly sleep or wait in tests) and no
    dashboard; it is stopped at the end of the session. The test process is not connected to it:
    code under test connects with ``ray.init(address=...)`` as a user's would.
    """
    if not loopback_only_network():
        pytest.skip(RAY_SKIP_REASON)
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'interp-agent[scale]'")
    ray_bin = Path(sys.executable).with_name("ray")
    temp = tmp_path_factory.mktemp("ray")
    # no token auth: the cluster listens on the loopback of a namespace nothing else can reach
    os.environ.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    env = dict(os.environ)
    port = pick_free_port()
    cmd = [str(ray_bin), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=4",
           "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
           f"--object-store-memory={256 * 1024 * 1024}", f"--temp-dir={temp}"]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        if ray.is_initialized():  # a driver still connected when the raylet goes is ended by Ray
            ray.shutdown()
        # `ray stop` ends every Ray process this user runs; make test-ray runs one cluster at a time
        subprocess.run([str(ray_bin), "stop", "--force"], env=env, capture_output=True, timeout=120)


def pick_free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """``pick_free_port``: a fresh free port on 127.0.0.1 per call (torchrun masters, unreachable addresses)."""
    return pick_free_port


@pytest.fixture(scope="session")
def torchrun_two_ranks() -> Callable[..., list[str]]:
    """``cmd(*args)``: torchrun (``python -m torch.distributed.run``) of ``args`` on 2 local ranks at 127.0.0.1,
    each call with a fresh master port."""

    def cmd(*args: str) -> list[str]:
        return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--master-addr=127.0.0.1",
                f"--master-port={pick_free_port()}", *args]

    return cmd


@pytest.fixture(scope="session")
def synthetic_calibration() -> Callable[..., dict[str, Any]]:
    """``make(harvest_tps, train_tps)``: a hand-written throughput calibration of SmolLM2-135M (576 -> 4608 TopK),
    labelled synthetic: for tests of what plan_scale does with one, not of the measurement."""
    from interp_agent.core.scale.throughput import THROUGHPUT_SCHEMA

    def make(harvest_tps: float, train_tps: float) -> dict[str, Any]:
        return {
            "schema_version": THROUGHPUT_SCHEMA, "provenance": "synthetic (test)", "device": "cpu", "torch_threads": 1,
            "model": {"name": "smollm2-135m", "params": 135_000_000, "d_model": 576, "n_layers": 30},
            "harvest": {"tokens_per_s": harvest_tps, "depth_fraction": 1.0},
            "sae_training": {"tokens_per_s": train_tps, "d_in": 576, "d_sae": 4608, "k": 32},
        }

    return make
