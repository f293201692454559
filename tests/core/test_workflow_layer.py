"""Workflows sit above the steps: no step module imports one."""

from __future__ import annotations

from pathlib import Path

import interp_agent.core

CORE = Path(interp_agent.core.__file__).parent


def test_no_step_module_imports_a_workflow() -> None:
    offenders = []
    for path in CORE.rglob("*.py"):
        rel = path.relative_to(CORE).as_posix()
        if rel.startswith("workflows/"):
            continue
        if "core.workflows" in path.read_text(encoding="utf-8"):
            offenders.append(rel)
    assert offenders == []


def test_the_steps_of_train_then_test_do_not_climb_to_inspection_or_live() -> None:
    text = (CORE / "sae" / "train.py").read_text(encoding="utf-8")
    assert "core.inspection" not in text and "core.live" not in text
