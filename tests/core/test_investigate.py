"""The one-call investigation (``core.workflows.investigate.run_investigation``): checks, budget, dossier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interp_agent.core.errors import ValidationError
from interp_agent.core.workflows.investigate import Budget, InvestigateRequest, check_investigate_request


@pytest.mark.parametrize("budget", [{"max_forward_passes": 0}, {"max_seconds": 0.0}, {"max_seconds": -3}])
def test_a_budget_of_zero_is_refused_with_what_to_do(budget) -> None:
    with pytest.raises(ValidationError, match="budget of zero") as info:
        Budget(**budget)
    assert info.value.hint and "leave it out" in info.value.hint


@pytest.mark.parametrize(("fields", "words"), [
    ({}, "needs prompts"),
    ({"pack": "measurement_unit", "dataset": "x.jsonl"}, "not both"),
    ({"dataset": "x.jsonl"}, "criterion"),
    ({"pack": "measurement_unit", "n_intervene": 0}, "n_intervene"),
    ({"pack": "measurement_unit", "n_explain": 51}, "n_explain"),
])
def test_bad_requests_name_the_argument(fields, words) -> None:
    with pytest.raises(ValidationError, match=words):
        check_investigate_request(InvestigateRequest(out="x", **fields))


@pytest.mark.slow
def test_a_budgeted_investigation_files_each_finished_step_and_says_where_it_stopped(tmp_path: Path,
                                                                                      one_torch_thread) -> None:
    """inspect and explain fit the pass budget; intervene spends the rest and stops; the ranking still runs."""
    from interp_agent.core.dossier import DossierStore
    from interp_agent.core.workflows.investigate import run_investigation

    req = InvestigateRequest(out=str(tmp_path / "inv"), pack="measurement_unit",
                             hookpoints=("blocks.15.hook_resid_post",), n_explain=2, n_intervene=1, max_contexts=64,
                             budget=Budget(max_forward_passes=400))
    run = run_investigation(req)
    status = {s.name: s.status for s in run.steps}
    assert status == {"inspect": "completed", "explain": "completed", "intervene": "stopped", "rank": "completed"}
    stopped = next(s for s in run.steps if s.name == "intervene")
    assert "400 forward passes" in str(stopped.reason)
    spent = sum(s.forward_passes for s in run.steps)
    assert spent <= 400 + 64  # a step may finish the batch in flight (at most one batch over)
    summary = json.loads(run.paths["investigation"].read_text())
    assert summary["budget"] == {"max_forward_passes": 400, "max_seconds": None}
    dossier = DossierStore(run.paths["dossier"]).read()
    kinds = {c.kind for c in dossier.claims}
    assert {"tracks", "means"} <= kinds and "causes" not in kinds  # the stopped step filed nothing
    assert dossier.criterion == "the next token should be a physical measurement unit"  # the pack's own text
    report = json.loads(run.paths["report"].read_text())
    assert any("explained" in f for f in report["features"])  # the explanations ride on the final ranking
    assert summary["plan"]["steps"] and any(s["tool"] == "intervene" for s in summary["plan"]["steps"])
