"""Run folders for the dossier tests: toy inspect runs and their match, made here by the project's own code,
and the live-model outputs of ``data/`` (see its README), laid out as a workspace's ``runs/``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
CRITERION = "the next token should be a physical measurement unit"


@pytest.fixture(scope="session")
def generated_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``runs/`` with toy-a and toy-b (toy inspect reports) and match-ab (their matches.json), made once."""
    from interp_agent.core.inspection import inspect
    from interp_agent.core.matching import match_reports, write_matches

    runs = tmp_path_factory.mktemp("generated") / "runs"
    a = inspect("toy/model-a", CRITERION, backend="toy", out=runs / "toy-a")
    b = inspect("toy/model-b", CRITERION, backend="toy", out=runs / "toy-b")
    write_matches(match_reports(a.report, b.report, use_text=False), runs / "match-ab" / "matches.json")
    return runs


@pytest.fixture
def workspace(tmp_path: Path, generated_runs: Path) -> Path:
    """A fresh workspace: ``runs/`` holding the generated runs and ``data/``'s (hf1, iv1, ex1, feat1)."""
    runs = tmp_path / "ws" / "runs"
    shutil.copytree(generated_runs, runs)
    for name, folder in {"hf1": "hf-inspect", "iv1": "intervene", "ex1": "explain", "feat1": "features"}.items():
        shutil.copytree(DATA / folder, runs / name)
    return tmp_path / "ws"


@pytest.fixture
def criterion() -> str:
    """The criterion of the generated toy runs (and of the demo's live-model runs in ``data/``)."""
    return CRITERION
