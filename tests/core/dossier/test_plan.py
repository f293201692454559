"""The evidence plan: the calls that would supply each claim's missing rungs, grouped, costed, cheapest first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from interp_agent.core.dossier import (
    Claim,
    DossierStore,
    Evidence,
    EvidencePlan,
    RunRef,
    file_run,
    grade_claim,
    plan_evidence,
    plan_from_report,
)

TOP = 10


def _tool_models() -> dict[str, Any]:
    from interp_agent.server.explain_models import ExplainInput, FeatureEvidenceInput, ScoreExplanationInput
    from interp_agent.server.models import InspectInput, InterveneInput, MatchInput

    return {"inspect": InspectInput, "intervene": InterveneInput, "explain": ExplainInput, "match": MatchInput,
            "feature_evidence": FeatureEvidenceInput, "score_explanation": ScoreExplanationInput}


def _assert_calls_fit_the_tools(plan: EvidencePlan) -> None:
    """Every call's arguments are fields of its tool's input model and validate there (``dossier`` aside: the
    lead adds it to every tool)."""
    models = _tool_models()
    for planned in plan.steps:
        model = models[planned.call.tool]
        args = {k: v for k, v in planned.call.arguments.items() if k != "dossier"}
        assert set(args) <= set(model.model_fields), (planned.call.tool, set(args) - set(model.model_fields))
        model.model_validate(args)


def _calls(plan: EvidencePlan, tool: str) -> list:
    return [p for p in plan.steps if p.call.tool == tool]


def _live(workspace: Path, **kw: Any) -> DossierStore:
    store = DossierStore.in_workspace(workspace, "units")
    file_run(store, "inspect", workspace / "runs" / "hf1", run_id="hf1")
    file_run(store, "intervene", workspace / "runs" / "iv1", run_id="iv1", **kw)
    return store


def test_one_intervene_call_covers_every_claim_still_lacking_the_causal_rung(workspace: Path):
    store = _live(workspace)
    dossier = store.read()
    plan = plan_evidence(dossier)
    (intervene,) = _calls(plan, "intervene")
    tested = {c.feature_id for c in dossier.claims if c.kind == "causes"}
    top = [c.feature_id for c in dossier.claims if c.kind == "tracks"]
    assert len(top) == TOP
    assert intervene.call.arguments == {"model": "smollm2-135m", "pack": "measurement_unit", "report": "hf1",
                                        "features": [f for f in top if f not in tested], "dossier": "units"}
    assert intervene.rungs == ("causal",) and len(intervene.claim_ids) == TOP - len(tested)
    cli = intervene.call.cli or ""
    assert cli.startswith("interp-agent intervene --model smollm2-135m --pack measurement_unit --report "
                          "runs/hf1/report.json --feature ")
    assert cli.count("--feature ") == TOP - len(tested) and "--dossier units" in cli
    _assert_calls_fit_the_tools(plan)


def test_a_weak_verdict_is_not_retested_by_the_same_call(workspace: Path):
    plan = plan_evidence(_live(workspace).read())
    blocked = [b for b in plan.unmet if "L20:D17" in b.features and b.rung == "causal"]
    assert blocked and "weak" in blocked[0].needs and "not evidence" in blocked[0].needs
    assert all("L20:D17" not in p.call.arguments.get("features", []) for p in _calls(plan, "intervene"))


def test_the_explained_rung_is_one_explain_call_of_the_report_top_features(workspace: Path):
    plan = plan_evidence(_live(workspace).read())
    (explain,) = _calls(plan, "explain")
    assert explain.call.arguments == {"model": "smollm2-135m", "report": "hf1", "top_k": TOP, "dossier": "units"}
    assert explain.rungs == ("explained",) and len(explain.claim_ids) >= TOP
    assert "interp-agent explain --model smollm2-135m --report runs/hf1/report.json --top-k 10" in (
        explain.call.cli or "")


def test_with_one_model_the_transferred_rung_says_it_needs_a_second_model(workspace: Path):
    plan = plan_evidence(_live(workspace).read())
    assert not _calls(plan, "match")
    (blocked,) = [b for b in plan.unmet if b.rung == "transferred"]
    assert "second model" in blocked.needs and len(blocked.claim_ids) == TOP
    claim = next(c for c in plan.claims if c.claim_id == blocked.claim_ids[0])
    assert "transferred" in claim.lacks and any("second model" in b for b in claim.unmet)


def test_calls_come_cheapest_first_with_costs_measured_from_earlier_runs(workspace: Path):
    plain = plan_evidence(_live(workspace).read())
    assert all(p.call.cost.basis.endswith(plain.cost_basis) for p in plain.steps)
    assert plain.cost_basis.startswith("default:")
    timed = plan_evidence(_live(workspace, elapsed_s=140.5).read())
    assert timed.cost_basis.startswith("measured: 140.5 s over ")
    seconds = [p.call.cost.seconds for p in timed.steps]
    assert seconds == sorted(seconds) and all(s > 0 for s in seconds)
    (intervene,) = _calls(timed, "intervene")
    cost = intervene.call.cost
    assert cost.forward_passes > 0
    assert cost.seconds == pytest.approx(5.0 + cost.forward_passes * timed.seconds_per_pass)
    assert "calibration prompts x 4 strengths" in cost.basis
    assert timed.to_dict()["total_seconds"] == pytest.approx(sum(seconds), abs=0.2)


def test_two_toy_models_get_a_match_call_and_no_live_model_calls(workspace: Path):
    store = DossierStore.in_workspace(workspace, "toys")
    file_run(store, "inspect", workspace / "runs" / "toy-a", run_id="toy-a")
    file_run(store, "inspect", workspace / "runs" / "toy-b", run_id="toy-b")
    plan = plan_evidence(store.read())
    assert [p.call.tool for p in plan.steps] == ["match"]
    (match,) = plan.steps
    assert match.call.arguments == {"left": "toy-a", "right": "toy-b", "dossier": "toys"}
    assert len(match.claim_ids) == 2 * TOP and match.rungs == ("transferred",)
    assert any("synthetic toy model" in b.needs and b.rung == "causal" for b in plan.unmet)
    _assert_calls_fit_the_tools(plan)


def test_after_the_match_is_filed_unmatched_features_say_why_instead_of_matching_again(workspace: Path):
    store = DossierStore.in_workspace(workspace, "toys")
    for run in ("toy-a", "toy-b", "match-ab"):
        file_run(store, "match" if run == "match-ab" else "inspect", workspace / "runs" / run, run_id=run)
    plan = plan_evidence(store.read())
    assert not _calls(plan, "match")
    dossier = store.read()
    tracks = [c for c in dossier.claims if c.kind == "tracks"]
    matched = {c.feature_id for c in tracks if any(o.kind == "corresponds" for o in
                                                   dossier.claims_about(c.model, c.feature_id))}
    lacking = {c.feature_id for c in plan.claims if c.kind == "tracks" and "transferred" in c.lacks}
    assert matched and not matched & lacking
    assert all("found no counterpart" in b.needs for b in plan.unmet if b.rung == "transferred")


def test_a_contradicted_explanation_gets_feature_evidence_to_write_a_better_one(workspace: Path):
    store = DossierStore.in_workspace(workspace, "words")
    file_run(store, "explain", workspace / "runs" / "ex1", run_id="ex1")
    plan = plan_evidence(store.read())
    contradicted = [c for c in store.read().claims if grade_claim(c).rungs["explained"] == "contradicted"]
    assert contradicted
    calls = {p.call.arguments["feature_id"]: p for p in _calls(plan, "feature_evidence")}
    for claim in contradicted:
        # feature_evidence only reads: the score_explanation it leads to files into the dossier
        assert calls[claim.feature_id].call.arguments == {"run_id": "ex1", "feature_id": claim.feature_id}
        assert "score_explanation" in calls[claim.feature_id].call.why
    assert not _calls(plan, "explain")
    _assert_calls_fit_the_tools(plan)


def test_an_unscored_explanation_is_scored_on_an_explain_run_that_harvested_its_feature(workspace: Path):
    store = DossierStore.in_workspace(workspace, "words")
    file_run(store, "explain", workspace / "runs" / "ex1", run_id="ex1")
    fid = store.read().claims[0].feature_id
    label = Claim.new("means", "model", fid, explanation="imported label: weather words")
    stated = Evidence.new("imported", "supports", "imported label", {"source": "neuronpedia"},
                          RunRef("runs/np", "report.json", "np"), provenance="imported", tool="inspect")
    store.update(lambda d: d.add(label, [stated]))
    plan = plan_evidence(store.read())
    (score,) = _calls(plan, "score_explanation")
    assert score.call.arguments == {"run_id": "ex1", "feature_id": fid, "explanation": "imported label: weather words",
                                    "judge": "none", "dossier": "words"}
    assert score.claim_ids == (label.id,) and score.call.cli is None
    _assert_calls_fit_the_tools(plan)


def test_a_criterion_without_a_pack_blocks_live_calls_and_says_what_to_pass(workspace: Path):
    store = DossierStore.in_workspace(workspace, "words")
    file_run(store, "inspect", workspace / "runs" / "hf1", run_id="hf1")
    store.update(lambda d: d.__class__(d.name, d.created, "the text is about rain", d.models, d.claims, d.runs))
    plan = plan_evidence(store.read())
    assert not _calls(plan, "intervene")
    assert any(b.rung == "causal" and "dataset=" in b.needs for b in plan.unmet)


def test_a_report_in_no_dossier_is_planned_from_its_file(workspace: Path):
    plan = plan_from_report(workspace / "runs" / "hf1" / "report.json", workspace=workspace)
    (intervene,) = _calls(plan, "intervene")
    assert intervene.call.arguments["report"] == "hf1" and "dossier" not in intervene.call.arguments
    assert len(intervene.call.arguments["features"]) == TOP
    assert plan.dossier is None and len(plan.claims) == TOP
    named = plan_from_report(workspace / "runs" / "hf1", workspace=workspace, dossier="units", top=3)
    assert all(p.call.arguments["dossier"] == "units" for p in named.steps) and len(named.claims) == 3
    _assert_calls_fit_the_tools(plan)


def test_the_plan_serialises_steps_and_what_each_claim_lacks(workspace: Path):
    import json

    plan = plan_evidence(_live(workspace).read()).to_dict()
    json.dumps(plan)
    assert {"dossier", "steps", "missing", "unmet", "cost_basis", "seconds_per_pass", "total_seconds"} <= set(plan)
    step = plan["steps"][0]
    assert {"tool", "arguments", "cli", "why", "supplies", "claims", "estimated_seconds", "forward_passes",
            "estimate_basis"} <= set(step)
    claim = next(c for c in plan["missing"] if c["feature_id"] == "direction:contrast@blocks.20.hook_resid_post"
                 and c["kind"] == "tracks")
    assert claim["grade"] == "held_out" and claim["lacks"] == ["explained", "transferred"]
    assert all(0 <= i < len(plan["steps"]) for i in claim["steps"])
    assert any(u.startswith("transferred: ") for u in claim["unmet"])
    assert all(c["lacks"] for c in plan["missing"])


def test_a_step_folder_inside_a_job_run_is_named_by_path_not_by_run_id(workspace: Path):
    store = DossierStore.in_workspace(workspace, "units")
    file_run(store, "inspect", workspace / "runs" / "hf1", run_id="job1/1-inspect")
    (intervene,) = _calls(plan_evidence(store.read()), "intervene")
    assert intervene.call.arguments["report"] == "runs/hf1/report.json"


def test_a_live_model_never_gets_the_same_inspect_again_for_a_held_out_rung_it_failed(workspace: Path):
    import json

    path = workspace / "runs" / "hf1" / "report.json"
    report = json.loads(path.read_text())
    failed, absent = report["features"][3], report["features"][4]
    failed["association"]["held_out"]["ci_excludes_chance"] = False
    absent["association"]["held_out"] = None
    path.write_text(json.dumps(report))
    store = DossierStore.in_workspace(workspace, "units")
    file_run(store, "inspect", path.parent, run_id="hf1")
    plan = plan_evidence(store.read())
    assert not _calls(plan, "inspect")
    held = {f: b.needs for b in plan.unmet if b.rung == "held_out" for f in b.features}
    assert set(held) == {failed["feature_id"], absent["feature_id"]}
    assert "contradicted" in held[failed["feature_id"]] and "new prompts" in held[failed["feature_id"]]
    assert "too few held-out prompts" in held[absent["feature_id"]]
