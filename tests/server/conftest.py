"""Fixtures for server tests: a workspace with the seed inputs and an in-process server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SEED = Path(__file__).resolve().parents[1] / "fixtures" / "seed"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace holding copies of the seed example inputs under inputs/."""
    ws = tmp_path / "ws"
    (ws / "inputs").mkdir(parents=True)
    for f in SEED.glob("*.jsonl"):
        shutil.copy(f, ws / "inputs" / f.name)
    return ws


@pytest.fixture
def server(workspace: Path):
    from interp_agent.server import build_server

    srv = build_server(workspace)
    yield srv
    from interp_agent.jobs import JobRunner

    runner = JobRunner(workspace)
    for job in runner.list(limit=200, state="working"):
        runner.cancel(job.job_id)
