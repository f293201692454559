"""Commands that touch no model import no torch, transformers, sentence-transformers, … at all.

Each command runs for real, on the seed inputs, as ``python -m interp_agent.cli …`` in a
fresh interpreter. A ``sitecustomize`` module put on ``PYTHONPATH`` records
``sys.modules`` at exit in every interpreter started with it, so the steps that ``run``
starts as subprocesses are checked too. To find what pulled a module in, run the printed
command under ``python -X importtime``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from interp_agent.cli import main
from interp_agent.core.matching import text as text_module

CRIT = "the model is aware it is being evaluated"

MODEL_STACK = (
    "torch", "transformers", "sentence_transformers", "sae_lens", "transformer_lens", "nnsight",
    "huggingface_hub", "datasets", "safetensors.torch", "accelerate", "gguf", "sklearn",
)
"""Modules of the model stack; none is needed by a command that loads no model."""
SERVER = ("mcp", "anyio", "interp_agent.server")
"""The MCP layer: only ``serve`` needs it."""
NUMERIC = ("numpy", "scipy", "pyarrow", "pandas")
"""What pure arithmetic and metadata reads (plan-scale, profile-env, doctor --quick, jobs) do without."""
COLUMNAR = ("pyarrow", "pandas", "scipy")
"""Not needed to rank a small JSONL file (pyarrow is for Parquet and for spilling big JSONL files; the
ranking's p-values and intervals come from core.ranking.distributions, not scipy)."""

_PROBE = '''
import atexit, json, os, sys

def _record_modules():
    path = os.path.join(os.environ["INTERP_AGENT_TEST_IMPORT_PROBE"], f"{os.getpid()}.json")
    with open(path, "w") as fh:
        json.dump({"argv": sys.argv, "modules": sorted(sys.modules)}, fh)

atexit.register(_record_modules)
'''


class _StandInEncoder:
    """Calls itself all-MiniLM-L6-v2 so the embedding cache keeps what it writes; deterministic unit vectors."""

    name = text_module.ENCODER_NAME

    def encode(self, texts: list[str]) -> np.ndarray:
        seeds = [int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little") for t in texts]
        rows = [np.random.default_rng(seed).normal(size=384) for seed in seeds]
        emb_ND = np.asarray(rows, dtype=np.float32).reshape(len(texts), 384)
        return emb_ND / np.linalg.norm(emb_ND, axis=1, keepdims=True)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Runs ``interp-agent ARGV`` in fresh interpreters; returns the modules each of them had loaded at exit."""
    probe_code = tmp_path / "probe"
    probe_code.mkdir()
    (probe_code / "sitecustomize.py").write_text(_PROBE)
    cache = tmp_path / "cache"
    monkeypatch.setenv("INTERP_AGENT_CACHE", str(cache))  # also for the in-process warm-ups below
    runs = iter(range(1000))

    def run(*argv: str) -> list[set[str]]:
        out = tmp_path / f"modules-{next(runs)}"
        out.mkdir()
        env = os.environ | {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(probe_code), os.environ.get("PYTHONPATH")])),
            "INTERP_AGENT_TEST_IMPORT_PROBE": str(out),
            "INTERP_AGENT_CACHE": str(cache),
        }
        proc = subprocess.run([sys.executable, "-m", "interp_agent.cli", *argv], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        found = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
        assert found, "the import probe recorded nothing: did the interpreter exit through os._exit?"
        return [set(f["modules"]) for f in found]

    return run


def _assert_absent(processes: list[set[str]], forbidden: tuple[str, ...], argv: tuple[str, ...]) -> None:
    for modules in processes:
        assert "interp_agent._version" in modules, "the probe did not record an interp-agent process"
        loaded = sorted(m for m in forbidden if m in modules)
        assert not loaded, (f"`interp-agent {' '.join(argv)}` imported {loaded}; find who with: "
                            f"python -X importtime -m interp_agent.cli {' '.join(argv)}")


def _check(cli, forbidden: tuple[str, ...], *argv: str) -> None:
    _assert_absent(cli(*argv), forbidden, argv)


PLAN = ("plan-scale", "--model-params", "70B", "--tokens", "1B", "--d-model", "8192", "--selected-layers", "4",
        "--latent-dim", "1M")


def test_plan_scale_profile_env_and_doctor_quick_import_only_the_standard_library(cli) -> None:
    for argv in (PLAN, (*PLAN, "--from-env", "--json"), ("profile-env", "--json"), ("doctor", "--quick")):
        _check(cli, MODEL_STACK + SERVER + NUMERIC, *argv)


def test_inspecting_the_seed_records_imports_neither_the_model_stack_nor_pyarrow(cli, seed_dir: Path) -> None:
    _check(cli, MODEL_STACK + SERVER + COLUMNAR, "inspect", "--model", "my/model", "--criterion", CRIT,
           "--backend", "records", "--records", str(seed_dir / "activation_records.jsonl"),
           "--features", str(seed_dir / "features.jsonl"), "--interventions", str(seed_dir / "interventions.jsonl"),
           "--out", "rec")


def test_the_features_backend_with_cached_embeddings_loads_no_encoder(
    cli, seed_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ("inspect", "--model", "my/model", "--criterion", CRIT, "--backend", "features",
            "--features", str(seed_dir / "features.jsonl"), "--interventions", str(seed_dir / "interventions.jsonl"))
    monkeypatch.setattr(text_module, "load_text_encoder", _StandInEncoder)
    assert main([*argv, "--out", str(tmp_path / "warm-up")]) == 0  # fills the embedding cache
    _check(cli, MODEL_STACK + SERVER, *argv, "--out", "feat")


def test_match_without_text_and_with_cached_text_loads_no_encoder(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for side in ("a", "b"):
        assert main(["inspect", "--model", f"toy/model-{side}", "--criterion", "mentions a measurement unit",
                     "--backend", "toy", "--out", str(tmp_path / side)]) == 0
    _check(cli, MODEL_STACK + SERVER, "match", "--left", "a", "--right", "b", "--out", "m0/matches.json", "--no-text")

    monkeypatch.setattr(text_module, "load_text_encoder", _StandInEncoder)
    assert main(["match", "--left", str(tmp_path / "a"), "--right", str(tmp_path / "b"),
                 "--out", str(tmp_path / "warm-up" / "matches.json")]) == 0  # fills the embedding cache
    _check(cli, MODEL_STACK + SERVER, "match", "--left", "a", "--right", "b", "--out", "m1/matches.json")
    result = json.loads((tmp_path / "m1" / "matches.json").read_text())
    assert "text" in result["components_used"], result["components_used"]


def test_export_graph_convert_and_jobs_import_no_model_stack(cli, seed_dir: Path, tmp_path: Path) -> None:
    records = seed_dir / "activation_records.jsonl"
    assert main(["inspect", "--model", "my/model", "--criterion", CRIT, "--records", str(records),
                 "--out", str(tmp_path / "rec")]) == 0
    _check(cli, MODEL_STACK + SERVER, "export-graph", "--report", "rec", "--out", "graph.json")
    _check(cli, MODEL_STACK + SERVER, "export-graph", "--report", "rec", "--format", "neuronpedia", "--out", "np.json")
    _check(cli, MODEL_STACK + SERVER, "convert", str(records), "records-parquet")
    _check(cli, MODEL_STACK + SERVER, "convert", "records-parquet", "back.jsonl")
    _check(cli, MODEL_STACK + SERVER + NUMERIC, "jobs", "list", "--workspace", "ws")


def test_a_run_config_and_each_of_its_steps_import_no_model_stack(cli, seed_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"name": "seed", "steps": [
        {"command": "plan-scale", "args": {"model_params": "70B", "tokens": "1B", "d_model": "8192",
                                           "selected_layers": "4", "latent_dim": "1M"}},
        {"command": "inspect", "args": {"model": "my/model", "criterion": CRIT, "backend": "records",
                                        "records": str(seed_dir / "activation_records.jsonl"), "out": "rec"}},
    ]}))
    processes = cli("run", str(config))
    assert len(processes) >= 3  # the run and its two steps (and a --help probe of the subcommands)
    _assert_absent(processes, MODEL_STACK + SERVER + COLUMNAR, ("run", str(config)))
