"""Shared fixtures: paths of test inputs and small helpers."""

from __future__ import annotations

from pathlib import Path

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
